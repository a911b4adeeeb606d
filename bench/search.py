"""Search benchmark (issue 4): ~1,000,000 files, fuzzy-hash and metadata searches, brute force.

    python bench/search.py [--files 1000000] [--cache /tmp/kinfile-bench-search] [--queries 200]

1. Variants (bench/search_data.py, cached): real ssdeep/TLSH/hashes of mutated variants of the
   shared corpus files (families at realistic distances).
2. Store (cached SQLite file): every variant written through ``Store.bulk_load`` with metadata
   derived from its family root's real analysis report (type, tags, imphash, sections,
   signature, ...), synthetic submission dates over 2023, names, detections and a
   per-family/generation vhash. Side tables loaded: tags, type_tags, names, signature.
3. Fuzzy indexes built from the store (timed), then ssdeep / TLSH searches: index-only and
   end-to-end through ``kinfile.search.search``; brute force (``pydeep.compare`` /
   ``tlsh.diff`` over every row) on a subset in the same run, giving the baseline and recall.
4. The metadata query shapes Q1-Q8 of BACKENDS.md §2 through ``kinfile.search.search``
   (limit 10, default order) - Q5 and Q7 are aggregates, run as SQL over the same columns.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_data  # noqa: E402

from kinfile import search  # noqa: E402
from kinfile.analysis.pipeline import Limits, analyse_bytes  # noqa: E402
from kinfile.models import FileRecord, Submission  # noqa: E402
from kinfile.services import Services  # noqa: E402
from kinfile.settings import load_settings  # noqa: E402
from kinfile.similarity import ssdeep_index, tlsh_index  # noqa: E402
from kinfile.storage import schema  # noqa: E402

logger = logging.getLogger("bench.search")
YEAR_START = 1672531200  # 2023-01-01
WORDS = ("invoice", "report", "setup", "update", "scan", "photo", "payment", "order")
KEEP = (
    "type_tag",
    "type_tags",
    "type_description",
    "tags",
    "magic",
    "magika",
    "creation_date",
    "authentihash",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_reports(cache: Path) -> list[dict[str, Any]]:
    """Compact real analysis reports of every family root (cached)."""
    target = cache / "bases.json"
    if target.exists():
        return json.loads(target.read_text())  # type: ignore[no-any-return]
    out = []
    for sha256, _kind in search_data.roots():
        attrs = analyse_bytes(
            (search_data.CORPUS / "files" / sha256).read_bytes(), None, Limits(exiftool="off")
        ).record.attributes
        compact = {k: attrs[k] for k in KEEP if k in attrs}
        pe = attrs.get("pe_info") or {}
        compact["pe_info"] = {k: pe[k] for k in ("imphash", "rich_pe_header_hash") if k in pe} | {
            "sections": [{"name": s.get("name"), "md5": s.get("md5")} for s in (pe.get("sections") or [])[:8]]
        }
        if attrs.get("signature_info"):
            info = attrs["signature_info"]
            compact["signature_info"] = {k: v for k, v in info.items() if isinstance(v, str)}
        out.append(compact)
    target.write_text(json.dumps(out))
    return out


def records(variants: Path, bases: list[dict[str, Any]], seed: int = 7) -> Any:
    rng = random.Random(seed)
    malicious = {i for i in range(len(bases)) if random.Random(i).random() < 0.3}
    with variants.open() as fh:
        for line in fh:
            sha256, md5, sha1, size, ssdeep, tlsh, family, generation = json.loads(line)
            attrs = json.loads(json.dumps(bases[family]))
            attrs.update(sha256=sha256, md5=md5, sha1=sha1, size=size, ssdeep=ssdeep)
            if tlsh:
                attrs["tlsh"] = tlsh
            positives = max(0, int(rng.gauss(20, 10))) if family in malicious else int(rng.random() < 0.05)
            attrs["last_analysis_stats"] = {"malicious": positives}
            attrs["vhash"] = f"{family:05x}{generation // 8:04x}z{family % 7}"
            if attrs.get("signature_info"):
                attrs["tags"] = sorted(set(attrs.get("tags", [])) | {"signed"})
            name = f"{rng.choice(WORDS)}_{rng.randrange(100000)}.{(attrs.get('type_tag') or 'bin')[:4]}"
            date = YEAR_START + rng.randrange(365 * 86400)
            record = FileRecord(sha256=sha256, md5=md5, sha1=sha1, size=size, attributes=attrs)
            yield (
                record,
                Submission(date=date, name=name, source_key=f"src{rng.randrange(50)}", interface="import"),
            )


def load_store(
    services: Services, variants: Path, bases: list[dict[str, Any]], total: int, marker: Path
) -> float:
    """Bulk-load the variants once; ``marker`` records a complete load (duplicate variants
    collapse, so the store can hold fewer than ``total`` files)."""
    store = services.store
    if marker.exists() or store.count_files() >= total:
        return 0.0
    started = time.monotonic()
    done = 0
    batch: list[Any] = []
    for rec in records(variants, bases):
        batch.append(rec)
        if len(batch) == 50_000:
            done += store.bulk_load(
                batch, side_tables=("tags", "type_tags", "names", "signature"), batch=10_000
            )
            batch = []
            log(f"  loaded {done} ({time.monotonic() - started:.0f} s)")
    done += store.bulk_load(batch, side_tables=("tags", "type_tags", "names", "signature"), batch=10_000)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    marker.write_text(f"{done}\n")
    return time.monotonic() - started


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - t) * 1000, result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def fuzzy(
    services: Services, rows: list[tuple[str, str | None, str | None]], args: argparse.Namespace
) -> dict[str, Any]:
    rng = random.Random(11)
    indexes = search.fuzzy_indexes(services)
    build_ms, _ = timed(indexes.rebuild)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sample = rng.sample(rows, args.queries)
    out: dict[str, Any] = {"index_build_s": round(build_ms / 1000, 1), "max_rss_mb": round(rss_mb)}
    ssdeeps = [(sha, s) for sha, s, _t in rows if s]
    tlshes = [(sha, t) for sha, _s, t in rows if t]
    for name, digests, threshold, run, brute, e2e_query in (
        (
            "ssdeep",
            [s for _sha, s, _t in sample if s],
            args.ssdeep_threshold,
            indexes.ssdeep,
            ssdeep_index.brute_force,
            'ssdeep:"{} {}"',
        ),
        (
            "tlsh",
            [t for _sha, _s, t in sample if t],
            args.tlsh_distance,
            indexes.tlsh,
            tlsh_index.brute_force,
            'tlsh:"{} {}"',
        ),
    ):
        index_ms, hits = [], []
        for digest in digests:
            ms, found = timed(run, digest, threshold)
            index_ms.append(ms)
            hits.append(len(found))
        e2e_ms = []
        for digest in digests:
            ms, _page = timed(search.search, services, e2e_query.format(digest, threshold))
            e2e_ms.append(ms)
        brute_ms, recall_hits, recall_total, extra = [], 0, 0, 0
        items = ssdeeps if name == "ssdeep" else tlshes
        for digest in digests[: args.brute]:
            ms, expected = timed(brute, digest, items, threshold)
            brute_ms.append(ms)
            found = run(digest, threshold)
            recall_total += len(expected)
            recall_hits += len(set(expected) & set(found))
            extra += len(set(found) - set(expected))
            assert found == expected, f"{name}: index and brute force differ for {digest}"
        p50 = statistics.median(e2e_ms)
        out[name] = {
            "queries": len(digests),
            "threshold" if name == "ssdeep" else "max_distance": threshold,
            "hits_p50": statistics.median(hits),
            "hits_max": max(hits),
            "index_p50_ms": pct(index_ms, 0.5),
            "index_p95_ms": pct(index_ms, 0.95),
            "search_p50_ms": pct(e2e_ms, 0.5),
            "search_p95_ms": pct(e2e_ms, 0.95),
            "queries_per_minute": int(60_000 / p50),
            "brute_queries": len(brute_ms),
            "brute_p50_ms": pct(brute_ms, 0.5),
            "recall": recall_hits / recall_total if recall_total else 1.0,
            "false_hits": extra,
            "brute_hits_total": recall_total,
        }
        log(f"  {name}: {out[name]}")
    return out


def metadata(services: Services, rows_sample: dict[str, Any]) -> dict[str, Any]:
    queries = {
        "Q1 sha256 lookup": rows_sample["sha256"],
        "Q2 imphash": f"imphash:{rows_sample['imphash']}",
        "Q3 tag:signed type:peexe": "tag:signed type:peexe",
        "Q4 type:pedll p:10+ fs:2023-12-01+": "type:pedll p:10+ fs:2023-12-01+",
        "Q6 name:invoice_12": "name:invoice_12",
        "Q8 signature:microsoft": "signature:microsoft",
    }
    out: dict[str, Any] = {}
    for label, query in queries.items():
        search.search(services, query)
        times = []
        for _ in range(15):
            ms, page = timed(search.search, services, query)
            times.append(ms)
        out[label] = {"query": query, "p50_ms": pct(times, 0.5), "hits_on_page": len(page.hits)}
        log(f"  {label}: {out[label]}")
    f = schema.files
    day = YEAR_START + 200 * 86400
    aggregates = {
        "Q5 one day, top-200 vhash clusters (SQL)": sa.select(f.c.vhash, sa.func.count().label("n"))
        .where(f.c.first_submission_date >= day, f.c.first_submission_date < day + 86400)
        .group_by(f.c.vhash)
        .order_by(sa.desc("n"))
        .limit(200),
        "Q7 avg size by type (SQL, full scan)": sa.select(f.c.type_tag, sa.func.avg(f.c.size)).group_by(
            f.c.type_tag
        ),
    }
    with services.store.engine.connect() as conn:
        for label, statement in aggregates.items():
            times = []
            for _ in range(5):
                ms, result = timed(lambda s=statement: conn.execute(s).all())
                times.append(ms)
            out[label] = {"p50_ms": pct(times, 0.5), "rows": len(result)}
            log(f"  {label}: {out[label]}")
    times = []
    for _ in range(15):
        ms, stats = timed(services.store.type_stats)
        times.append(ms)
    label = "Q7 avg size by type (maintained type_stats summary)"
    out[label] = {"p50_ms": pct(times, 0.5), "rows": len(stats)}
    log(f"  {label}: {out[label]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/kinfile-bench-search"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--brute", type=int, default=10, help="queries also answered by brute force")
    parser.add_argument("--ssdeep-threshold", type=int, default=1)
    parser.add_argument("--tlsh-distance", type=int, default=70)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.monotonic()
    variants = search_data.generate(args.cache, args.files, args.jobs)
    bases = base_reports(args.cache)
    home = args.cache / f"home-{args.files}"
    services = Services(load_settings({"home": str(home), "search_timeout": 60}, env={}))
    load_s = load_store(services, variants, bases, args.files, home / "loaded")
    log(f"store ready ({services.store.count_files()} files, load {load_s:.0f} s)")
    f = schema.files
    with services.store.engine.connect() as conn:
        rows = [(r[0], r[1], r[2]) for r in conn.execute(sa.select(f.c.sha256, f.c.ssdeep, f.c.tlsh))]
        sample = conn.execute(
            sa.select(f.c.sha256, f.c.imphash).where(f.c.imphash.is_not(None)).limit(1).offset(12345)
        ).one()
    results: dict[str, Any] = {"files": len(rows), "load_s": round(load_s)}
    results["fuzzy"] = fuzzy(services, rows, args)
    results["metadata"] = metadata(services, {"sha256": sample[0], "imphash": sample[1]})
    results["total_s"] = round(time.monotonic() - started)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
