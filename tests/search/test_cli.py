"""``kinfile search``, ``kinfile similar`` and ``kinfile reanalyse --query`` on real files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from kinfile.cli import main
from kinfile.services import Services
from kinfile.settings import load_settings
from tests.search import corpus


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


def test_search_similar_and_reanalyse(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = Services(load_settings({"home": str(home)}, env={}))
    stored = corpus.load(services, limit=30)
    services.close()
    pdfs = {s for s, a in stored.items() if a.get("type_tag") == "pdf"}
    assert pdfs

    code, out, _ = run(home, "search", "type:pdf", "--limit", "100")
    assert code == 0
    records = json.loads(out)
    assert {r["sha256"] for r in records} == pdfs
    assert all(r["type_tag"] == "pdf" for r in records)

    code, out, _ = run(home, "search", "size:1+", "--order", "size+", "--format", "csv", "--limit", "2")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 and int(rows[0]["size"]) <= int(rows[1]["size"])

    code, out, _ = run(home, "search", "type:pdf", "--format", "table")
    assert out.splitlines()[0].split()[:3] == ["sha256", "type_tag", "size"]

    code, _out, err = run(home, "search", "type:pdf colour:red")
    assert code == 2 and "InvalidArgumentError" in err and "unknown modifier 'colour'" in err

    sha256 = next(s for s, a in sorted(stored.items()) if a.get("ssdeep"))
    code, out, _ = run(home, "similar", sha256, "--format", "json")
    assert code == 0
    for record in json.loads(out):
        assert record["sha256"] != sha256
        assert 0 <= record["context_attributes"]["similarity_score"] <= 1

    code, out, _ = run(home, "reanalyse", "--query", "type:pdf")
    assert code == 0, out
    assert f"reanalysed {len(pdfs)} file(s), 0 failed" in out
