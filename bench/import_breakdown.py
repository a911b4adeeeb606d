"""Where an AVClass line's import time goes: CPU per report of each stage, measured apart.

    python bench/import_breakdown.py [--copies 40]

The same lines as bench/import.py (the 500 real label sets of ../shared/vt ×copies, fresh
hashes). Stages, each timed alone in this process (CPU time, memo tables warm: the first 1,000
lines are prepared once before timing):

* ``parse``: ``jsontext.loads_line`` of each line;
* ``prepare``: ``importer.prepare_values`` in 1,000-line chunks (what a worker process does per
  line: parse, the fast lane's report, AVClass, the ``files`` row, the detection document), and
  parts of it timed on their own (AVClass, the detection document, the ``files`` columns, the
  stored report's JSON and its compression);
* ``transport``: pickling a chunk's prepared reports (worker) and unpickling them (writer);
* ``write``: ``bulk.write_new`` into a fresh SQLite store, 10,000 files per transaction, three
  ways in the same run: as imported (compressed reports), with the reports as JSON text (the
  form before compression), and without the FTS5 detection documents (what the detection index
  costs; not a configuration kinfile offers).

The sum of prepare + transport + write is the CPU one report needs; two cores give at most
2 / that per millisecond. The import itself (bench/import.py) also pays for three processes
sharing two cores and for waiting on each other.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kinfile import jsontext
from kinfile.engines import avclass
from kinfile.importer import paused_gc, prepare_values
from kinfile.storage import bulk, searchable
from kinfile.storage.bulk import NewFile
from kinfile.storage.store import Store

CHUNK = 1000


def cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    """CPU milliseconds of ``work()`` and its result, with the cycle collector paused as the
    importer pauses it (importer.paused_gc)."""
    gc.collect()
    with paused_gc():
        started = time.process_time()
        out = work()
        return (time.process_time() - started) * 1e3, out


def write_ms(files: list[NewFile]) -> tuple[float, float]:
    """Writer CPU ms per file of ``bulk.write_new`` in 10,000-file transactions, and the MB stored."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/b.db")
        store.migrate()
        ms, _out = cpu(
            lambda: [bulk.write_new(store, files[i : i + 10_000]) for i in range(0, len(files), 10_000)]
        )
        store.close()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
    return ms / len(files), size


def stages(chunk: list[tuple[int, str]], spent: dict[str, float]) -> list[NewFile]:
    """Time each stage on one chunk, as a worker and the writer meet it (adds CPU ms to ``spent``)."""

    def timed(name: str, work: Callable[[], Any]) -> Any:
        ms, out = cpu(work)
        spent[name] = spent.get(name, 0.0) + ms
        return out

    timed("parse (loads_line)", lambda: [jsontext.loads_line(line) for _n, line in chunk])
    prepared = timed("prepare (prepare_values)", lambda: prepare_values(chunk, "bench", None, True))
    reports = [jsontext.loads_report(p.new.row["report"]) for _n, found in prepared for p in found]
    timed(
        "  of which AVClass",
        lambda: [
            avclass.classify(r["md5"], r["sha1"], r["sha256"], r["last_analysis_results"]) for r in reports
        ],
    )
    timed("  of which detection document", lambda: [bulk.av_document(r) for r in reports])
    timed("  of which files columns", lambda: [searchable.file_columns(r) for r in reports])
    texts = timed("  of which report JSON", lambda: [jsontext.dumps_report(r) for r in reports])
    timed("  of which compression", lambda: [jsontext.pack_report(t) for t in texts])
    data = timed("transport: pickle (worker)", lambda: pickle.dumps(prepared, protocol=5))
    timed("transport: unpickle (writer)", lambda: pickle.loads(data))
    spent["json bytes"] = spent.get("json bytes", 0.0) + sum(len(t) for t in texts)
    return [p.new for _n, found in prepared for p in found if p.new is not None]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=40)
    args = parser.parse_args()
    lines = importlib.import_module("import").avclass_lines(args.copies)  # bench/import.py
    values = list(enumerate(lines, 1))
    prepare_values(values[:CHUNK], "bench", None, True)  # warm the memo tables
    spent: dict[str, float] = {}
    files: list[NewFile] = []
    for start in range(CHUNK, len(values), CHUNK):
        files.extend(stages(values[start : start + CHUNK], spent))
    n = len(files)
    texts_bytes = spent.pop("json bytes")
    rows = [(name, ms / n) for name, ms in spent.items()]
    as_text = [
        dataclasses.replace(f, row={**f.row, "report": jsontext.unpack_report(f.row["report"])})
        for f in files
    ]
    no_terms = [dataclasses.replace(f, terms="") for f in files]
    best: dict[str, tuple[float, float]] = {}
    for _round in range(2):  # alternating, the best of two: the VM's speed drifts
        for name, variant in (("compressed", files), ("text", as_text), ("no FTS5", no_terms)):
            found = write_ms(variant)
            best[name] = min(best.get(name, found), found)
    written, size = best["compressed"]
    rows.append(("write (compressed reports)", written))
    rows.append(("write (reports as JSON text)", best["text"][0]))
    rows.append(("write without FTS5 documents", best["no FTS5"][0]))
    for label, ms in rows:
        print(f"{label:32} {ms:7.3f} ms/report")
    per = dict(rows)
    total = per["prepare (prepare_values)"] + per["transport: pickle (worker)"]
    total += per["transport: unpickle (writer)"] + written
    ceiling = 2e3 / total
    print(f"{'prepare + transport + write':32} {total:7.3f} ms/report: at most {ceiling:,.0f}/s on 2 cores")
    stored = sum(len(f.row["report"]) for f in files) / n
    print(f"reports: {n:,}; database {size:.0f} MB (compressed) vs {best['text'][1]:.0f} MB (text)")
    print(f"report bytes: {texts_bytes / n:,.0f} as JSON, {stored:,.0f} stored")


if __name__ == "__main__":
    main()
