"""Value syntax: bounds (+ inclusive, - exclusive), sizes, absolute and relative dates."""

from __future__ import annotations

import pytest

from kinfile.errors import InvalidArgumentError
from kinfile.query.ast import Term
from kinfile.query.values import Bound, parse_date, parse_int, parse_size

NOW = 1_800_000_000


def t(modifier: str, value: str) -> Term:
    return Term(modifier, value, False, (0, len(modifier) + 1 + len(value)), (len(modifier) + 1, 0))


def test_integer_bounds() -> None:
    assert parse_int(t("p", "5")) == Bound(5, 6)
    assert parse_int(t("p", "5+")) == Bound(5, None)  # >= 5
    assert parse_int(t("p", "11-")) == Bound(None, 11)  # < 11 ("ten or less")


def test_sizes() -> None:
    assert parse_size(t("size", "120")) == Bound(120, 121)
    assert parse_size(t("size", "120KB+")) == Bound(120 * 1024, None)
    assert parse_size(t("size", "15mb-")) == Bound(None, 15 * 1024 * 1024)
    assert parse_size(t("size", "1.5kb")) == Bound(1536, 1537)


def test_dates() -> None:
    day = 1_793_491_200  # 2026-11-01T00:00:00Z
    assert parse_date(t("fs", "2026-11-01"), NOW) == Bound(day, day + 86400)
    assert parse_date(t("fs", "2026-11-01+"), NOW) == Bound(day, None)
    assert parse_date(t("fs", "2026-11-01T01:02:03-"), NOW) == Bound(None, day + 3723)
    assert parse_date(t("fs", "7d+"), NOW) == Bound(NOW - 7 * 86400, None)
    assert parse_date(t("fs", "7d-"), NOW) == Bound(None, NOW - 7 * 86400)
    assert parse_date(t("fs", "12h"), NOW) == Bound(NOW - 12 * 3600, None)


@pytest.mark.parametrize(
    ("parser", "value"),
    [(parse_int, "five"), (parse_size, "12tb"), (parse_size, "kb"), (parse_int, "5++")],
)
def test_bad_values_point_at_the_value(parser: object, value: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parser(t("p", value))  # type: ignore[operator]
    assert info.value.span == (2, 0)


def test_bad_dates() -> None:
    for value in ("2026-13-01", "2026-02-30", "2026-01-01T25:00:00", "yesterday", "2026-1-1"):
        with pytest.raises(InvalidArgumentError):
            parse_date(t("fs", value), NOW)
