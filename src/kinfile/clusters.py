"""Daily vhash clusters (VirusTotal's v2 ``file/clusters`` and v3 ``stats/vhash_clusters``).

The candidates of a day are the files whose ``first_submission_date`` falls on that UTC day
(or in a window of ``days`` days starting there) and that have a vhash. They are grouped by
vhash with one SQL ``GROUP BY``:

* ``num_candidates``: candidate files; ``num_clusters``: distinct vhashes (singletons count);
* ``clusters``: the 200 largest, ordered by size, then mean positives (both descending), then
  vhash; ``size_top200`` is the sum of their sizes;
* each cluster: ``id`` ``"vhash <vhash> <YYYY-MM-DD>"``, ``size``, ``avg_positives`` (mean
  ``positives`` of the members rounded half up) and ``label`` ``"<token> [NNNN]"``.

The label token is the plurality AVClass family of the members (each member's top
``popular_threat_name``), else their plurality top category, else their plurality file type
(``type_tag``); ties go to the alphabetically first. ``NNNN`` counts, from 0000, the clusters
of that result that share the token, in the cluster order above: the largest ``emotet``
cluster of the day is ``emotet [0000]``, the next ``emotet [0001]``.

Results are cached per day in ``vhash_cluster_days``; a cached day is served while its
candidate count and newest ``last_modification_date`` are unchanged (and the result was
computed after that second), so a file arriving, being reanalysed or getting new verdicts for
that day refreshes it on the next request.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kinfile import cluster_search
from kinfile.errors import InvalidArgumentError
from kinfile.storage import clusters as sql
from kinfile.storage.store import Store

logger = logging.getLogger(__name__)
cluster_search.register()  # cluster: and similar-to: in the search field table

TOP = 200
DAY = 86400
MAX_DAYS = 31
PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class Cluster:
    vhash: str
    size: int
    avg_positives: int
    label: str

    def cluster_id(self, date: str) -> str:
        return f"vhash {self.vhash} {date}"


@dataclass
class ClusterDay:
    date: str  # first day, YYYY-MM-DD
    days: int
    num_candidates: int
    num_clusters: int
    size_top200: int
    clusters: list[Cluster] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "days": self.days,
            "num_candidates": self.num_candidates,
            "num_clusters": self.num_clusters,
            "size_top200": self.size_top200,
            "clusters": [{"id": c.cluster_id(self.date), **asdict(c)} for c in self.clusters],
        }


def parse_date(text: str | None) -> datetime:
    """A strict ``YYYY-MM-DD`` (UTC midnight); ``None`` means today."""
    if text is None:
        now = datetime.now(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC)
    try:
        if len(text) != 10:
            raise ValueError(text)
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidArgumentError(f"invalid date {text!r}: expected YYYY-MM-DD") from exc


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidArgumentError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    return days


def day_clusters(store: Store, date: str | None = None, days: int = 1) -> ClusterDay:
    """The clusters of a day (or window), from the cache when it is still valid."""
    start_dt = parse_date(date)
    days = check_days(days)
    start = int(start_dt.timestamp())
    try:
        end = int((start_dt + timedelta(days=days)).timestamp())
    except OverflowError as exc:  # a window past year 9999
        raise InvalidArgumentError(f"the window of {days} day(s) from {date} ends after 9999-12-31") from exc
    label = start_dt.strftime("%Y-%m-%d")
    state = sql.day_state(store, start, end)
    cached = sql.read_cache(store, start, days, state)
    if cached is not None and cached.get("version") == PAYLOAD_VERSION:
        return _from_payload(label, days, cached)
    result = compute(store, start, end, label, days, state.candidates)
    sql.write_cache(store, start, days, state, _to_payload(result))
    return result


def compute(store: Store, start: int, end: int, date: str, days: int, candidates: int) -> ClusterDay:
    """Group the window's candidates by vhash and label the largest ``TOP`` clusters."""
    distinct, groups = sql.day_groups(store, start, end, TOP)
    votes = sql.member_votes(store, start, end, [g.vhash for g in groups])
    counters: dict[str, int] = {}
    clusters = []
    for group in groups:
        token = label_token(votes[group.vhash])
        number = counters.get(token, 0)
        counters[token] = number + 1
        clusters.append(
            Cluster(
                vhash=group.vhash,
                size=group.size,
                avg_positives=round_half_up(group.positives / group.size),
                label=f"{token} [{number:04d}]",
            )
        )
    return ClusterDay(
        date=date,
        days=days,
        num_candidates=candidates,
        num_clusters=distinct,
        size_top200=sum(c.size for c in clusters),
        clusters=clusters,
    )


def label_token(votes: sql.Votes) -> str:
    for counts in (votes.family, votes.category, votes.type_tag):
        if counts:
            return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
    return "unknown"


def round_half_up(value: float) -> int:
    return int(value + 0.5)


def _to_payload(result: ClusterDay) -> dict[str, Any]:
    return {
        "version": PAYLOAD_VERSION,
        "num_candidates": result.num_candidates,
        "num_clusters": result.num_clusters,
        "clusters": [[c.vhash, c.size, c.avg_positives, c.label] for c in result.clusters],
    }


def _from_payload(date: str, days: int, payload: dict[str, Any]) -> ClusterDay:
    clusters = [Cluster(v, int(s), int(p), str(lab)) for v, s, p, lab in payload.get("clusters", [])]
    return ClusterDay(
        date=date,
        days=days,
        num_candidates=int(payload["num_candidates"]),
        num_clusters=int(payload["num_clusters"]),
        size_top200=sum(c.size for c in clusters),
        clusters=clusters,
    )
