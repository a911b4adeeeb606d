"""Matching one file's features against every clue rule: an inverted index in memory.

``feature text -> [rule index]`` plus each rule's feature count; a file matches a rule when
all of the rule's features are among its own. One dict lookup per file feature, so a file
with ~50 features is matched against any number of rules in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class Matcher:
    def __init__(self, rules: Iterable[tuple[str, Sequence[str]]]) -> None:
        self.ids: list[str] = []
        self.sizes: list[int] = []
        self.index: dict[str, list[int]] = {}
        for ident, features in rules:
            position = len(self.ids)
            self.ids.append(ident)
            unique = set(features)
            self.sizes.append(len(unique))
            for feature in unique:
                self.index.setdefault(feature, []).append(position)

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, features: Iterable[str]) -> list[str]:
        """Ids of the rules whose features all occur in ``features`` (rule order)."""
        hits: dict[int, int] = {}
        for feature in set(features):
            for position in self.index.get(feature, ()):
                hits[position] = hits.get(position, 0) + 1
        sizes = self.sizes
        return [self.ids[p] for p in sorted(hits) if hits[p] == sizes[p]]
