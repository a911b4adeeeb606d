"""A labelled month of real files (tests/data) with verdicts from imported VT v3 reports.

Files are analysed and stored with a submission dated in the month (``kinfile ingest --date``
semantics: the submission date is the first submission date), then VT-style v3 reports are
imported for them (kinfile's importer): their engine results set ``positives`` and, for three
files, imported behaviour (``files_dropped``, ``mutexes_created``) adds behaviour features.

| month | band | files |
|---|---|---|
| ``MONTH`` | P20_PLUS (30) | 3 UPX PEs, 3 Wine setx builds (with imported behaviour) |
| ``MONTH`` | P1_TO_P19 (5) | 3 PDFs with JavaScript and an OpenAction |
| ``MONTH`` | P0 | 17 other PEs, documents and PDFs |
| ``HELD_OUT`` | mixed | 6 further files (precision of the mined rules on a second month) |
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from kinfile.analysis.pipeline import Analysed, Limits, analyse_bytes
from kinfile.importer import Importer
from kinfile.models import IngestItem, Submission
from kinfile.storage.store import Store

DATA = Path(__file__).resolve().parents[1] / "data"
MONTH = "2024-05"
HELD_OUT = "2024-06"
MIN_SUPPORT = 3
DROPPED = "c:\\users\\public\\blablabla.exe"
MUTEX = "Global\\kinfile-test-mutex"

# path under tests/data -> positives
MINING: dict[str, int] = {
    "pe/clam-upx.exe_": 30,
    "pe/mshta-upx.exe_": 30,
    "vhash/setx_upx-default.exe_": 30,
    "vhash/setx_wine8.0-amd64.exe_": 30,
    "vhash/setx_wine8.0-i386.exe_": 30,
    "vhash/setx_wine10.0-amd64.exe_": 30,
    "pdf/js_openaction_alert.pdf_": 5,
    "pdf/js_openaction_rc4_40.pdf_": 5,
    "pdf/launch_openaction_win_cmd.pdf_": 5,
    "pe/clam.exe_": 0,
    "pe/cli-32.exe_": 0,
    "pe/w32.exe_": 0,
    "pe/ClrLoader-x86.dll_": 0,
    "pe/attach_x86.dll_": 0,
    "pe/clam-nsis.exe_": 0,
    "vhash/msimsg_wine8.0-amd64.dll_": 0,
    "vhash/msimsg_wine8.0-i386.dll_": 0,
    "vhash/msimsg_wine10.0-amd64.dll_": 0,
    "vhash/arp_wine8.0-amd64.exe_": 0,
    "vhash/cacls_wine8.0-amd64.exe_": 0,
    "vhash/_win32sysloader_py305.pyd_": 0,
    "vhash/_win32sysloader_py311.pyd_": 0,
    "vhash/incident-report_v1_v1.doc_": 0,
    "vhash/incident-report_v1_v1.rtf_": 0,
    "pdf/crazyones.pdf_": 0,
    "pdf/fourpages.pdf_": 0,
}
BEHAVIOUR = (
    "vhash/setx_wine8.0-amd64.exe_",
    "vhash/setx_wine8.0-i386.exe_",
    "vhash/setx_wine10.0-amd64.exe_",
)
HELD: dict[str, int] = {
    "pe/msvcp140_codecvt_ids.dll_": 0,
    "vhash/_win32sysloader_py312.pyd_": 0,
    "vhash/incident-report_v2_v2.doc_": 0,
    "vhash/incident-report_v2_v2.rtf_": 0,
    "pdf/metadata.pdf_": 0,
    "pdf/combined_js_embed_launch_acroform_objstm.pdf_": 5,
}
LATE = "vhash/setx_upx-lzma.exe_"  # stored after mining: live matching


def epoch(month: str, day: int = 10) -> int:
    return int(datetime.strptime(f"{month}-{day:02d}", "%Y-%m-%d").replace(hour=12, tzinfo=UTC).timestamp())


@cache
def analysed(path: str) -> Analysed:
    name = Path(path).name.rstrip("_")
    return analyse_bytes((DATA / path).read_bytes(), name, Limits(max_depth=0))


def sha256_of(path: str) -> str:
    return analysed(path).record.sha256


def vt_report(sha256: str, positives: int, behaviour: bool = False) -> dict[str, Any]:
    results = {
        f"Engine{i:02d}": {
            "category": "malicious" if i < positives else "undetected",
            "engine_name": f"Engine{i:02d}",
            "result": "Trojan.Generic" if i < positives else None,
        }
        for i in range(60)
    }
    attrs: dict[str, Any] = {
        "last_analysis_results": results,
        "last_analysis_stats": {"malicious": positives, "undetected": 60 - positives},
        "last_analysis_date": epoch(MONTH, 20),
    }
    if behaviour:
        attrs["files_dropped"] = [{"path": DROPPED, "sha256": "ab" * 32}]
        attrs["mutexes_created"] = [MUTEX]
    return {"type": "file", "id": sha256, "attributes": attrs}


def store_files(
    store: Store, files: dict[str, int], month: str, behaviour: tuple[str, ...] = ()
) -> dict[str, str]:
    """Store then import verdicts for ``files``; returns ``{path: sha256}``."""
    out: dict[str, str] = {}
    for i, path in enumerate(files):
        record = copy.deepcopy(analysed(path).record)
        sub = Submission(
            date=epoch(month, 1 + i % 27), name=Path(path).name.rstrip("_"), source_key="t", interface="cli"
        )
        store.save([IngestItem(sha256=record.sha256, submission=sub, record=record)])
        out[path] = record.sha256
    lines = [json.dumps(vt_report(out[p], pos, p in behaviour)) for p, pos in files.items()]
    summary = Importer(store, "test").import_lines(lines, "test")
    assert summary.failed == 0, summary.as_dict()
    return out


def build_month(store: Store) -> dict[str, str]:
    return store_files(store, MINING, MONTH, BEHAVIOUR)
