"""``import-vt --jobs N``: worker processes that parse, prepare AND write, in input order.

The input is cut into chunks of :data:`CHUNK` lines. A worker process prepares a chunk
(``importer.prepare_values``: parsing, AVClass, the rows and documents of new files, the
merged replacements of stored ones) and then writes it itself (``Importer.write_outcomes``,
the batches and transactions of a one-process import), through its own connection.

Why the workers write: with one writer process, every prepared report crossed from a worker to
it (pickled there, unpickled here: ~0.05-0.1 ms of the ~0.75 ms of CPU a report costs) and three
processes shared two cores, the writer waiting on workers and the workers on the writer. Here
each worker's time goes to the report itself and one worker writes while the others prepare.

Chunks are written **in input order**, as a one-process import writes them: a chunk waits for
the previous one's commit (a turn counter under a shared condition). So two reports of one file
in different chunks merge in the order of the input, and a summary's errors come in line order.
A chunk prepared while an earlier one was being written may find its new files stored by then
or its stored reports changed: the writer's checks handle both (``write_new`` enriches a file
inserted meanwhile; a replacement is written only while its base is unchanged), as they do for
concurrent imports. A failure in any worker stops the import: the chunks after it are not written
(the abort flag), and the error reaches the caller as in a one-process import.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from kinfile.importer import Importer, ImportSummary, prepare_values
from kinfile.storage.store import Store

CHUNK = 10_000  # lines per worker task: at most one transaction of new files (BULK_BATCH)
WAIT = 1.0  # seconds between checks that the importing process is still there

_STORES: dict[str, Store] = {}  # a worker process's store, per database
_TURN: tuple[Any, Any, Any, int] | None = None  # (condition, next chunk to write, abort flag, parent pid)


def import_lines(
    importer: Importer, lines: Iterator[tuple[int, Any]], where: str, summary: ImportSummary
) -> int:
    """Import ``(line number, raw line)`` pairs with ``importer.jobs`` worker processes; adds to
    ``summary`` and returns the last line number."""
    context = multiprocessing.get_context()
    condition = context.Condition()
    turn = context.RawValue("q", 0)
    abort = context.RawValue("b", 0)
    pool = ProcessPoolExecutor(
        max_workers=importer.jobs,
        mp_context=context,
        initializer=_start,
        initargs=(condition, turn, abort, os.getpid()),
    )
    last_line = 0
    try:
        inflight: deque[Future[ImportSummary]] = deque()
        for index, chunk in enumerate(_chunks(lines)):
            last_line = chunk[-1][0]
            args = (index, chunk, importer.source, importer.store.url, where)
            inflight.append(pool.submit(_import_chunk, args))
            if len(inflight) > importer.jobs:  # one chunk queued: a worker never waits for input
                _add(summary, inflight.popleft().result())
        while inflight:
            _add(summary, inflight.popleft().result())
    except BaseException:
        with condition:  # the chunks not written yet stay so
            abort.value = 1
            condition.notify_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return last_line


def _chunks(lines: Iterator[tuple[int, Any]]) -> Iterator[list[tuple[int, Any]]]:
    """:data:`CHUNK` lines at a time, the first chunk half as long: its worker writes it while the
    second worker still prepares the second, which therefore never waits for its turn (chunks of
    one size start together, and the second would wait for the whole first write)."""
    size = CHUNK // 2
    while chunk := list(itertools.islice(lines, size)):
        yield chunk
        size = CHUNK


def _add(summary: ImportSummary, part: ImportSummary) -> None:
    summary.reports += part.reports
    summary.created += part.created
    summary.enriched += part.enriched
    for where, line, message in part.errors:
        summary.error(where, line, message)
    summary.failed += part.failed - len(part.errors)  # beyond the listed errors (MAX_ERRORS)


# -- in a worker process --------------------------------------------------------------------------
def _start(condition: Any, turn: Any, abort: Any, parent: int) -> None:
    global _TURN
    _TURN = (condition, turn, abort, parent)


def _import_chunk(args: tuple[int, list[tuple[int, Any]], str, str, str]) -> ImportSummary:
    index, chunk, source, url, where = args
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = Store(url)
    importer = Importer(store, source)
    summary = ImportSummary()
    failed = True
    try:
        outcomes = prepare_values(chunk, source, None, importer.terms, store.get_reports)
        if _my_turn(index):
            importer.write_outcomes(outcomes, where, summary)
        failed = False
    finally:
        _pass_turn(index, failed)
    return summary


def _my_turn(index: int) -> bool:
    """Wait until every chunk before ``index`` is written; ``False`` if the import was aborted."""
    assert _TURN is not None
    condition, turn, abort, parent = _TURN
    with condition:
        while turn.value != index and not abort.value:
            condition.wait(WAIT)
            if os.getppid() != parent:  # the importing process is gone
                abort.value = 1
        return not abort.value


def _pass_turn(index: int, failed: bool) -> None:
    assert _TURN is not None
    condition, turn, abort, _parent = _TURN
    with condition:
        if failed:
            abort.value = 1
        if turn.value == index:
            turn.value = index + 1
        condition.notify_all()
