"""Exact similarity indexes over fuzzy hashes (pure: numpy, pydeep, no storage imports).

* :mod:`~kinfile.similarity.ssdeep_index` - the 7-gram index (SIMILARITY_NOTES §1.2): returns
  exactly the files whose ssdeep ``compare`` score is at or above a threshold.
* :mod:`~kinfile.similarity.tlsh_index` - TLSH header prefilter (lossless) + a vectorised numpy
  distance kernel: exactly the files within a maximum distance.
* :mod:`~kinfile.similarity.indexes` - both, kept in step with the store through a fetch
  callable (rebuilt at start, then refreshed incrementally).
"""

from __future__ import annotations

import time


class QueryDeadline:
    """A monotonic time budget; ``check`` raises the error the caller chose."""

    __slots__ = ("error", "expires")

    def __init__(self, seconds: float, error: type[Exception] = TimeoutError) -> None:
        self.expires = time.monotonic() + seconds
        self.error = error

    def check(self) -> None:
        if time.monotonic() > self.expires:
            raise self.error("query deadline exceeded")

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())
