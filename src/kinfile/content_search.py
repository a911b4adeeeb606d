"""``content:`` searches (VTGrep): index candidates, exact verification, parents, snippets.

Flow of a query: split the AND-ed terms into ``content:`` patterns and the few modifiers that may
go with them; get each selective pattern's candidate documents from the n-gram index (plus the
files still queued for it); lift documents to the files that contain them (a match in a sub-file
reports every stored container too, with ``match_in_subfile``); filter with the other modifiers in
SQL; then verify candidates in sha256 order against their bytes until a page is full. Results are
exact: no candidate is reported unverified, and the index never drops a true match. The order is
always sha256 (``order`` is ignored, as on VirusTotal); the cursor is the last sha256 verified.
"""

from __future__ import annotations

import functools
import hashlib
import mmap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import yara_x

from kinfile.contentindex.index import OVERLAP, chunk_window
from kinfile.errors import (
    BadRequestError,
    DeadlineExceededError,
    InvalidArgumentError,
    UnselectiveContentQueryError,
    UnsupportedContentQueryError,
)
from kinfile.query import compiler
from kinfile.query.ast import And, Node, Term, terms
from kinfile.query.content import ContentPattern, hexdump_snippet, parse_content
from kinfile.query.fields import ALIASES
from kinfile.similarity import QueryDeadline
from kinfile.storage import content_queue, schema

if TYPE_CHECKING:
    from kinfile.search import SearchPage
    from kinfile.services import Services

COMBINABLE = frozenset({"size", "type", "fs", "ls", "imphash", "positives", "tag", "submissions"})
SNIPPET_CONTEXT = 32
SNIPPET_MAX = 256  # matched bytes shown in a snippet


def is_content_query(node: Node) -> bool:
    return any(t.modifier == "content" for t in terms(node))


def split(node: Node, query: str) -> tuple[list[ContentPattern], list[Node]]:
    """The content patterns and the other conjuncts; UnsupportedContentQueryError otherwise."""
    conjuncts = _conjuncts(node)
    patterns: list[ContentPattern] = []
    others: list[Node] = []
    for part in conjuncts:
        if isinstance(part, Term) and part.modifier == "content":
            start, end = part.value_span
            patterns.append(parse_content(query[start:end], start))
            continue
        for term in terms(part):
            name = ALIASES.get(term.modifier or "", term.modifier)
            if term.modifier == "content":
                raise UnsupportedContentQueryError(
                    "content: can only be AND-ed with other terms, not OR-ed or negated", span=term.span
                )
            if name not in COMBINABLE:
                shown = f"{term.modifier}:" if term.modifier else f"the word {term.value!r}"
                raise UnsupportedContentQueryError(
                    f"{shown} cannot be combined with content:; allowed: " + ", ".join(sorted(COMBINABLE)),
                    span=term.span,
                )
        others.append(part)
    return patterns, others


def _conjuncts(node: Node) -> list[Node]:
    """The AND-ed parts of a query, nested ANDs (parentheses) flattened."""
    if isinstance(node, And):
        return [part for child in node.children for part in _conjuncts(child)]
    return [node]


def _little_endian(g: int) -> int:
    """The pattern planner numbers trigrams big-endian; the index reads them little-endian."""
    return ((g & 0xFF) << 16) | (g & 0xFF00) | (g >> 16)


def index_plan(pattern: ContentPattern) -> list[list[frozenset[int]]]:
    return [[frozenset(_little_endian(g) for g in alt) for alt in req] for req in pattern.plan]


@dataclass
class Match:
    doc: str
    start: int
    end: int


class _Verifier:
    """Finds patterns in stored bytes (mapped when local), memoised per (document, pattern)."""

    def __init__(self, services: Services, deadline: QueryDeadline) -> None:
        self.blobs = services.blobs
        self.deadline = deadline
        self.memo: dict[tuple[str, int], Match | None] = {}
        self.bytes_read = 0

    @contextmanager
    def _data(self, sha256: str) -> Iterator[Any]:
        path = self.blobs.local_path(sha256)
        if path is None:
            try:
                yield self.blobs.read(sha256)
            except (FileNotFoundError, OSError):
                yield None
            return
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError:
            yield None
            return
        with fh:
            try:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # empty file
                yield b""
                return
            with mapped:
                yield mapped

    def find(self, doc: str, index: int, pattern: ContentPattern, chunks: set[int] | None) -> Match | None:
        """The first match in ``doc`` (only inside the given chunks when not None)."""
        key = (doc, index)
        if key not in self.memo:
            with self._data(doc) as data:
                self.memo[key] = None if data is None else self._search(doc, data, pattern, chunks)
        return self.memo[key]

    def _search(self, doc: str, data: Any, pattern: ContentPattern, chunks: set[int] | None) -> Match | None:
        windows = [(0, len(data))] if chunks is None else [chunk_window(c, len(data)) for c in sorted(chunks)]
        for start, end in windows:
            self.bytes_read += end - start
            if pattern.has_jumps:
                found = _yara_find(pattern, data, start, end, self.deadline)
            else:
                found = pattern.find(data, start, end)
            if found:
                return Match(doc, *found)
        return None


