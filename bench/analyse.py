"""Format analysers: files/s and MB/s per format on one core, pefile's full parse as baseline.

    python bench/analyse.py [FOLDER] [--repeat N]

FOLDER defaults to ../shared/corpus/files. Files are read into memory first; each format's
analyser runs over every file of that format (identified by kinfile.formats.detect). The
baseline, in the same run, is ``pefile.PE(data=...)`` (full parse) over the same PE files. The
whole ingest pipeline with every analyser is measured by ``bench/ingest.py --analysers all``.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from kinfile.formats.common import Deadline
from kinfile.formats.detect import identify
from kinfile.formats.registry import analyser_for

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "files"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    files = [p.read_bytes() for p in sorted(Path(args.folder).iterdir()) if p.is_file()]
    by_format: dict[str, list[bytes]] = defaultdict(list)
    for data in files:
        fmt = identify(data, magika="off").get("format")
        by_format[fmt or "generic"].append(data)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"commit {commit}; {len(files)} files, {sum(map(len, files)) / 1e6:.1f} MB; one core")
    print("| format | files | MB | files/s | MB/s | max ms/file |")
    print("|---|---|---|---|---|---|")
    for fmt in sorted(by_format):
        analyser = analyser_for(fmt)
        if analyser is None:
            continue
        group = by_format[fmt]
        worst = 0.0
        started = time.perf_counter()
        for _ in range(args.repeat):
            for data in group:
                t0 = time.perf_counter()
                analyser(data, Deadline(10))
                worst = max(worst, time.perf_counter() - t0)
        secs = (time.perf_counter() - started) / args.repeat
        mb = sum(map(len, group)) / 1e6
        rate = len(group) / secs
        print(f"| {fmt} | {len(group)} | {mb:.1f} | {rate:.0f} | {mb / secs:.1f} | {worst * 1000:.0f} |")
    pes = by_format.get("pe", [])
    if pes:
        import pefile

        started = time.perf_counter()
        for data in pes:
            with contextlib.suppress(pefile.PEFormatError):
                pefile.PE(data=data, fast_load=False)
        secs = time.perf_counter() - started
        print(
            f"| baseline: pefile full parse | {len(pes)} | {sum(map(len, pes)) / 1e6:.1f} | "
            f"{len(pes) / secs:.0f} | {sum(map(len, pes)) / 1e6 / secs:.1f} | |"
        )


if __name__ == "__main__":
    main()
