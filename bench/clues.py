"""Clue-rule benchmark (issue 8): mine a month of 1,000,000 files with ~50 features each.

    nice -n 10 python bench/clues.py [--files 1000000] [--cache /tmp/kinfile-bench-clues] [--jobs 2]

1. Store (cached SQLite file): synthetic PE reports with imported behaviour, first submitted in
   2024-05, written by a bulk path: ``files`` rows and their packed ``file_clue_codes`` rows,
   the codes computed by ``kinfile.clues.features`` from each report exactly as on ingest
   (generation in worker processes; the text side table, which mining does not read, is not
   loaded). Files belong to ~20,000 families (Zipf sizes) sharing, with some probability, an
   imphash, rich header, resources, PDB path, exports, section layout, dropped paths, mutexes
   and domains, mixed with generic values (common section names, size ranges, icons, domains);
   80% of families are of one band (1% label noise), 20% mix two bands.
2. ``kinfile.clues.service.mine_month`` end to end (load codes, numpy mining, naming the
   features from example reports, storing the rules), timed per step.
3. Matching: a new file's features against every rule with the in-memory matcher (per call),
   and ``file_clues`` (side-table read + match) for stored files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kinfile.clues import features, service, sql  # noqa: E402
from kinfile.clues.matching import Matcher  # noqa: E402
from kinfile.storage import schema  # noqa: E402
from kinfile.storage.store import Store  # noqa: E402

MONTH = "2024-05"
FAMILIES = 20_000
CHUNK = 20_000
GENERIC_SECTIONS = (".text", ".rdata", ".data", ".rsrc", ".reloc", ".pdata", ".tls", ".idata")
logger = logging.getLogger("bench.clues")


def h(*parts: Any) -> str:
    return hashlib.md5("|".join(map(str, parts)).encode()).hexdigest()


def family_of(rng: random.Random) -> int:
    return (
        min(int(rng.paretovariate(0.8)) - 1, FAMILIES - 1) if rng.random() < 0.9 else rng.randrange(FAMILIES)
    )


def family_band(family: int) -> tuple[int, int | None]:
    """(main band, second band for mixed families): 55% P0, 10% P1-19, 35% P20+ by family."""
    r = random.Random(family * 7919)
    roll = r.random()
    main = 0 if roll < 0.55 else (1 if roll < 0.65 else 2)
    return main, (r.choice([b for b in (0, 1, 2) if b != main]) if r.random() < 0.2 else None)


POSITIVES = (0, 7, 35)


def report(index: int, rng: random.Random) -> tuple[dict[str, Any], int]:
    fam = family_of(rng)
    fr = random.Random(fam)
    main, second = family_band(fam)
    band = second if second is not None and rng.random() < 0.3 else main
    if rng.random() < 0.01:
        band = rng.randrange(3)
    packed = fr.random() < 0.3
    sections = []
    for i in range(10):
        if packed and i < 3 and rng.random() < 0.95:
            name = f".p{fam % 997}_{i}"
        else:
            name = GENERIC_SECTIONS[(i + (rng.random() < 0.1)) % len(GENERIC_SECTIONS)]
        base = fr.randrange(9, 20) if rng.random() < 0.7 else rng.randrange(9, 22)
        sections.append({"name": name, "virtual_size": rng.randrange(1 << base, 1 << (base + 1))})
    resources = [{"sha256": h("icon", rng.randrange(2000))} for _ in range(5)]
    resources += [
        {"sha256": h("fres", fam, fr.randrange(10) if rng.random() < 0.8 else rng.randrange(10**6))}
        for _ in range(3)
    ]
    resources += [{"sha256": h("ures", index, k)} for k in range(4)]
    pe: dict[str, Any] = {
        "sections": sections,
        "imphash": h("imp", fam) if rng.random() < 0.9 else h("imp", index),
        "rich_pe_header_hash": h("rich", fam % 5000) if rng.random() < 0.8 else h("rich", index),
        "resource_details": resources,
    }
    if fr.random() < 0.3:
        pe["exports"] = [f"fn{fam}_{k}" for k in range(3)]
    if rng.random() < 0.5:
        pe["debug"] = [{"codeview": {"name": f"c:\\build\\{fam}\\release\\app.pdb"}}]
    attrs: dict[str, Any] = {
        "pe_info": pe,
        "files_dropped": [{"path": f"c:\\users\\public\\{h('drop', fam, k)[:8]}.exe"} for k in range(2)]
        + [{"path": f"%temp%\\{rng.randrange(5000)}.tmp"} for _ in range(3)],
        "mutexes_created": [f"mtx_{fam}", f"Global\\{rng.randrange(3000)}", f"m{rng.randrange(10**6)}"],
        "contacted_domains": [f"c2-{fam}-{k}.example" for k in range(2)]
        + [f"cdn{rng.randrange(10000)}.example.com" for _ in range(3)],
    }
    if band == 0 and fr.random() < 0.5:
        attrs["signature_info"] = {"signers": f"Vendor {fam % 500} Ltd"}
    return attrs, POSITIVES[band]


def rows_chunk(args: tuple[int, int, int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    start, count, month_start = args
    rng = random.Random(start)
    files, codes, total = [], [], 0
    for index in range(start, start + count):
        attrs, positives = report(index, rng)
        sha256 = hashlib.sha256(f"bench-clues-{index}".encode()).hexdigest()
        packed = features.feature_codes(attrs)
        blob = next(iter(packed))
        total += len(blob) // 8
        files.append(
            {
                "sha256": sha256,
                "md5": sha256[:32],
                "sha1": sha256[:40],
                "size": 1000 + index % 5000,
                "positives": positives,
                "first_submission_date": month_start + index % (30 * 86400),
                "last_submission_date": month_start + index % (30 * 86400),
                "times_submitted": 1,
                "unique_sources": 1,
                "downloadable": False,
                "schema_version": 1,
                "report": json.dumps(attrs, separators=(",", ":")),
            }
        )
        codes.append({"sha256": sha256, "value": blob})
    return files, codes, total


def build(store: Store, n: int, jobs: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        have = int(conn.execute(sa.select(sa.func.count()).select_from(schema.file_clue_codes)).scalar() or 0)
    if have >= n:
        return {"cached": True, "files": have}
    started = time.perf_counter()
    month_start, _ = service.month_bounds(MONTH)
    tasks = [(s, min(CHUNK, n - s), month_start) for s in range(have, n, CHUNK)]
    total = 0
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for files, codes, count in pool.map(rows_chunk, tasks):
            with store.writing() as conn:
                conn.execute(schema.files.insert(), files)
                conn.execute(schema.file_clue_codes.insert(), codes)
            total += count
            logger.info("stored %d files", len(files))
    return {
        "cached": False,
        "files": n,
        "features": total,
        "seconds": round(time.perf_counter() - started, 1),
    }


def bench_matching(store: Store, rules: list[tuple[str, list[str]]], probes: int) -> dict[str, Any]:
    built = time.perf_counter()
    matcher = Matcher(rules)
    build_seconds = time.perf_counter() - built
    rng = random.Random(99)
    samples = [sorted(features.feature_texts(report(10**7 + i, rng)[0])) for i in range(probes)]
    per_call = []
    hits = 0
    for texts in samples:
        t0 = time.perf_counter()
        hits += len(matcher.match(texts))
        per_call.append(time.perf_counter() - t0)
    service.matcher(store)  # warm the cached matcher
    with store.engine.connect() as conn:
        stored = list(conn.execute(sa.select(schema.files.c.sha256).limit(200)).scalars())
    # end to end for stored files: read the file's text features (side table; the bench's bulk
    # path loads none, so this is the read's cost) and match them
    end_to_end = []
    for sha256 in stored[:50]:
        t0 = time.perf_counter()
        service.file_clues(store, sha256)
        end_to_end.append(time.perf_counter() - t0)
    return {
        "rules": len(matcher),
        "matcher_build_s": round(build_seconds, 3),
        "features_per_probe": round(statistics.mean(len(s) for s in samples), 1),
        "match_us_median": round(statistics.median(per_call) * 1e6, 1),
        "match_us_p99": round(sorted(per_call)[int(0.99 * len(per_call))] * 1e6, 1),
        "matched_rules_per_probe": round(hits / probes, 2),
        "file_clues_ms_median": round(statistics.median(end_to_end) * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/kinfile-bench-clues"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--min-support", type=int, default=10)
    parser.add_argument("--probes", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.cache.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{args.cache / f'clues-{args.files}.db'}")
    store.migrate()
    out: dict[str, Any] = {"files": args.files, "build": build(store, args.files, args.jobs)}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    result = service.mine_month(store, MONTH, args.min_support)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out["mining"] = result.as_dict()
    out["mining"]["cpu_s"] = round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)
    out["mining"]["max_rss_mb"] = round(cpu1.ru_maxrss / 1024)
    rules = sql.list_rules(store, limit=10**7)
    out["mining"]["by_length"] = {str(k): sum(len(r.features) == k for r in rules) for k in (1, 2, 3)}
    out["matching"] = bench_matching(store, [(r.id, r.features) for r in rules], args.probes)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
