"""Ingest throughput: `kinfile ingest` end to end with 1 and N workers, against hashing alone.

    python bench/ingest.py [FOLDER] [--jobs 1,2] [--profiles foundation,full]

FOLDER defaults to ../shared/corpus/files. Each run ingests into a fresh temporary home
(SQLite + file blobs). The baseline, timed in the same run over the same files, is hashing
alone (sha256 + ssdeep + TLSH) with 1 and N processes. Prints files/s, MB/s, per-file
latency p50/p99 (worker side) and the ratio to the baseline with as many processes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from kinfile.hashing.digests import digest_bytes
from kinfile.hashing.fuzzy import ssdeep_hash, tlsh_hash
from kinfile.ingest import iter_paths, run_ingest
from kinfile.settings import load_settings

PROFILES = {
    "foundation": {"analysers": "none", "exiftool": "off", "engines": "none", "magika": "all"},
    "foundation-magika-auto": {"analysers": "none", "exiftool": "off", "engines": "none", "magika": "auto"},
    "full": {"analysers": "all", "exiftool": "off", "engines": "auto", "magika": "all"},
    "full-magika-auto": {"analysers": "all", "exiftool": "off", "engines": "auto", "magika": "auto"},
    "full+exiftool": {"analysers": "all", "exiftool": "auto", "engines": "auto", "magika": "all"},
}
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "files"


def _hash_one(path: str) -> int:
    data = Path(path).read_bytes()
    digest_bytes(data)
    ssdeep_hash(data)
    tlsh_hash(data)
    return len(data)


def _magika_one(path: str) -> int:
    from kinfile.formats.detect import magika_label

    magika_label(Path(path).read_bytes())
    return 1


def magika_baseline(paths: list[str], jobs: int) -> float:
    """Files/s of the Magika model alone (one-thread sessions, one per process)."""
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_magika_one, paths[: jobs * 4]))  # load the model in every worker first
        started = time.perf_counter()
        done = sum(pool.map(_magika_one, paths, chunksize=16))
    return done / (time.perf_counter() - started)


def hashing_baseline(paths: list[str], jobs: int) -> tuple[float, float]:
    started = time.perf_counter()
    if jobs == 1:
        total = sum(_hash_one(p) for p in paths)
    else:
        with ProcessPoolExecutor(jobs) as pool:
            total = sum(pool.map(_hash_one, paths, chunksize=16))
    secs = time.perf_counter() - started
    return len(paths) / secs, total / 1e6 / secs


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument(
        "--profiles",
        default="foundation,full",
        help="foundation = identification + hashes + storage (no format analysers, ExifTool or "
        "engines); full = every format analyser, ExifTool (if installed) and the default engines",
    )
    args = ap.parse_args()
    paths = list(iter_paths([args.folder]))
    size = sum(Path(p).stat().st_size for p in paths)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"commit {commit}; {len(paths)} files, {size / 1e6:.1f} MB from {args.folder}")
    for p in paths:  # warm the page cache so every run reads from memory
        Path(p).read_bytes()
    jobs_list = [int(j) for j in args.jobs.split(",")]
    baseline = {}
    for j in jobs_list:
        fps, mbs = hashing_baseline(paths, j)
        baseline[j] = fps
        print(f"baseline hashing (sha256+ssdeep+tlsh) jobs={j}: {fps:7.0f} files/s {mbs:6.1f} MB/s")
        print(f"baseline Magika model alone jobs={j}: {magika_baseline(paths, j):7.0f} files/s")
    print(
        "| profile | jobs | files/s | MB/s | p50 ms | p99 ms | ratio to hashing (same jobs) "
        "| CPU ms/file | files/s the cores allow | new/dup/failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for profile in args.profiles.split(","):
        for j in jobs_list:
            with tempfile.TemporaryDirectory() as home:
                settings = load_settings({"home": home, **PROFILES[profile]}, env={})
                cpu0 = cpu_seconds()
                s = run_ingest(settings, paths, jobs=j)
                cpu = cpu_seconds() - cpu0
            fps = s.total / s.seconds
            print(
                f"| {profile} | {j} | {fps:.0f} | {s.bytes / 1e6 / s.seconds:.1f} | "
                f"{1000 * statistics.median(s.latencies):.1f} | {1000 * pct(s.latencies, 0.99):.1f} | "
                f"{fps / baseline[j]:.2f} | {1000 * cpu / s.total:.2f} | "
                f"{(os.cpu_count() or 1) * s.total / cpu:.0f} | "
                f"{s.new}/{s.duplicate}/{s.failed} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
