"""Daily vhash clusters at VirusTotal scale: one day of 200,000 candidates.

Builds the day through the store's bulk path (``Store.bulk_load``: multi-row inserts with the
same ``searchable`` columns as ingest) with a heavy-tailed cluster-size distribution (Zipf-like,
as VT's published days: about a quarter as many clusters as candidates, the top 200 holding
roughly half), verdict-shaped attributes (positives, AVClass families and categories), then
measures:

* ``compute``: the GROUP BY, the label votes of the top 200 and the labelling (no cache);
* ``first call``: ``day_clusters`` on a cold cache (state check + compute + cache write);
* ``v2 cached``: ``GET /vtapi/v2/file/clusters`` through the ASGI app (TestClient) on a cached
  day, p50/p95 over ``--requests`` calls.

    .venv/bin/python bench/clusters.py [--candidates 200000] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from kinfile import clusters
from kinfile.api.app import create_app
from kinfile.models import FileRecord, Submission
from kinfile.services import Services
from kinfile.settings import load_settings
from kinfile.storage.store import Store

DAY = "2024-06-01"
FAMILIES = ["emotet", "qakbot", "vilsel", "installmonster", "agenttesla", "formbook", "lokibot", "remcos"]
CATEGORIES = ["trojan", "adware", "downloader", "ransomware", "pua"]
TYPES = ["peexe", "pedll", "pdf", "doc", "rtf", "xls"]


def synthetic_day(candidates: int, seed: int = 7) -> Iterator[tuple[FileRecord, Submission]]:
    rng = random.Random(seed)
    start = int(time.mktime(time.strptime(DAY, "%Y-%m-%d"))) - time.timezone
    distinct = candidates // 4
    weights = [1.0 / (k + 1) ** 0.9 for k in range(distinct)]
    picks = rng.choices(range(distinct), weights=weights, k=candidates)
    for i, k in enumerate(picks):
        sha256 = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        positives = (k * 7) % 60 if k % 3 else 0
        attrs = {
            "vhash": f"pe1_{hashlib.blake2b(str(k).encode(), digest_size=10).hexdigest()}",
            "type_tag": TYPES[k % len(TYPES)],
            "last_analysis_stats": {"malicious": positives},
        }
        if positives:
            attrs["popular_threat_classification"] = {
                "popular_threat_name": [{"count": 5, "value": FAMILIES[(k + i % 2) % len(FAMILIES)]}],
                "popular_threat_category": [{"count": 3, "value": CATEGORIES[k % len(CATEGORIES)]}],
            }
        record = FileRecord(sha256=sha256, md5=sha256[:32], sha1=sha256[:40], size=1000 + k, attributes=attrs)
        yield record, Submission(date=start + i % 86400, name=None, source_key="bench", interface="import")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store(db)
        store.migrate()
        t = time.perf_counter()
        store.bulk_load(synthetic_day(args.candidates), side_tables=())
        print(
            f"build: {args.candidates} candidates bulk-loaded in {time.perf_counter() - t:.1f} s "
            f"({db.split(':')[0]})"
        )

        if store.dialect == "postgresql":  # what autovacuum does after a bulk load: visibility map, stats
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE files")
        start = int(clusters.parse_date(DAY).timestamp())
        state = clusters.sql.day_state(store, start, start + clusters.DAY)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            day = clusters.compute(store, start, start + clusters.DAY, DAY, 1, state.candidates)
            runs.append(time.perf_counter() - t)
        print(
            f"compute: {min(runs):.3f} s best, {statistics.median(runs):.3f} s median of 3 "
            f"({day.num_candidates} candidates, {day.num_clusters} clusters, top 200 hold {day.size_top200}; "
            f"largest {day.clusters[0].size} '{day.clusters[0].label}')"
        )
        t = time.perf_counter()
        clusters.day_clusters(store, DAY)
        print(f"first call (state + compute + cache write): {time.perf_counter() - t:.3f} s")

        time.sleep(1.1)  # results computed in the second of the newest change are not trusted
        settings = load_settings({"home": str(Path(tmp) / "home"), "db": db}, env={})
        services = Services(settings, store=store)
        key = store.create_api_key("bench")
        client = TestClient(create_app(settings, services))
        client.get("/vtapi/v2/file/clusters", params={"apikey": key, "date": DAY})  # cache it
        times = []
        for _ in range(args.requests):
            t = time.perf_counter()
            r = client.get("/vtapi/v2/file/clusters", params={"apikey": key, "date": DAY})
            times.append(time.perf_counter() - t)
            assert r.status_code == 200 and r.json()["response_code"] == 1
        times.sort()
        p95 = times[int(0.95 * (len(times) - 1))]
        print(
            f"v2 cached: p50 {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
            f"over {args.requests} requests ({len(r.content)} bytes)"
        )
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
