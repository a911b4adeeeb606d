"""popular_threat_classification against the `avclass` command on 500 real label sets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kinfile.engines import avclass
from kinfile.importer import Importer
from kinfile.services import Services
from kinfile.settings import Settings
from tests.engines.helpers import VT_DIR

LABELS = VT_DIR / "av_labels_500.jsonl"
pytestmark = pytest.mark.skipif(not LABELS.is_file(), reason="../shared/vt not present")


def _avclass_cli(*args: str) -> dict[str, list[str]]:
    program = shutil.which("avclass") or str(Path(sys.executable).parent / "avclass")
    out = subprocess.run(
        [program, "-f", str(LABELS), *args], capture_output=True, text=True, check=True
    ).stdout
    return {line.split("\t")[0]: line.split("\t")[1:] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def oracle() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    return _avclass_cli("-t"), _avclass_cli()


def _records() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text().splitlines()]


def _expected(tag_field: str) -> tuple[list[dict], list[dict]]:
    names, categories = [], []
    for item in filter(None, tag_field.split(",")):
        path, count = item.rsplit("|", 1)
        kind, value = path.split(":", 1)[0], path.rsplit(":", 1)[1]
        entry = {"count": int(count), "value": value}
        if kind in ("FAM", "UNK"):
            names.append(entry)
        elif kind == "CLASS":
            categories.append(entry)
    return names, categories


def test_ranked_tags_equal_the_avclass_command(oracle: tuple[dict, dict]) -> None:
    tags_out, _ = oracle
    avl = avclass.labeler()
    records = _records()
    assert len(records) == 500
    for rec in records:
        ranked = avclass.ranked_tags(
            rec["md5"], rec["sha1"], rec["sha256"], [tuple(p) for p in rec["av_labels"]]
        )
        line = ",".join(f"{avl.taxonomy.get_path(t)}|{c}" for t, c in ranked)
        assert line == tags_out[rec["md5"]][1], rec["md5"]


def test_imported_classification_equals_the_avclass_command(
    settings: Settings, oracle: tuple[dict, dict]
) -> None:
    tags_out, family_out = oracle
    services = Services(settings)
    summary = Importer(services.store, "av_labels_500.jsonl").import_lines(LABELS.read_bytes().splitlines())
    assert (summary.reports, summary.created, summary.failed) == (500, 500, 0)
    labelled = 0
    for rec in _records():
        attrs = services.file_attributes(services.get_file(rec["sha256"]))
        names, categories = _expected(tags_out[rec["md5"]][1])
        family = family_out[rec["md5"]][0]
        ptc = attrs.get("popular_threat_classification")
        if not names and not categories:
            assert ptc is None
            continue
        labelled += 1
        assert ptc is not None
        assert ptc.get("popular_threat_name", []) == names
        assert ptc.get("popular_threat_category", []) == categories
        if family.startswith("SINGLETON:"):
            assert not names
        else:
            assert names[0]["value"] == family
        expected_label = ".".join(
            p
            for p in ((categories[0]["value"] if categories else ""), "/".join(n["value"] for n in names[:2]))
            if p
        )
        assert ptc["suggested_threat_label"] == expected_label
        assert attrs["last_analysis_stats"]["malicious"] == len(rec["av_labels"])
        assert attrs["downloadable"] is False
    assert labelled > 400
