"""YARA engine throughput against bare yara-x, same compiled rules, same bytes, same run.

    python bench/yara.py [--rules ../shared/rules/reversinglabs] [--corpus ../shared/corpus/files]
                         [--rounds 3] [--max-mb 400]

Files are read into memory first. Each round times bare ``yara_x.Scanner.scan`` over every file,
then ``YaraEngine.scan`` (the engine kinfile runs: result building, rule metadata, timeout
handling) over the same bytes with the engine's own compiled rules; the best round of each is
reported (the machine is shared). Prints MB/s, files/s and the ratio engine / bare.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yara_x

from kinfile.engines.base import Target
from kinfile.engines.yara import YaraEngine, parse_rulesets

SHARED = Path(__file__).resolve().parents[2] / "shared"


def load(corpus: Path, max_mb: float) -> list[bytes]:
    out, total = [], 0
    for path in sorted(corpus.iterdir()):
        data = path.read_bytes()
        if total + len(data) > max_mb * 1e6:
            break
        out.append(data)
        total += len(data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", default=str(SHARED / "rules" / "reversinglabs"))
    parser.add_argument("--corpus", default=str(SHARED / "corpus" / "files"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-mb", type=float, default=400.0)
    args = parser.parse_args()
    started = time.perf_counter()
    engine = YaraEngine(parse_rulesets(args.rules), None, timeout=60)
    count = sum(len(r.files) for r in engine.rulesets)
    print(f"compiled {count} rule files in {time.perf_counter() - started:.2f} s")
    files = load(Path(args.corpus), args.max_mb)
    mb = sum(len(d) for d in files) / 1e6
    print(f"{len(files)} files, {mb:.1f} MB in memory")
    bare_scanner = yara_x.Scanner(engine.rules)
    bare_scanner.set_timeout(60)
    best_bare = best_engine = float("inf")
    detected = 0
    for _ in range(args.rounds):
        t = time.perf_counter()
        for data in files:
            bare_scanner.scan(data)
        best_bare = min(best_bare, time.perf_counter() - t)
        t = time.perf_counter()
        detected = 0
        for data in files:
            verdict = engine.scan(Target(data))
            detected += verdict.results["YARA"]["category"] != "undetected"
        best_engine = min(best_engine, time.perf_counter() - t)
    for label, seconds in (("bare yara-x", best_bare), ("YaraEngine", best_engine)):
        print(f"{label:12} {seconds:7.2f} s {mb / seconds:7.1f} MB/s {len(files) / seconds:8.1f} files/s")
    print(f"engine / bare = {best_bare / best_engine:.1%}; files with a match: {detected}")


if __name__ == "__main__":
    main()