@functools.lru_cache(maxsize=256)
def _yara_rules(hex_string: str) -> yara_x.Rules:
    return yara_x.compile("rule content { strings: $a = { " + hex_string + " } condition: $a }")


def _yara_find(
    pattern: ContentPattern, data: Any, start: int, end: int, deadline: QueryDeadline
) -> tuple[int, int] | None:
    """The first match of a pattern with jumps in ``data[start:end]``, by yara-x: a backtracking
    regex could take hours on hostile bytes (``A [0-1048576] B`` over megabytes of ``A``), while
    yara-x chains the fixed parts by distance and stops at its timeout."""
    low = max(start, pattern.min_offset or 0)
    high = end if pattern.max_offset is None else min(end, pattern.max_offset + pattern.max_length)
    if high - low < pattern.min_length:
        return None
    scanner = yara_x.Scanner(_yara_rules(pattern.yara_hex))
    scanner.set_timeout(max(1, int(deadline.remaining())))
    try:
        results = scanner.scan(bytes(data[low:high]))
    except yara_x.TimeoutError as exc:
        raise DeadlineExceededError(
            "verifying the content pattern took longer than the search deadline"
        ) from exc
    best: tuple[int, int] | None = None
    for rule in results.matching_rules:
        for found in rule.patterns:
            for m in found.matches:
                at = low + m.offset
                if pattern.max_offset is not None and at > pattern.max_offset:
                    continue
                if best is None or at < best[0]:
                    best = (at, at + m.length)
    return best


def _candidates(
    services: Services, patterns: list[ContentPattern], deadline: QueryDeadline
) -> dict[int, dict[str, set[int] | None]]:
    """Candidate documents per selective pattern (index ∪ queue), with the chunks to verify
    (None = the whole file)."""
    content = services.content
    cap = services.settings.content_max_candidates
    queued = set(content_queue.pending_sha256s(services.store, cap + 1))
    per_pattern: dict[int, dict[str, set[int] | None]] = {}
    for i, pattern in enumerate(patterns):
        if not pattern.selective:
            continue
        deadline.check()
        docs = content.index.candidates(
            index_plan(pattern),
            per_file=pattern.max_length > OVERLAP,
            should_stop=lambda: deadline.remaining() <= 0,
        ).chunks
        deadline.check()
        docs.update(dict.fromkeys(queued))  # not indexed yet: the whole file
        if len(docs) > cap:
            raise UnselectiveContentQueryError(
                f"content pattern {pattern.raw[:60]!r} leaves more than {cap} files to verify "
                "(its n-grams are too common); add more bytes"
            )
        per_pattern[i] = docs
    return per_pattern


def _result_candidates(
    services: Services, per_pattern: dict[int, dict[str, set[int] | None]]
) -> tuple[set[str], dict[str, set[str]]]:
    """Files that may match (candidate documents and their containers), and for each such file
    the candidate documents inside it."""
    depth = services.settings.max_child_depth
    inside: dict[str, set[str]] = {}
    result: set[str] | None = None
    for docs in per_pattern.values():
        lifted: set[str] = set()
        for doc, containers in content_queue.ancestors(services.store, docs, depth).items():
            lifted.add(doc)
            inside.setdefault(doc, set()).add(doc)
            for parent in containers:
                lifted.add(parent)
                inside.setdefault(parent, set()).add(doc)
        result = lifted if result is None else result & lifted
    return result or set(), inside


