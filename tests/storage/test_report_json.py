"""The stored JSON text of reports (orjson, with json for what orjson refuses)."""

from __future__ import annotations

import json
from typing import Any

from kinfile.jsontext import dumps_report
from kinfile.jsontext import loads as loads_report


def test_reports_round_trip_with_sorted_keys() -> None:
    report = {"b": [1, 2.5, None, True], "a": {"z": "é\x00\n", "y": -(2**63)}, "c": 2**64 - 1}
    text = dumps_report(report)
    assert json.loads(text) == report == loads_report(text)
    assert text.index('"a"') < text.index('"b"') < text.index('"c"') and " " not in text.replace('"é', "")


def test_what_orjson_refuses_is_written_by_json() -> None:
    refused: list[dict[Any, Any]] = [{"big": 2**70}, {"surrogate": "\ud800"}, {1: "non-string key"}]
    for report in refused:
        text = dumps_report(report)
        assert json.loads(text) == json.loads(json.dumps(report)) == loads_report(text)


def test_what_only_json_wrote_is_read_back() -> None:
    """Older stores hold texts of ``json.dumps`` (NaN, integers beyond 64 bits): orjson refuses
    them, ``loads_report`` falls back to ``json``."""
    for text in ('{"n":NaN}', '{"big":1180591620717411303424}', '{"inf":-Infinity}'):
        assert repr(loads_report(text)) == repr(json.loads(text))


def test_input_lines_keep_integers_beyond_64_bits() -> None:
    """orjson reads 2**64 as a float; the import reads such a line with json, exactly."""
    from kinfile.importer import prepare_values

    line = '{"type": "file", "id": "%s", "attributes": {"size": 10, "odd": 18446744073709551616}}' % (
        "a" * 64
    )
    [(number, prepared)] = prepare_values([(1, line)], "test")
    assert number == 1 and not isinstance(prepared, str)
    assert prepared[0].new is not None
    assert loads_report(prepared[0].new.row["report"])["odd"] == 2**64
    assert loads_report(b'{"x": 18446744073709551616}') == {"x": 2**64}
