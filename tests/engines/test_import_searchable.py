"""Imported submission data is searchable (both backends): ``fs:``, ``ls:``, ``s:``, ``sources:``
and ``name:`` find a report-only file by VirusTotal's dates, counters and names, as the API
serves them; a file kinfile has submissions of keeps its own counters, and gains the names."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kinfile.settings import Settings
from kinfile.storage import migrations, schema
from kinfile.storage.store import Store
from tests.api.test_files_api import FOUNDATION, make_client, upload
from tests.engines.helpers import VT_DIR

V3 = json.loads((VT_DIR / "vt_v3_file_report_rtf.json").read_text())["data"]
V2 = json.loads((VT_DIR / "vt_v2_file_reports.jsonl").read_text().splitlines()[0])


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def _ids(client: TestClient, query: str) -> list[str]:
    r = client.get("/api/v3/intelligence/search", params={"query": query})
    assert r.status_code == 200, r.text
    return sorted(item["id"] for item in r.json()["data"])


def _import(client: TestClient, *values: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v3/kinfile/imports", content="\n".join(json.dumps(v) for v in values).encode())
    assert r.status_code == 200, r.text
    return r.json()["data"]["attributes"]  # type: ignore[no-any-return]


def test_imported_dates_counters_and_names_are_searchable(backend_settings: Settings) -> None:
    client, _key = make_client(backend_settings)
    assert _import(client, V3, V2)["created"] == 2
    a, rtf = V3["attributes"], V3["id"]
    fs, ls = _day(a["first_submission_date"]), _day(a["last_submission_date"])
    assert _ids(client, f"fs:{fs}") == [rtf]
    assert rtf in _ids(client, f"ls:{ls}+") and rtf not in _ids(client, f"ls:{ls}-")
    assert _ids(client, f"s:{a['times_submitted']} type:rtf") == [rtf]
    assert _ids(client, f"sources:{a['unique_sources']} type:rtf") == [rtf]
    assert _ids(client, "name:budget") == [rtf]  # a word of its VirusTotal submission name
    assert _ids(client, "name:*minister.rtf") == [rtf]
    served = client.get(f"/api/v3/files/{rtf}").json()["data"]["attributes"]
    for key in ("first_submission_date", "last_submission_date", "times_submitted", "unique_sources"):
        assert served[key] == a[key]
    assert served["names"] == a["names"] and served["meaningful_name"] == a["meaningful_name"]
    # v2: first_seen, times_submitted and submission_names
    v2 = V2["sha256"]
    assert v2 in _ids(client, "fs:2013-02-07")
    assert _ids(client, f"s:{V2['times_submitted']} sources:{V2['unique_sources']}") == [v2]
    assert _ids(client, f'name:"{V2["submission_names"][0]}"') == [v2]

    # a newer report: later last submission, one more name (names only grow)
    newer = json.loads(json.dumps(V3))
    newer["attributes"].update(
        last_submission_date=a["last_submission_date"] + 400 * 86_400,
        times_submitted=a["times_submitted"] + 5,
        names=["second name.doc"],
    )
    assert _import(client, newer)["enriched"] == 1
    later = _day(newer["attributes"]["last_submission_date"])
    assert _ids(client, f"ls:{later}") == [rtf]
    assert _ids(client, f"s:{a['times_submitted'] + 5}") == [rtf]
    assert _ids(client, "name:budget") == [rtf] and _ids(client, 'name:"second name"') == [rtf]


def test_a_submitted_file_keeps_its_counters_and_gains_names(backend_settings: Settings) -> None:
    client, _key = make_client(backend_settings)
    sample = sorted(FOUNDATION.iterdir())[0]
    data = sample.read_bytes()
    upload(client, sample.name, data)
    sha256 = hashlib.sha256(data).hexdigest()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    report = {
        "type": "file",
        "id": sha256,
        "attributes": {
            "first_submission_date": 1_400_000_000,  # 2014
            "times_submitted": 50,
            "unique_sources": 9,
            "names": ["from-virustotal.bin"],
        },
    }
    assert _import(client, report)["enriched"] == 1
    assert _ids(client, f"fs:{today}") == [sha256] and _ids(client, "fs:2014-05-13") == []
    assert _ids(client, "s:1") == [sha256] and _ids(client, "s:50") == []
    assert _ids(client, "name:from-virustotal") == [sha256]
    assert _ids(client, f'name:"{sample.name}"') == [sha256]
    served = client.get(f"/api/v3/files/{sha256}").json()["data"]["attributes"]
    assert served["times_submitted"] == 1 and "from-virustotal.bin" in served["names"]


def test_0014_backfills_stored_imports(db_url: str) -> None:
    from kinfile.importer import Importer

    store = Store(db_url)
    store.migrate()
    Importer(store, "a").import_lines([json.dumps(V3)])
    f = schema.files
    with store.engine.begin() as conn:  # as an import before 0014 left it
        conn.execute(
            update(f).values(
                times_submitted=0, unique_sources=0, first_submission_date=None, last_submission_date=None
            )
        )
        conn.execute(schema.file_names.delete())
        conn.execute(schema.file_name_trigrams.delete())
        conn.execute(
            schema.schema_migrations.delete().where(
                schema.schema_migrations.c.name == "0014_imported_submissions"
            )
        )
    assert migrations.migrate(store.engine) == ["0014_imported_submissions"]
    with store.engine.connect() as conn:
        row = conn.execute(f.select().where(f.c.sha256 == V3["id"])).one()._mapping
        names = [r[0] for r in conn.execute(select(schema.file_names.c.value))]
    a = V3["attributes"]
    assert (row["times_submitted"], row["first_submission_date"]) == (
        a["times_submitted"],
        a["first_submission_date"],
    )
    assert names == a["names"]
    store.close()
