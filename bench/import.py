"""Import throughput: `kinfile import-vt` (Importer) on the shared VirusTotal reports.

    python bench/import.py [--copies 20] [--db sqlite|postgresql://...] [--jobs 1] [--grow]

The real reports of ../shared/vt are replicated with fresh hashes (so every record is a new
file): the 500 AVClass label lines ×copies and the v3 RTF report ×(copies×25). Each set goes into a
fresh SQLite store (or a fresh PostgreSQL schema). Prints reports/s for creation, for a
second pass that enriches the same files with the same reports, for a third (AVClass) that
enriches them with a newer scan (other labels: the detection words change), and the CPU time
per report of this process (parsing with one process; merging and writing) and of the worker
processes (``--jobs``). ``--grow``
imports only the AVClass lines, 10,000 at a time into the same store, and prints each step's
rate: how the import holds up as the store fills (a store of real use holds millions of files,
not the few thousand of one run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import tempfile
import time
from pathlib import Path

from kinfile.importer import Importer
from kinfile.storage.store import Store

VT = Path(__file__).resolve().parents[2] / "shared" / "vt"


def rehash(seed: str) -> tuple[str, str, str]:
    return (
        hashlib.md5(seed.encode()).hexdigest(),
        hashlib.sha1(seed.encode()).hexdigest(),
        hashlib.sha256(seed.encode()).hexdigest(),
    )


def avclass_lines(copies: int, newer: bool = False) -> list[str]:
    """The 500 label lines ×copies with fresh hashes; ``newer``: the same files scanned again
    (one engine fewer, every label changed, a scan date), as a label feed's update brings."""
    base = [json.loads(line) for line in (VT / "av_labels_500.jsonl").read_text().splitlines()]
    out = []
    for copy in range(copies):
        for i, rec in enumerate(base):
            md5, sha1, sha256 = rehash(f"av{copy}:{i}")
            line = {**rec, "md5": md5, "sha1": sha1, "sha256": sha256}
            if newer:
                line["av_labels"] = [[engine, f"{label}.B"] for engine, label in rec["av_labels"][1:]]
                line["scan_date"] = "2024-05-01 10:00:00"
            out.append(json.dumps(line))
    return out


def v3_lines(count: int) -> list[str]:
    doc = json.loads((VT / "vt_v3_file_report_rtf.json").read_text())["data"]
    out = []
    for i in range(count):
        md5, sha1, sha256 = rehash(f"v3:{i}")
        attrs = {**doc["attributes"], "md5": md5, "sha1": sha1, "sha256": sha256}
        out.append(json.dumps({"type": "file", "id": sha256, "attributes": attrs}))
    return out


def run(name: str, lines: list[str], db: str, jobs: int = 1, newer: list[str] | None = None) -> None:
    store = Store(db)
    store.migrate()
    for label in ("create", "enrich", "update"):
        if label == "update":
            if newer is None:
                break
            lines = newer
        cpu = _cpu()
        started = time.perf_counter()
        summary = Importer(store, "bench", jobs=jobs).import_lines(lines, name)
        seconds = time.perf_counter() - started
        writer, workers = (after - before for after, before in zip(_cpu(), cpu, strict=True))
        assert summary.failed == 0, summary.errors[:3]
        mb = sum(len(line) for line in lines) / 1e6
        per_report = 1e3 / summary.reports
        print(
            f"{name:8} {label:6} {summary.reports:6} reports {seconds:6.2f} s "
            f"{summary.reports / seconds:8.0f} reports/s {mb / seconds:6.1f} MB/s  CPU ms/report: "
            f"this process {writer * per_report:.3f}, workers {workers * per_report:.3f}"
        )
    store.close()


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished worker processes."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, workers.ru_utime + workers.ru_stime


def grow(lines: list[str], db: str, jobs: int, step: int = 10_000) -> None:
    store = Store(db)
    store.migrate()
    total, seconds = 0, 0.0
    for start in range(0, len(lines), step):
        began = time.perf_counter()
        summary = Importer(store, "bench", jobs=jobs).import_lines(lines[start : start + step])
        took = time.perf_counter() - began
        assert summary.failed == 0, summary.errors[:3]
        total, seconds = total + summary.reports, seconds + took
        print(
            f"stored {start:8,} +{summary.reports:6} reports {summary.reports / took:8.0f} reports/s",
            flush=True,
        )
    print(f"all     {total:8,} reports {seconds:7.1f} s {total / seconds:8.0f} reports/s")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes parsing the lines")
    parser.add_argument("--grow", action="store_true", help="AVClass lines, 10,000 at a time, one store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.grow:
            grow(
                avclass_lines(args.copies),
                f"sqlite:///{tmp}/grow.db" if args.db == "sqlite" else args.db,
                args.jobs,
            )
            return
        sets = (
            ("avclass", avclass_lines(args.copies), avclass_lines(args.copies, newer=True)),
            ("vt-v3", v3_lines(args.copies * 25), None),
        )
        for name, lines, newer in sets:
            db = f"sqlite:///{tmp}/{name}.db" if args.db == "sqlite" else args.db
            run(name, lines, db, args.jobs, newer)


if __name__ == "__main__":
    main()