def search(
    services: Services,
    query: str,
    node: Node,
    limit: int,
    cursor: str | None,
    deadline: QueryDeadline,
    env_factory: Callable[[int], Any],
) -> tuple[list[tuple[str, dict[str, Any]]], str | None, dict[str, Any]]:
    """One page: ``[(sha256, context_attributes)]``, the next cursor and meta."""
    patterns, others = split(node, query)
    if not any(p.selective for p in patterns):
        reason = next((p.unselective_reason for p in patterns if p.unselective_reason), None)
        raise UnselectiveContentQueryError(
            f"content: the pattern is unselective: {reason or 'no run of 4 known bytes'}"
        )
    qhash = hashlib.sha256(("content\0" + query).encode()).hexdigest()[:16]
    page = services.decode_cursor(cursor)
    if cursor and (page.get("q") != qhash or not isinstance(page.get("s"), str)):
        raise InvalidArgumentError("invalid cursor: it belongs to another query")
    now = int(page.get("n") or time.time())
    per_pattern = _candidates(services, patterns, deadline)
    candidates, inside = _result_candidates(services, per_pattern)
    f = schema.files
    env = env_factory(now)
    where = [env.sha256_in(candidates)]
    if others:
        where.append(compiler.compile_query(And(tuple(others)) if len(others) > 1 else others[0], env))
    if cursor:
        where.append(f.c.sha256 > page["s"])
    from kinfile.search import _execute

    rows = _execute(services, sa.select(f.c.sha256).where(*where).order_by(f.c.sha256), deadline)
    ordered = [r[0] for r in rows]
    verifier = _Verifier(services, deadline)
    hits: list[tuple[str, dict[str, Any]]] = []
    last: str | None = None
    for sha256 in ordered:
        if len(hits) >= limit or (hits and deadline.remaining() <= 0):
            break
        if deadline.remaining() <= 0:
            raise DeadlineExceededError("the content search took longer than its deadline")
        context = _verify(services, verifier, sha256, patterns, per_pattern, inside)
        last = sha256
        if context is not None:
            hits.append((sha256, context))
    more = last is not None and last != (ordered[-1] if ordered else None)
    next_cursor = services.encode_cursor({"q": qhash, "s": last, "n": now}) if more else None
    meta = {"candidates": len(ordered), "bytes_verified": verifier.bytes_read}
    return hits, next_cursor, meta


def _verify(
    services: Services,
    verifier: _Verifier,
    sha256: str,
    patterns: list[ContentPattern],
    per_pattern: dict[int, dict[str, set[int] | None]],
    inside: dict[str, set[str]],
) -> dict[str, Any] | None:
    """Context attributes when every pattern matches the file or a sub-file of it; else None."""
    first: Match | None = None
    in_subfile = False
    for i, pattern in enumerate(patterns):
        chunks: dict[str, set[int] | None]
        if pattern.selective:
            chunks = {d: per_pattern[i][d] for d in inside.get(sha256, ()) if d in per_pattern[i]}
        else:  # not in the index plan: the file and everything inside it, whole
            below = content_queue.descendants(services.store, sha256, services.settings.max_child_depth)
            chunks = dict.fromkeys({sha256} | below)
        docs = set(chunks)
        order = sorted(docs, key=lambda d: (d != sha256, d))
        match = next((m for d in order if (m := verifier.find(d, i, pattern, chunks[d])) is not None), None)
        if match is None:
            return None
        if first is None:
            first = match
        in_subfile = in_subfile or match.doc != sha256
    assert first is not None
    token = services.encode_cursor({"sn": first.doc, "o": first.start, "e": first.end})
    return {"confidence": 1.0, "match_in_subfile": in_subfile, "snippet": token}


def snippet(services: Services, token: str) -> list[str]:
    """The hexdump chunks of a snippet id; ``BadRequestError("Invalid token")`` otherwise."""
    try:
        payload = services.decode_cursor(token)
        doc, start, end = str(payload["sn"]), int(payload["o"]), int(payload["e"])
    except (InvalidArgumentError, KeyError, TypeError, ValueError) as exc:
        raise BadRequestError("Invalid token") from exc
    end = min(end, start + SNIPPET_MAX)  # a match over a long jump: its first bytes only
    low = max(0, start - SNIPPET_CONTEXT - 16)
    try:
        with services.blobs.open(doc) as fh:
            fh.seek(low)
            window = fh.read(end + SNIPPET_CONTEXT + 16 - low)
    except (FileNotFoundError, OSError) as exc:
        raise BadRequestError("Invalid token: the file is no longer stored") from exc
    return [hexdump_snippet(window, start, end, low, SNIPPET_CONTEXT)]


def page_of(
    services: Services,
    hits: list[tuple[str, dict[str, Any]]],
    cursor: str | None,
    meta: dict[str, Any],
    with_files: bool,
) -> SearchPage:
    from kinfile.search import Hit, SearchPage, days_back

    result = SearchPage([Hit(s, c) for s, c in hits], cursor, {"days_back": days_back(services), **meta})
    if with_files:
        result.files = services.store.get_files([s for s, _c in hits])
    return result
