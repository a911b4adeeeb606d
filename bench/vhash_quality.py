"""vhash quality against ground-truth families: pairwise precision/recall and cluster counts.

Every file of the shared corpus is analysed with kinfile's pipeline (sub-files off, ExifTool
off), then, per file kind, each method says which pairs of files belong together:

* ``vhash`` and ``imphash``: the two files have the same (non-empty) value;
* ``ssdeep>0``: ``pydeep.compare`` > 0; ``tlsh<=30`` / ``tlsh<=70``: ``tlsh.diff`` ≤ 30 / 70.

A pair is a true positive when both files are in the same family of ``families.json``; recall
is over all same-family pairs of that kind (a file a method cannot hash misses all its pairs).
Clusters: distinct keys (key methods) or connected components (threshold methods), files
without a value counted as singletons.

    .venv/bin/python bench/vhash_quality.py [--corpus ../shared/corpus] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydeep
import tlsh

from kinfile.analysis.pipeline import Limits, analyse_bytes
from kinfile.hashing.vhash import compute_vhash

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
GROUPS = {
    "PE": ("pe", "pe_dotnet"),
    "PDF": ("pdf",),
    "OLE2": ("ole2",),
    "RTF": ("rtf",),
    "OOXML": ("ooxml",),
    "ELF": ("elf",),
    "Mach-O": ("macho",),
}


class File:
    __slots__ = ("sha256", "kind", "family", "vhash", "imphash", "ssdeep", "tlsh")

    def __init__(self, row: dict[str, Any], attrs: dict[str, Any]) -> None:
        self.sha256 = row["sha256"]
        self.kind = row["kind"]
        self.family = row.get("family")
        self.vhash = attrs.get("vhash") or compute_vhash(attrs)
        self.imphash = (attrs.get("pe_info") or {}).get("imphash")
        self.ssdeep = attrs.get("ssdeep")
        self.tlsh = attrs.get("tlsh")


def load(corpus: Path) -> list[File]:
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    limits = Limits(max_depth=0, exiftool="off")
    out = []
    for row in rows:
        data = (corpus / "files" / row["sha256"]).read_bytes()
        out.append(File(row, analyse_bytes(data, None, limits).record.attributes))
    return out


def key_pairs(files: list[File], key: Callable[[File], str | None]) -> tuple[set[tuple[int, int]], int]:
    groups: dict[str, list[int]] = defaultdict(list)
    singles = 0
    for i, f in enumerate(files):
        value = key(f)
        if value:
            groups[value].append(i)
        else:
            singles += 1
    pairs = {p for members in groups.values() for p in itertools.combinations(members, 2)}
    return pairs, len(groups) + singles


def threshold_pairs(
    files: list[File], value: Callable[[File], str | None], close: Callable[[str, str], bool]
) -> tuple[set[tuple[int, int]], int]:
    indexed = [(i, value(f)) for i, f in enumerate(files)]
    present = [(i, v) for i, v in indexed if v]
    pairs = {(i, j) for (i, a), (j, b) in itertools.combinations(present, 2) if close(a, b)}
    return pairs, components(len(files), pairs)


def components(n: int, pairs: set[tuple[int, int]]) -> int:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    return len({find(i) for i in range(n)})


def ssdeep_close(a: str, b: str) -> bool:
    return pydeep.compare(a.encode(), b.encode()) > 0


def tlsh_close(limit: int) -> Callable[[str, str], bool]:
    return lambda a, b: tlsh.diff(a, b) <= limit


METHODS: dict[str, Callable[[list[File]], tuple[set[tuple[int, int]], int]]] = {
    "vhash": lambda fs: key_pairs(fs, lambda f: f.vhash),
    "imphash": lambda fs: key_pairs(fs, lambda f: f.imphash),
    "ssdeep>0": lambda fs: threshold_pairs(fs, lambda f: f.ssdeep, ssdeep_close),
    "tlsh<=30": lambda fs: threshold_pairs(fs, lambda f: f.tlsh, tlsh_close(30)),
    "tlsh<=70": lambda fs: threshold_pairs(fs, lambda f: f.tlsh, tlsh_close(70)),
}


def evaluate(files: list[File]) -> list[dict[str, Any]]:
    truth = {
        p
        for p in itertools.combinations(range(len(files)), 2)
        if files[p[0]].family and files[p[0]].family == files[p[1]].family
    }
    families = len({f.family for f in files if f.family}) + sum(1 for f in files if not f.family)
    rows = []
    for name, method in METHODS.items():
        predicted, clusters = method(files)
        tp = len(predicted & truth)
        rows.append(
            {
                "method": name,
                "files": len(files),
                "true_pairs": len(truth),
                "predicted_pairs": len(predicted),
                "precision": round(tp / len(predicted), 3) if predicted else None,
                "recall": round(tp / len(truth), 3) if truth else None,
                "clusters": clusters,
                "families": families,
            }
        )
    return rows


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "| kind | method | files | same-family pairs | predicted pairs | precision | recall "
        "| clusters (families) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for group, rows in results.items():
        for r in rows:
            p = "—" if r["precision"] is None else f"{r['precision']:.3f}"
            rc = "—" if r["recall"] is None else f"{r['recall']:.3f}"
            lines.append(
                f"| {group} | {r['method']} | {r['files']} | {r['true_pairs']} | {r['predicted_pairs']} | "
                f"{p} | {rc} | {r['clusters']} ({r['families']}) |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if not (args.corpus / "manifest.jsonl").exists():
        print(f"corpus not found at {args.corpus}", file=sys.stderr)
        return 2
    started = time.monotonic()
    files = load(args.corpus)
    analysed = time.monotonic() - started
    results = {group: evaluate([f for f in files if f.kind in kinds]) for group, kinds in GROUPS.items()}
    print(table(results))
    covered = Counter(f.kind for f in files if f.vhash)
    print(
        f"\n{len(files)} files analysed in {analysed:.1f} s; "
        f"vhash computed for {sum(covered.values())}: {dict(covered)}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
