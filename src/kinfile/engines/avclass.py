"""``popular_threat_classification`` from engine results, with AVClass (avclass-malicialab).

AVClass turns the labels of all engines into ranked tags with the number of engines behind
each (only tags seen by at least two engines). VirusTotal's shape is then:

* ``popular_threat_name``: the ``FAM`` and ``UNK`` tags ``[{count, value}]`` (AVClass's family is
  the first one);
* ``popular_threat_category``: the ``CLASS`` tags (``trojan``, ``ransomware``, ``downloader``...);
* ``suggested_threat_label``: ``<top category>.<name1>/<name2>`` (either part may be missing).

Labels are taken as the ``avclass`` command takes them from a VT v3 report: every result with a
non-null ``result``, reduced to printable characters. The shipped tagging, expansion and
taxonomy files are used. Tokenising a label is memoised (labels repeat a lot across samples);
the per-sample step (dropping tokens that are prefixes of the sample's hashes) is not, so the
output equals the ``avclass -t`` command's (tests compare them on 500 real reports).
"""

from __future__ import annotations

import re
import string
import threading
from typing import Any

PRINTABLE = frozenset(string.printable)
MAX_NAMES = 2
MAX_CACHED_LABELS = 200_000
_LOCK = threading.Lock()
_SAMPLE_LOCK = threading.Lock()
_LABELER: Any = None
_SPLIT = re.compile("[^0-9a-zA-Z]")
_TRAILING_DIGITS = re.compile(r"\d*$")
HEX = frozenset("0123456789abcdef")


def _make_labeler() -> Any:
    from avclass.common import AvLabels

    class FastAvLabels(AvLabels):  # type: ignore[misc]
        """``get_label_tags`` with memoised tokenising and tagging (same output)."""

        def __init__(self) -> None:
            super().__init__()
            self._tokens: dict[str, tuple[str, ...]] = {}
            self._token_tags: dict[str, tuple[str, ...]] = {}
            self._expanded: dict[frozenset[str], set[str]] = {}
            self._prefixes: set[str] = set()
            self._labels: dict[tuple[str, str, bool], tuple[str, tuple[str, ...], tuple[str, ...]]] = {}

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
                found = self._tokens[label] = tuple(out)
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
                found = self._token_tags[token] = tuple(tags)
            return found

        def get_sample_tags(self, sample_info: Any, expand: bool = True) -> dict[str, list[str]]:
            """AVClass's ``get_sample_tags`` with a cache per (engine, label).

            A label's tags depend on the sample only through tokens that are prefixes of its
            hashes; the cached tags are used unless one of the label's tag-bearing tokens is such
            a prefix, in which case the label is processed exactly as AVClass does.
            """
            hashes = [sample_info.md5, sample_info.sha1, sample_info.sha256]
            self._prefixes = set()  # the hash prefixes, made when a label needs them
            hex_hashes = all(HEX.issuperset(h) for h in hashes)
            duplicates: set[str] = set()
            av_dict: dict[str, list[str]] = {}
            for av_name, label in sample_info.labels:
                if not label or (self.avs and av_name not in self.avs):
                    continue
                if label.endswith(" (B)"):
                    label = label[:-4]
                if label.startswith("Malware."):
                    label = label[8:]
                if label in duplicates:
                    continue
                duplicates.add(label)
                key = (av_name, label, expand)
                entry = self._labels.get(key)
                if entry is None:
                    stripped = self._remove_suffixes(av_name, label)
                    tokens = self._label_tokens(stripped)
                    tags: set[str] = set()
                    for token in tokens:
                        tags.update(self._tags_of_token(token))
                    # tag-bearing tokens that could be hash prefixes (lower-case hex; "" has no tags)
                    tagged = tuple(t for t in tokens if self._tags_of_token(t) and HEX.issuperset(t))
                    if len(self._labels) >= MAX_CACHED_LABELS:
                        self._labels.clear()
                    entry = self._labels[key] = (
                        stripped,
                        tagged,
                        tuple(self._expand(tags) if expand else tags),
                    )
                stripped, tagged, expanded = entry
                if (
                    not hex_hashes
                    and any(self._tags_of_token(t) for t in self._label_tokens(stripped))
                    or any(h.startswith(t) for t in tagged for h in hashes)
                ):
                    exact = self.get_label_tags(stripped, hashes)
                    expanded = tuple(self._expand(exact) if expand else exact)
                for tag in expanded:
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
                found = self._expanded[key] = super()._expand(tag_set)
            return set(found)

    return FastAvLabels()


def labeler() -> Any:
    """The process-wide AVClass labeler (taxonomy loaded once)."""
    global _LABELER
    with _LOCK:
        if _LABELER is None:
            _LABELER = _make_labeler()
        return _LABELER


_CLEAN: dict[str, str] = {}  # label -> label as AVClass reads it (labels repeat across samples)


def labels_of(results: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    for engine, res in results.items():
        label = res.get("result") if isinstance(res, dict) else None
        if isinstance(label, str):
            clean = _CLEAN.get(label)
            if clean is None:
                clean = label
                if not (label.isascii() and label.isprintable()):
                    clean = "".join(c for c in label if c in PRINTABLE)
                if len(_CLEAN) >= MAX_CACHED_LABELS:
                    _CLEAN.clear()
                clean = _CLEAN[label] = clean.strip()
            out.append((engine, clean))
    return out


def ranked_tags(md5: str, sha1: str, sha256: str, labels: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """AVClass's ranked ``(tag, engine count)`` list, as ``avclass -t`` prints it."""
    from avclass.common import SampleInfo

    avl = labeler()
    info = SampleInfo(md5, sha1, sha256, labels, [])
    with _SAMPLE_LOCK:  # the labeler keeps per-sample state (hash prefixes) and caches
        return list(avl.rank_tags(avl.get_sample_tags(info)))


def classify(md5: str, sha1: str, sha256: str, results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """VirusTotal's ``popular_threat_classification``, or ``None`` when AVClass finds nothing."""
    labels = labels_of(results)
    if not labels:
        return None
    avl = labeler()
    names: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []
    for tag, count in ranked_tags(md5 or "", sha1 or "", sha256 or "", labels):
        kind = avl.taxonomy.get_category(tag)
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
