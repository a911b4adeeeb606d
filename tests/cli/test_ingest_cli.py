"""`kinfile ingest` end to end: summary, dedup, submissions, bad input, crash safety."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinfile.cli import main
from kinfile.services import Services
from kinfile.settings import load_settings
from kinfile.storage.store import Store
from tests.conftest import CORPUS, FOUNDATION


def run(home: Path, *args: str, input: str | None = None, db: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    base = ["--home", str(home)] + (["--db", db] if db else [])
    result = runner.invoke(main, [*base, *args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    folder = tmp_path / "samples"
    (folder / "nested").mkdir(parents=True)
    for i, f in enumerate(sorted(FOUNDATION.glob("*_"))):
        dest = folder / ("nested" if i % 2 else "") / f.name.rstrip("_")
        shutil.copy(f, dest)
    return folder


def test_ingest_folder_twice_records_every_submission(tmp_path: Path, samples: Path, db_url: str) -> None:
    home = tmp_path / "home"
    code, out, _ = run(
        home, "ingest", str(samples), "-j", "2", "--source", "lab1", "--date", "2026-11-01", db=db_url
    )
    assert code == 0, out
    assert "8 files" in out and "8 new, 0 duplicate, 0 failed" in out
    code, out, _ = run(home, "ingest", str(samples / "nested"), "-j", "1", "--source", "lab2", db=db_url)
    assert code == 0 and "0 new, 4 duplicate, 0 failed" in out
    services = Services(load_settings({"home": str(home), "db": db_url}, env={}))
    pdf = (FOUNDATION / "imagemagick-lzw.pdf_").read_bytes()
    row = services.get_file(hashlib.md5(pdf).hexdigest())
    attrs = services.file_attributes(row)
    assert attrs["first_submission_date"] == 1_793_491_200  # 2026-11-01T00:00:00Z
    assert attrs["type_tag"] == "pdf"
    assert attrs["names"] == ["imagemagick-lzw.pdf"]
    nested = sorted(samples.glob("nested/*"))[0].read_bytes()
    attrs = services.file_attributes(services.get_file(hashlib.sha256(nested).hexdigest()))
    assert attrs["times_submitted"] == 2 and attrs["unique_sources"] == 2
    assert services.blobs.read(hashlib.sha256(nested).hexdigest()) == nested
    services.close()


def test_stdin_paths_and_failures(tmp_path: Path, samples: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 5000)
    missing = tmp_path / "missing.bin"
    home = tmp_path / "home"
    listed = "\n".join([str(next(samples.rglob("clam.zip"))), str(empty), str(missing), str(big)]) + "\n"
    code, out, err = run(home, "--setting", "max_upload_size=4kb", "ingest", "-", input=listed)
    assert code == 1
    assert "1 new, 0 duplicate, 3 failed" in out
    assert "empty file" in err and "too large" in err and "cannot read" in err


def test_bad_arguments_exit_non_zero(tmp_path: Path) -> None:
    code, _, err = run(tmp_path / "h", "ingest", str(FOUNDATION), "--date", "yesterday")
    assert code == 2 and "invalid date" in err
    code, _, err = run(tmp_path / "h", "--db", "mysql://x", "ingest", str(FOUNDATION))
    assert code == 78 and "unsupported database URL" in err
    code, _, err = run(tmp_path / "h", "show", "0" * 64)
    assert code == 4 and "NotFoundError" in err


def test_config_prints_effective_values(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "kinfile.toml").write_text("port = 9999\nanalysis_timeout = 3.5\n")
    code, out, _ = run(home, "--setting", "port=7000", "config", "--json")
    assert code == 0
    values = json.loads(out)
    assert values["port"] == 7000 and values["analysis_timeout"] == 3.5
    assert values["db"] == f"sqlite:///{home / 'kinfile.db'}"


def test_apikey_commands(tmp_path: Path) -> None:
    home = tmp_path / "h"
    code, out, _ = run(home, "apikey", "create", "--name", "alice")
    key = out.strip()
    assert code == 0 and len(key) == 64
    assert Store(f"sqlite:///{home / 'kinfile.db'}").api_key_name(key) == "alice"
    assert run(home, "apikey", "list")[1].startswith("alice")
    assert run(home, "apikey", "revoke", "--name", "bob")[0] == 4


def test_reanalyse_rewrites_reports(tmp_path: Path, samples: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "ingest", str(samples), "-j", "1")[0] == 0
    stored = Store(f"sqlite:///{home / 'kinfile.db'}").count_files()
    assert stored >= 8  # the 8 samples and the sub-files extracted from them
    code, out, _ = run(home, "reanalyse", "--all")
    assert code == 0 and f"reanalysed {stored} file(s), 0 failed" in out
    code, out, _ = run(home, "reanalyse")
    assert code == 0 and "reanalysed 0 file(s)" in out


@pytest.mark.skipif(not (CORPUS / "files").is_dir(), reason="shared corpus not available")
def test_kill_9_mid_ingest_leaves_a_consistent_store(tmp_path: Path) -> None:
    files = sorted((CORPUS / "files").iterdir())[:400]
    folder = tmp_path / "in"
    folder.mkdir()
    for f in files:
        os.symlink(f, folder / f.name)
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "kinfile", "--home", str(home), "ingest", str(folder), "-j", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = home / "kinfile.db"
    deadline = time.monotonic() + 60
    store = None
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if db.exists():
            store = store or Store(f"sqlite:///{db}")
            try:
                if store.count_files() > 20:
                    break
            except Exception:
                continue
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(f"sqlite:///{db}")
    partial = store.count_files()
    assert 0 < partial < 400
    # every stored file is complete: report, submission and blob
    settings = load_settings({"home": str(home)}, env={})
    services = Services(settings)
    for sha in store.iter_sha256():
        row = store.get_file(sha)
        assert row is not None and row.columns["times_submitted"] >= 1
        assert services.blobs.exists(sha)
    # running the same command again finishes the job
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert store.count_files() >= len({f.name for f in files})


def test_reindex_rebuilds_detection_words_and_have_rows(tmp_path: Path, db_url: str) -> None:
    """``kinfile reindex``: the detection index and ``have:`` rows again from the reports."""
    from kinfile.storage import avterms, schema
    from tests.engines.helpers import VT_DIR

    home = tmp_path / "home"
    lines = tmp_path / "labels.jsonl"
    lines.write_text("\n".join((VT_DIR / "av_labels_500.jsonl").read_text().splitlines()[:30]))
    assert run(home, "import-vt", str(lines), db=db_url)[0] == 0
    code, before, _err = run(home, "search", "engines:trojan have:md5", db=db_url)
    assert code == 0 and len(json.loads(before)) > 5
    store = Store(db_url)
    with store.writing() as conn:  # a lost index, as a crash of an older version could leave it
        if avterms.uses_terms(store.dialect):
            avterms.clear(conn)
        else:
            conn.execute(schema.file_av_words.delete())
        conn.execute(schema.file_have.delete())
    store.close()
    assert json.loads(run(home, "search", "engines:trojan", db=db_url)[1]) == []
    code, out, _err = run(home, "reindex", db=db_url)
    assert code == 0 and out.startswith("rebuilt detection words and have: rows in")
    assert run(home, "search", "engines:trojan have:md5", db=db_url)[1] == before


def test_import_vt_shows_its_progress_in_bytes(tmp_path: Path) -> None:
    """``import-vt --progress``: a bar per input, in bytes read of the file's size (stderr);
    ``--no-progress`` (and a non-TTY stderr by default) prints none. Stdin has no total."""
    from tqdm import tqdm

    from tests.engines.helpers import VT_DIR

    lines = tmp_path / "labels.jsonl"
    lines.write_text("\n".join((VT_DIR / "av_labels_500.jsonl").read_text().splitlines()[:40]) + "\n")
    size = lines.stat().st_size
    code, out, err = run(tmp_path / "h1", "import-vt", "--progress", str(lines))
    assert code == 0 and out.startswith("40 report(s) from 40 line(s)")
    shown = tqdm.format_sizeof(size)  # the bar's own rendering of the file's size
    assert "labels.jsonl" in err and "100%" in err and f"{shown}/{shown}" in err
    code, out, err = run(tmp_path / "h2", "import-vt", "--no-progress", str(lines))
    assert code == 0 and out.startswith("40 report(s)") and err == ""
    code, out, err = run(tmp_path / "h3", "import-vt", "--progress", "-", input=lines.read_text())
    assert code == 0 and out.startswith("40 report(s)") and "<stdin>" in err
