"""``popular_threat_classification`` from engine results, with AVClass (avclass-malicialab).

AVClass turns the labels of all engines into ranked tags with the number of engines behind
each (only tags seen by at least two engines). VirusTotal's shape is then:

* ``popular_threat_name``: the ``FAM`` and ``UNK`` tags ``[{count, value}]`` (AVClass's family is
  the first one);
* ``popular_threat_category``: the ``CLASS`` tags (``trojan``, ``ransomware``, ``downloader``...);
* ``suggested_threat_label``: ``<top category>.<name1>/<name2>`` (either part may be missing).

Labels are taken as the ``avclass`` command takes them from a VT v3 report: every result with a
non-null ``result``, reduced to printable characters. The shipped tagging, expansion and
taxonomy files are used. What AVClass makes of one engine's label is memoised per (engine,
label) (labels repeat a lot across samples); the per-sample step (dropping tokens that are
prefixes of the sample's hashes) is not, so the output equals the ``avclass -t`` command's
(tests compare them on 500 real reports and with AVClass's own code on odd inputs).
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

PRINTABLE = frozenset(string.printable)
MAX_NAMES = 2
MAX_CACHED_LABELS = 200_000  # entries of each memo (a full memo is emptied)
_LOCK = threading.Lock()
_SAMPLE_LOCK = threading.Lock()
_LABELER: Any = None
_SPLIT = re.compile("[^0-9a-zA-Z]")
_TRAILING_DIGITS = re.compile(r"\d*$")
HEX_DIGITS = "0123456789abcdef"
HEX = frozenset(HEX_DIGITS)
_RANK_KEY = itemgetter(1, 0)  # AVClass's rank_tags order (reversed)

# One engine's label as AVClass processes it, up to the per-sample hash-prefix step: the label
# de-duplicated on, its tag-bearing hex tokens, whether it has tags, its (expanded) tags, the
# label after suffix removal.
Entry = tuple[str, tuple[str, ...], bool, tuple[str, ...], str]
_SKIPPED: Entry = ("", (), False, (), "")  # a result AVClass does not read (empty label)


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(memo) >= MAX_CACHED_LABELS:
        memo.clear()
    memo[key] = value
    return value


def _remember_entry(memo: dict[str, dict[Any, Entry]], label: str, engine: Any, entry: Entry) -> Entry:
    """Store an entry in a ``{label: {engine: entry}}`` memo (nested: looking a pair up then
    allocates no key tuple)."""
    engines = memo.get(label)
    if engines is None:
        engines = _remember(memo, label, {})
    engines[engine] = entry
    return entry


def _is_hex(hashes: list[str]) -> bool:
    """Whether every hash is lower-case hex (then only hex tokens can be hash prefixes)."""
    return not "".join(hashes).strip(HEX_DIGITS)


def clean_label(label: str) -> str:
    """A label as the ``avclass`` command reads it: printable characters, stripped."""
    if not (label.isascii() and label.isprintable()):
        label = "".join(c for c in label if c in PRINTABLE)
    return label.strip()


def _make_labeler() -> Any:
    from avclass.common import AvLabels

    class FastAvLabels(AvLabels):  # type: ignore[misc]
        """``get_sample_tags`` with memoised tokenising and tagging (same output)."""

        def __init__(self) -> None:
            super().__init__()
            self._tokens: dict[str, tuple[str, ...]] = {}
            self._token_tags: dict[str, tuple[str, ...]] = {}
            self._expanded: dict[frozenset[str], set[str]] = {}
            self._prefixes: set[str] = set()
            self._entries: dict[bool, dict[str, dict[Any, Entry]]] = {True: {}, False: {}}
            self._result_entries: dict[str, dict[Any, Entry]] = {}  # raw label -> engine -> entry

        def _label_tokens(self, label: str) -> tuple[str, ...]:
            found = self._tokens.get(label)
            if found is None:
                out = []
                for token in _SPLIT.split(label):
                    token = token.lower()
                    end_len = len(_TRAILING_DIGITS.findall(token)[0])
                    if end_len:
                        token = token[:-end_len]
                    out.append(token)
                found = _remember(self._tokens, label, tuple(out))
            return found

        def _tags_of_token(self, token: str) -> tuple[str, ...]:
            found = self._token_tags.get(token)
            if found is None:
                tags: list[str] = []
                if not self.taxonomy.is_generic(token):
                    dst_l = self.tagging.get_dst(token)
                    if dst_l:
                        tags = [t for t in dst_l if not self.taxonomy.is_generic(t)]
                    elif len(token) > 3:
                        tags = [token]
                found = _remember(self._token_tags, token, tuple(tags))
            return found

        def _entry(self, av_name: Any, label: str, expand: bool) -> Entry:
            """What AVClass makes of one engine's label, before the per-sample hash-prefix step."""
            dedup = label[:-4] if label.endswith(" (B)") else label
            if dedup.startswith("Malware."):
                dedup = dedup[8:]
            stripped = self._remove_suffixes(av_name, dedup)
            tokens = self._label_tokens(stripped)
            tags: set[str] = set()
            tagged: list[str] = []  # tag-bearing tokens that could be hash prefixes ("" has no tags)
            for token in tokens:
                found = self._tags_of_token(token)
                if found:
                    tags.update(found)
                    if HEX.issuperset(token):
                        tagged.append(token)
            expanded = tuple(self._expand(tags) if expand else tags)
            return dedup, tuple(tagged), bool(tags), expanded, stripped

        def _sample_tags(
            self, hashes: list[str], hex_hashes: bool, entry: Entry, expand: bool
        ) -> tuple[str, ...]:
            """A tag-bearing entry's tags for one sample: AVClass's own processing when one of
            its tokens may be a prefix of the sample's hashes."""
            _dedup, tagged, _has_tags, tags, stripped = entry
            if not hex_hashes or any(h.startswith(t) for t in tagged for h in hashes):
                exact = self.get_label_tags(stripped, hashes)
                return tuple(self._expand(exact) if expand else exact)
            return tags

        def label_tags(
            self, hashes: list[str], labels: Iterable[tuple[Any, str]], expand: bool = True
        ) -> list[tuple[Any, tuple[str, ...]]]:
            """``(engine, tags)`` for each label AVClass's ``get_sample_tags`` keeps, in order."""
            self._prefixes = set()  # the hash prefixes, made when a label needs them
            hex_hashes = _is_hex(hashes)
            entries = self._entries[expand]
            avs = self.avs
            seen: set[str] = set()
            out: list[tuple[Any, tuple[str, ...]]] = []
            for av_name, label in labels:
                if not label or (avs and av_name not in avs):
                    continue
                engines = entries.get(label)
                entry = engines.get(av_name) if engines else None
                if entry is None:
                    entry = _remember_entry(entries, label, av_name, self._entry(av_name, label, expand))
                if entry[0] in seen:
                    continue
                seen.add(entry[0])
                tags = entry[3]
                if entry[1] or (entry[2] and not hex_hashes):
                    tags = self._sample_tags(hashes, hex_hashes, entry, expand)
                out.append((av_name, tags))
            return out

        def result_tags(self, hashes: list[str], results: dict[Any, Any]) -> list[tuple[str, ...]]:
            """The expanded tags of each label of :func:`labels_of` ``(results)`` that
            ``get_sample_tags`` keeps (one pass, memoised per (engine, raw label))."""
            self._prefixes = set()
            entries = self._result_entries
            avs = self.avs
            seen: set[str] = set()
            out: list[tuple[str, ...]] = []
            hex_hashes = None  # checked once the sample has a label (as classify always did)
            for engine, res in results.items():
                if not isinstance(res, dict):
                    continue
                label = res.get("result")
                if not isinstance(label, str):
                    continue
                if hex_hashes is None:
                    hex_hashes = _is_hex(hashes)
                engines = entries.get(label)
                entry = engines.get(engine) if engines else None
                if entry is None:
                    clean = clean_label(label)
                    entry = self._entry(engine, clean, True) if clean else _SKIPPED
                    _remember_entry(entries, label, engine, entry)
                if entry is _SKIPPED or (avs and engine not in avs):
                    continue
                dedup = entry[0]
                if dedup in seen:
                    continue
                seen.add(dedup)
                if entry[1] or (entry[2] and not hex_hashes):
                    out.append(self._sample_tags(hashes, hex_hashes, entry, True))
                else:
                    out.append(entry[3])
            return out

        def get_sample_tags(self, sample_info: Any, expand: bool = True) -> dict[str, list[str]]:
            """AVClass's ``get_sample_tags`` (same output) with a cache per (engine, label)."""
            hashes = [sample_info.md5, sample_info.sha1, sample_info.sha256]
            av_dict: dict[str, list[str]] = {}
            for av_name, tags in self.label_tags(hashes, sample_info.labels, expand):
                for tag in tags:
                    av_dict.setdefault(tag, []).append(av_name)
            return av_dict

        def get_label_tags(self, label: str, hashes: list[str]) -> set[str]:
            tags: set[str] = set()
            if not label:
                return tags
            if not self._prefixes:
                self._prefixes = {h[:n] for h in hashes for n in range(1, len(h) + 1)} | {""}
            prefixes = self._prefixes
            for token in self._label_tokens(label):
                if token in prefixes:
                    continue
                tags.update(self._tags_of_token(token))
            return tags

        def _expand(self, tag_set: set[str]) -> set[str]:
            key = frozenset(tag_set)
            found = self._expanded.get(key)
            if found is None:
                found = _remember(self._expanded, key, super()._expand(tag_set))
            return set(found)

    return FastAvLabels()


