"""Content index: indexing speed, index size, and content: query latency against brute force.

    python bench/content.py [--gb 1.0] [--queries 60] [--brute 12] [--home /tmp/kinfile-bench-content]

Data: the shared corpus plus real files from /usr/lib (regular files, sorted walk, each ≤ 64 MB)
until ``--gb`` GB of distinct bytes. They are ingested once into a store under ``--home`` with the
analysers, Magika and engines off (the bytes are what matters here; the tests cover sub-files).
Then, in one run:

* **indexing**: ``ContentService.rebuild`` (one process) — MB/s over the stored bytes, and the
  index size after the tiered merges and after a full compaction, as a share of the bytes;
* **queries**: random 8–16 byte literals cut from random stored files (a third each binary,
  ASCII text runs and UTF-16LE wide strings), only selective ones (``ContentPattern.selective``).
  Each runs through ``kinfile.search.search`` (the API's code path), all pages of 300; latency
  p50/p90 and for the first page;
* **brute force**, same run, for the first ``--brute`` queries: ``mmap.find`` over every stored
  blob, and a yara-x scan of every blob with a one-string rule; the hit sets must be identical to
  the index's (a mismatch fails the benchmark).
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import re
import statistics
import time
from pathlib import Path

import sqlalchemy as sa
import yara_x

from kinfile import search
from kinfile.ingest import run_ingest
from kinfile.services import Services
from kinfile.settings import load_settings
from kinfile.storage import content_queue, schema

SHARED = Path(__file__).resolve().parents[2] / "shared"
MAX_FILE = 64 * 1024 * 1024


def collect(limit_bytes: int) -> list[str]:
    paths: list[str] = []
    seen_size = 0
    for root in (SHARED / "corpus" / "files", Path("/usr/lib")):
        for dirpath, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                size = path.stat().st_size
                if size == 0 or size > MAX_FILE:
                    continue
                paths.append(str(path))
                seen_size += size
                if seen_size >= limit_bytes:
                    return paths
    return paths


def literal_from(data: bytes, rng: random.Random, kind: str) -> bytes | None:
    n = rng.randint(8, 16)
    if len(data) < n:
        return None
    if kind == "binary":
        at = rng.randrange(0, len(data) - n + 1)
        return data[at : at + n]
    if kind == "text":
        runs = [m for m in re.finditer(rb"[\x20-\x7e]{12,}", data[: 4 * 1024 * 1024])]
        if not runs:
            return None
        m = rng.choice(runs)
        start = rng.randrange(m.start(), m.end() - 8 + 1)
        return data[start : min(m.end(), start + n)]
    runs = [m for m in re.finditer(rb"(?:[\x20-\x7e]\x00){6,}", data[: 4 * 1024 * 1024])]
    if not runs:
        return None
    m = rng.choice(runs)
    start = m.start() + 2 * rng.randrange(0, (m.end() - m.start()) // 2 - 4 + 1)
    return data[start : min(m.end(), start + 2 * (n // 2))]


def all_hits(services: Services, query: str) -> tuple[set[str], float, float]:
    started = time.perf_counter()
    first = 0.0
    found: set[str] = set()
    cursor = None
    while True:
        page = search.search(services, query, None, 300, cursor)
        if not first:
            first = time.perf_counter() - started
        found.update(h.sha256 for h in page.hits)
        if not page.cursor:
            return found, time.perf_counter() - started, first
        cursor = page.cursor


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--brute", type=int, default=12)
    parser.add_argument("--home", default="/tmp/kinfile-bench-content")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    settings = load_settings(
        {
            "home": args.home,
            "analysers": "none",
            "magika": "off",
            "engines": "none",
            "search_timeout": 120,
            "content_max_candidates": 1_000_000,
        }
    )
    services = Services(settings)
    marker = Path(args.home) / f"ingested-{args.gb}"
    if not marker.exists():
        paths = collect(int(args.gb * 1e9))
        t = time.perf_counter()
        summary = run_ingest(settings, paths, jobs=2)
        took = time.perf_counter() - t
        print(f"ingested {summary.new} new files ({summary.bytes / 1e6:.0f} MB) in {took:.0f} s")
        marker.write_text("ok")
    blobs = services.blobs
    with services.store.engine.connect() as conn:
        shas = [r[0] for r in conn.execute(sa.select(schema.files.c.sha256).order_by(schema.files.c.sha256))]
    total = sum(Path(blobs.local_path(s) or "").stat().st_size for s in shas)
    print(
        f"store: {len(shas)} files, {total / 1e6:.1f} MB; queue {content_queue.pending_count(services.store)}"
    )

    # -- indexing ---------------------------------------------------------------------------
    content = services.content
    content_queue.enqueue_all(services.store)
    content.index.clear()
    t = time.perf_counter()
    result = content.update()
    index_seconds = time.perf_counter() - t
    content.index.compact()
    tiered = content.status()
    t = time.perf_counter()
    content.index.compact(full=True)
    compact_seconds = time.perf_counter() - t
    full = content.status()
    print(
        f"indexing: {result.documents} files, {result.bytes / 1e6:.1f} MB in {index_seconds:.1f} s = "
        f"{result.bytes / 1e6 / index_seconds:.1f} MB/s (one process)"
    )
    print(
        f"index size: tiered {tiered['index_bytes'] / 1e6:.1f} MB ({tiered['size_ratio'] * 100:.1f} %, "
        f"{tiered['segments']} segments); full compaction {compact_seconds:.1f} s -> "
        f"{full['index_bytes'] / 1e6:.1f} MB ({full['size_ratio'] * 100:.1f} % of the bytes)"
    )

    # -- queries ----------------------------------------------------------------------------
    from kinfile.query.content import parse_content

    rng = random.Random(args.seed)
    queries: list[tuple[str, bytes]] = []
    kinds = ["binary", "text", "wide"]
    tries = 0
    while len(queries) < args.queries and tries < args.queries * 50:
        tries += 1
        kind = kinds[len(queries) % 3]
        sha = rng.choice(shas)
        path = blobs.local_path(sha) or ""
        with open(path, "rb") as fh:
            data = fh.read()
        lit = literal_from(data, rng, kind)
        if lit is None:
            continue
        q = "content:{" + lit.hex(" ") + "}"
        if not parse_content(q[len("content:") :]).selective:
            continue
        queries.append((kind, lit))
    times, firsts, hits_n = [], [], []
    results: list[set[str]] = []
    unselective = 0
    for kind, lit in queries:
        query = "content:{" + lit.hex(" ") + "}"
        try:
            found, seconds, first = all_hits(services, query)
        except Exception as exc:  # noqa: BLE001 - reported, counted
            unselective += 1
            print(f"  {kind} {lit.hex()}: {type(exc).__name__}: {exc}")
            results.append(set())
            continue
        times.append(seconds)
        firsts.append(first)
        hits_n.append(len(found))
        results.append(found)

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000

    print(
        f"queries: {len(times)} selective literals of 8-16 bytes ({unselective} refused); all pages: "
        f"p50 {pct(times, 0.5):.1f} ms, p90 {pct(times, 0.9):.1f} ms; first page p50 "
        f"{pct(firsts, 0.5):.1f} ms; hits per query median {statistics.median(hits_n):.0f}"
    )

    # -- brute force ------------------------------------------------------------------------
    brute_find, brute_yara = [], []
    mismatches = 0
    for (_kind, lit), found in list(zip(queries, results, strict=True))[: args.brute]:
        t = time.perf_counter()
        expected = set()
        for sha in shas:
            with (
                open(blobs.local_path(sha) or "", "rb") as fh,
                mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm,
            ):
                if mm.find(lit) >= 0:
                    expected.add(sha)
        brute_find.append(time.perf_counter() - t)
        rules = yara_x.compile("rule q { strings: $a = { " + lit.hex(" ") + " } condition: $a }")
        scanner = yara_x.Scanner(rules)
        t = time.perf_counter()
        yara_hits = set()
        for sha in shas:
            if scanner.scan_file(blobs.local_path(sha) or "").matching_rules:
                yara_hits.add(sha)
        brute_yara.append(time.perf_counter() - t)
        if expected != found or yara_hits != expected:
            mismatches += 1
            print(f"  MISMATCH {lit.hex()}: index {len(found)} find {len(expected)} yara {len(yara_hits)}")
    idx = statistics.median(times[: args.brute]) * 1000
    bf = statistics.median(brute_find) * 1000
    by = statistics.median(brute_yara) * 1000
    print(
        f"brute force over {len(shas)} blobs ({args.brute} queries, median): mmap.find {bf:.0f} ms, "
        f"yara-x {by:.0f} ms; index (same queries) {idx:.1f} ms -> speed-up x{bf / idx:.0f} over find, "
        f"x{by / idx:.0f} over yara-x; hit sets identical: {mismatches == 0}"
    )
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
