"""The search use-case: verdict-shaped attributes written through the store, pagination while
files arrive, cursors, deadline, row cap, rate limits and the index-field extension point."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from kinfile import search
from kinfile.errors import DeadlineExceededError, InvalidArgumentError, TooManyRequestsError
from kinfile.models import FileRecord, IngestItem, Submission
from kinfile.query import fields
from kinfile.query.ast import Term
from kinfile.services import Services
from kinfile.settings import Settings
from kinfile.similarity import QueryDeadline

BASE = 1_790_000_000


def item(seed: int, date: int, **attributes: Any) -> IngestItem:
    data = f"kinfile search test file {seed}".encode()
    sha256 = hashlib.sha256(data).hexdigest()
    attrs = {"type_tag": "peexe", "type_tags": ["executable", "peexe"], "tags": [], **attributes}
    record = FileRecord(
        sha256=sha256,
        md5=hashlib.md5(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        size=len(data) + seed,
        attributes=attrs,
    )
    sub = Submission(date=date, name=f"file{seed}.exe", source_key="k", interface="api")
    return IngestItem(sha256=sha256, submission=sub, record=record)


def results(name: str, category: str = "malicious") -> dict[str, Any]:
    return {"category": category, "engine_name": name, "result": None}


VERDICTS: list[dict[str, Any]] = [
    {
        "last_analysis_results": {
            "Microsoft": {"category": "malicious", "result": "Trojan:Win32/Zbot.A!MTB"},
            "Kaspersky": {"category": "malicious", "result": "HEUR:Trojan.Win32.Generic"},
            "ClamAV": {"category": "undetected", "result": None},
        },
        "last_analysis_stats": {"malicious": 2, "undetected": 1},
        "popular_threat_classification": {"suggested_threat_label": "trojan.zbot/generic"},
        "crowdsourced_yara_results": [{"rule_name": "Zbot_Loader", "ruleset_id": "00a1b2", "source": "x"}],
        "reputation": -12,
        "vhash": "0750566d1d1d1az5",
        "dot_net_guids": {"mvid": "C1E8F2A0-0000-4000-8000-000000000001", "typelib_id": "d00df00d"},
    },
    {
        "last_analysis_results": {
            "Microsoft": {"category": "undetected", "result": None},
            "ClamAV": {"category": "malicious", "result": "Win.Trojan.Sinowal-1"},
        },
        "last_analysis_stats": {"malicious": 1},
        "popular_threat_classification": {"suggested_threat_label": "trojan.sinowal"},
        "reputation": 3,
    },
    {"last_analysis_results": {}, "last_analysis_stats": {"malicious": 0}},
]


@pytest.fixture
def services(backend_settings: Settings) -> Iterator[Services]:
    services = Services(backend_settings)
    services.store.save([item(i, BASE + i, **attrs) for i, attrs in enumerate(VERDICTS)])
    yield services
    services.close()


def shas(services: Services, query: str) -> set[str]:
    return {h.sha256 for h in search.iter_hits(services, query)}


def sha(seed: int) -> str:
    return hashlib.sha256(f"kinfile search test file {seed}".encode()).hexdigest()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("positives:1+", {0, 1}),
        ("p:2", {0}),
        ("p:2-", {1, 2}),
        ("engines:zbot", {0}),
        ("engines:trojan", {0, 1}),
        ('engines:"trojan:win32/zbot.a!mtb"', {0}),
        ("engines:sino*", {1}),
        ("microsoft:zbot", {0}),
        ("microsoft:sinowal", set()),
        ("clamav:sinowal", {1}),
        ("kaspersky:generic", {0}),
        ("(engines:zbot OR engines:sinowal) NOT clamav:sinowal", {0}),
        ("suggested_threat_label:trojan.zbot/generic", {0}),
        ("suggested_threat_label:trojan.*", {0, 1}),
        ("crowdsourced_yara_rule:zbot_loader", {0}),
        ('crowdsourced_yara_rule:"00a1b2|zbot_loader"', {0}),
        ("reputation:0-", {0}),
        ("reputation:3", {1}),
        ("vhash:0750566d1d1d1az5", {0}),
        ("netguid:c1e8f2a0-0000-4000-8000-000000000001", {0}),
        ("have:last_analysis_results", {0, 1}),
    ],
)
def test_verdict_modifiers_read_report_attributes(services: Services, query: str, expected: set[int]) -> None:
    assert shas(services, query) == {sha(i) for i in expected}


def test_pagination_has_no_duplicates_or_gaps_while_files_arrive(services: Services) -> None:
    services.store.save([item(100 + i, BASE + 1000 + i * 7 % 13) for i in range(20)])
    before = [h.sha256 for h in search.iter_hits(services, "type:peexe", "last_submission_date-")]
    seen: list[str] = []
    cursor = None
    arrival = 200
    while True:
        page = search.search(services, "type:peexe", "last_submission_date-", 4, cursor)
        seen.extend(h.sha256 for h in page.hits)
        if not page.cursor:
            break
        # newer files (they sort first) and files with the same date as the cursor arrive
        services.store.save([item(arrival, BASE + 5000), item(arrival + 1, BASE + 1000)])
        arrival += 2
        cursor = page.cursor
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)
    assert [s for s in seen if s in set(before)] == before


def test_cursor_is_signed_and_bound_to_its_query(services: Services) -> None:
    page = search.search(services, "type:peexe", limit=1)
    assert page.cursor
    body, mac = page.cursor.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    for bad in (tampered, "garbage", page.cursor + "x"):
        with pytest.raises(InvalidArgumentError):
            search.search(services, "type:peexe", limit=1, cursor=bad)
    with pytest.raises(InvalidArgumentError):
        search.search(services, "type:pedll", limit=1, cursor=page.cursor)
    with pytest.raises(InvalidArgumentError):
        search.search(services, "type:peexe", "size+", limit=1, cursor=page.cursor)


def test_limits_and_orders_are_validated(services: Services) -> None:
    assert search.parse_limit(None) == 10
    assert search.parse_limit("1000") == 300
    for bad in ("0", "-3", "ten"):
        with pytest.raises(InvalidArgumentError):
            search.parse_limit(bad)
    with pytest.raises(InvalidArgumentError) as info:
        search.search(services, "type:peexe", order="colour-")
    assert "last_submission_date" in info.value.message
    assert search.parse_order("size") == ("size", False)
    assert search.parse_order(None) == ("last_submission_date", True)


def test_sql_deadline_becomes_deadline_exceeded(services: Services) -> None:
    slow = sa.text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000) "
        "SELECT count(*) FROM c"
    )
    with pytest.raises(DeadlineExceededError):
        search._execute(services, slow, QueryDeadline(0.3, DeadlineExceededError))
    # the connection is usable afterwards (progress handler removed, transaction closed)
    assert search.search(services, "type:peexe").hits


def test_query_deadline_and_row_cap(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    values = dict(search.DEFAULTS)
    monkeypatch.setattr(search, "setting", lambda _s, name: values[name])
    values["search_max_rows"] = 1
    tlsh = "T1A9938D12B290D076D06615344C7AC3711A7AFC3696B8D94B77C6BB3E1F703C16A2AB27"
    two = [
        item(300, BASE, tlsh=tlsh),
        item(301, BASE, tlsh=tlsh[:-2] + "28"),
    ]
    services.store.save(two)
    search.fuzzy_indexes(services).refresh(force=True)
    with pytest.raises(DeadlineExceededError):
        search.search(services, f'tlsh:"{tlsh} 100"')
    values["search_max_rows"] = 10
    values["search_timeout"] = 0.0
    with pytest.raises(DeadlineExceededError):
        search.search(services, "type:peexe")


def test_fuzzy_rate_limit_per_key(services: Services) -> None:
    state = search.state_of(services)
    state.limiter = search.RateLimiter(2)
    digest = "3:abcdefgh:abcdefgh"
    for _ in range(2):
        search.search(services, f'ssdeep:"{digest}"', owner="alice")
    with pytest.raises(TooManyRequestsError):
        search.search(services, f'ssdeep:"{digest}"', owner="alice")
    search.search(services, f'ssdeep:"{digest}"', owner="bob")  # another key has its own budget
    search.search(services, "type:peexe", owner="alice")  # metadata searches are not limited


class Dummy(fields.IndexField):
    """What a later ``content:`` / ``cluster:`` / ``similar-to:`` modifier looks like."""

    help = "test index"

    def search(self, term: Term, env: Any) -> dict[str, dict[str, Any]]:
        env.deadline.check()
        if term.value == "bulk":  # more than SMALL_IN hashes: one array / json_each parameter
            many: dict[str, dict[str, Any]] = {
                hashlib.sha256(str(i).encode()).hexdigest(): {} for i in range(search.SMALL_IN + 100)
            }
            return {**many, sha(1): {"confidence": 1.0}}
        return {sha(int(s)): {"confidence": 0.5, "match_in_subfile": False} for s in term.value.split(",")}


def test_index_field_extension_point(services: Services) -> None:
    fields.register("dummy", Dummy())
    try:
        page = search.search(services, "dummy:0,2 NOT p:2")
        assert {h.sha256: h.context for h in page.hits} == {
            sha(2): {"confidence": 0.5, "match_in_subfile": False}
        }
        assert shas(services, "dummy:0,1 OR p:0") == {sha(0), sha(1), sha(2)}
        assert [(h.sha256, h.context) for h in search.search(services, "dummy:bulk").hits] == [
            (sha(1), {"confidence": 1.0})
        ]
    finally:
        del fields.FIELDS["dummy"]
