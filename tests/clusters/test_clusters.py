"""Daily clusters on a constructed day of real files, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from kinfile import clusters
from kinfile.errors import InvalidArgumentError
from kinfile.models import FileRecord, IngestItem
from kinfile.storage import clusters as cluster_sql
from kinfile.storage.store import Store
from tests.clusters.day import DAY, LATE_ARRIVAL, NEXT_DAY, analysed, build_day, epoch, store_file


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    s.migrate()
    build_day(s)
    return s


def vhash_of(name: str) -> str:
    return str(analysed(name).record.attributes["vhash"])


def test_counts_sizes_labels_and_order(store: Store) -> None:
    day = clusters.day_clusters(store, DAY)
    assert (day.num_candidates, day.num_clusters, day.size_top200) == (13, 7, 13)
    rows = [(c.size, c.avg_positives, c.label) for c in day.clusters]
    stubs = sorted([vhash_of("arp_wine8.0-amd64.exe_"), vhash_of("cacls_wine8.0-amd64.exe_")])
    assert rows[:4] == [
        (3, 20, "emotet [0000]"),
        (3, 5, "emotet [0001]"),
        (2, 4, "trojan [0000]"),
        (2, 0, "doc [0000]"),
    ]
    assert sorted(rows[4:]) == [(1, 0, "peexe [0000]"), (1, 0, "peexe [0001]"), (1, 0, "rtf [0000]")]
    by_label = {c.label: c for c in day.clusters}
    assert by_label["emotet [0000]"].vhash == vhash_of("setx_wine8.0-amd64.exe_")
    assert by_label["emotet [0001]"].vhash == vhash_of("msimsg_wine8.0-i386.dll_")
    assert by_label["trojan [0000]"].vhash == vhash_of("setx_upx-lzma.exe_")
    assert [by_label["peexe [0000]"].vhash, by_label["peexe [0001]"].vhash] == stubs
    assert by_label["doc [0000]"].cluster_id(DAY) == f"vhash {vhash_of('incident-report_v1_v1.doc_')} {DAY}"


def test_other_days_and_windows(store: Store) -> None:
    nxt = clusters.day_clusters(store, NEXT_DAY)
    assert (nxt.num_candidates, nxt.num_clusters, nxt.size_top200) == (1, 1, 1)
    assert nxt.clusters[0].label == "emotet [0000]" and nxt.clusters[0].avg_positives == 1
    both = clusters.day_clusters(store, DAY, days=2)
    assert (both.num_candidates, both.num_clusters) == (14, 8)
    empty = clusters.day_clusters(store, "2024-03-04")
    assert (empty.num_candidates, empty.num_clusters, empty.clusters) == (0, 0, [])


def test_resubmission_keeps_the_first_day(store: Store) -> None:
    store_file(store, "arp_wine8.0-amd64.exe_", epoch(NEXT_DAY))
    assert clusters.day_clusters(store, DAY).num_candidates == 13
    assert clusters.day_clusters(store, NEXT_DAY).num_candidates == 1


def test_cache_is_used_and_refreshed_when_a_file_arrives(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = clusters.day_clusters(store, DAY)
    state = cluster_sql.day_state(store, epoch(DAY, 0), epoch(NEXT_DAY, 0))
    assert state.candidates == 13
    time.sleep(1.05)  # a result computed in the second of the newest change is not trusted
    clusters.day_clusters(store, DAY)
    assert cluster_sql.read_cache(store, epoch(DAY, 0), 1, state) is not None

    def fail(*_args: object, **_kw: object) -> None:
        raise AssertionError("recomputed although the day did not change")

    with monkeypatch.context() as m:
        m.setattr(clusters, "compute", fail)
        again = clusters.day_clusters(store, DAY)
    assert again == first
    store_file(store, LATE_ARRIVAL, epoch(DAY, 23))
    fresh = clusters.day_clusters(store, DAY)
    assert (fresh.num_candidates, fresh.num_clusters) == (14, 7)
    rtf = next(c for c in fresh.clusters if c.label.startswith("rtf"))
    assert (rtf.size, rtf.label) == (2, "rtf [0000]")
    assert cluster_sql.day_state(store, epoch(DAY, 0), epoch(NEXT_DAY, 0)).candidates == 14


def test_new_verdicts_refresh_the_cache(store: Store) -> None:
    assert clusters.day_clusters(store, DAY).clusters[3].label == "doc [0000]"
    for name in ("incident-report_v1_v1.doc_", "incident-report_v2_v2.doc_"):
        record = analysed(name).record
        sload = {"popular_threat_name": [{"count": 4, "value": "sload"}]}
        record_attrs = {**record.attributes, "popular_threat_classification": sload}
        updated = FileRecord(record.sha256, record.md5, record.sha1, record.size, record_attrs)
        store.save([IngestItem(sha256=record.sha256, submission=None, record=updated, replace_report=True)])
    labels = [c.label for c in clusters.day_clusters(store, DAY).clusters]
    assert "sload [0000]" in labels and "doc [0000]" not in labels


@pytest.mark.parametrize("bad", ["2024-3-5", "2024-13-01", "yesterday", "2024-03-05T00:00:00", ""])
def test_bad_dates(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        clusters.parse_date(bad)


def test_bad_window() -> None:
    with pytest.raises(InvalidArgumentError):
        clusters.check_days(0)
    with pytest.raises(InvalidArgumentError):
        clusters.check_days(clusters.MAX_DAYS + 1)
