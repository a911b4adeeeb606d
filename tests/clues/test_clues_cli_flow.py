"""The issue's flow on the command line: ``ingest --date``, ``import-vt`` verdicts, ``clues mine``,
then a report-only file imported after mining is matched at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from kinfile.clues import service
from kinfile.settings import Settings
from tests.clues.month import DATA, MONTH, sha256_of, vt_report

UPX = service.clue_id(["PE_SECTION_NAME_AT_INDEX:0:upx0"])
MALWARE = ("pe/clam-upx.exe_", "pe/mshta-upx.exe_", "vhash/setx_upx-default.exe_")
GOODWARE = ("pe/clam.exe_", "pe/cli-32.exe_", "pe/w32.exe_", "vhash/arp_wine8.0-amd64.exe_")


def test_ingest_import_mine_and_match_an_imported_file(tmp_path: Path, backend_settings: Settings) -> None:
    from kinfile.cli import main

    samples = tmp_path / "samples"
    samples.mkdir()
    for path in (*MALWARE, *GOODWARE):
        shutil.copy(DATA / path, samples / Path(path).name)
    base = ["--home", str(backend_settings.home), "--db", backend_settings.db, "--setting", "engines=none"]
    runner = CliRunner()

    def run(*args: str) -> str:
        out = runner.invoke(main, [*base, *args], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        return out.stdout

    run("ingest", str(samples), "-j", "1", "--date", f"{MONTH}-10", "--no-progress")
    verdicts = tmp_path / "verdicts.jsonl"
    lines = [vt_report(sha256_of(p), 30) for p in MALWARE] + [vt_report(sha256_of(p), 0) for p in GOODWARE]
    verdicts.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    run("import-vt", str(verdicts), "-j", "1")
    mined = json.loads(run("clues", "mine", "--month", MONTH, "--min-support", "3"))
    assert mined["files"] == 7 and mined["by_label"]["P20_PLUS"] >= 1
    assert json.loads(run("clues", "show", UPX))["meta"]["count"] == 3

    # a VT report of an unknown file, imported after mining: a report-only file matched at once
    unknown = "f" * 64
    report = vt_report(unknown, 40)
    report["attributes"]["pe_info"] = {"sections": [{"name": "UPX0", "virtual_size": 65536}]}
    later = tmp_path / "later.jsonl"
    later.write_text(json.dumps(report) + "\n")
    run("import-vt", str(later), "-j", "1")
    assert unknown in run("clues", "files", UPX).split()
    assert json.loads(run("clues", "show", UPX))["meta"]["count"] == 4