def labeler() -> Any:
    """The process-wide AVClass labeler (taxonomy loaded once)."""
    global _LABELER
    with _LOCK:
        if _LABELER is None:
            _LABELER = _make_labeler()
        return _LABELER


def labels_of(results: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """``(engine, label)`` of every result with a text ``result``, as the command reads them."""
    out = []
    for engine, res in results.items():
        label = res.get("result") if isinstance(res, dict) else None
        if isinstance(label, str):
            out.append((engine, clean_label(label)))
    return out


def _ranked(tag_sets: Iterable[tuple[str, ...]]) -> list[tuple[str, int]]:
    """AVClass's ``rank_tags``: tags of more than one label, by decreasing (count, tag)."""
    counts: dict[str, int] = {}
    get = counts.get
    for tags in tag_sets:
        for tag in tags:
            counts[tag] = get(tag, 0) + 1
    return sorted([(t, c) for t, c in counts.items() if c > 1], key=_RANK_KEY, reverse=True)


def ranked_tags(md5: str, sha1: str, sha256: str, labels: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """AVClass's ranked ``(tag, engine count)`` list, as ``avclass -t`` prints it."""
    avl = labeler()
    with _SAMPLE_LOCK:  # the labeler keeps per-sample state (hash prefixes) and caches
        tag_sets = avl.label_tags([md5, sha1, sha256], labels)
    return _ranked(tags for _engine, tags in tag_sets)


_KINDS: dict[str, str] = {}  # tag -> taxonomy category


def _kind(tag: str) -> str:
    return _remember(_KINDS, tag, labeler().taxonomy.get_category(tag))  # type: ignore[no-any-return]


def classify(md5: str, sha1: str, sha256: str, results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """VirusTotal's ``popular_threat_classification``, or ``None`` when AVClass finds nothing."""
    avl = labeler()
    with _SAMPLE_LOCK:
        tag_sets = avl.result_tags([md5 or "", sha1 or "", sha256 or ""], results)
    names: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []
    for tag, count in _ranked(tag_sets):
        kind = _KINDS.get(tag) or _kind(tag)
        if kind in ("FAM", "UNK"):
            names.append({"count": count, "value": tag})
        elif kind == "CLASS":
            categories.append({"count": count, "value": tag})
    if not names and not categories:
        return None
    top_names = "/".join(n["value"] for n in names[:MAX_NAMES])
    label = ".".join(part for part in (categories[0]["value"] if categories else "", top_names) if part)
    out: dict[str, Any] = {"suggested_threat_label": label}
    if categories:
        out["popular_threat_category"] = categories
    if names:
        out["popular_threat_name"] = names
    return out
