"""Documentation stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from kinfile.errors import ALL_ERRORS
from kinfile.settings import SETTINGS, setting_origins_doc

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    assert setting_origins_doc() in text, "regenerate the table in docs/settings.md"
    for s in SETTINGS:
        assert f"`KINFILE_{s.name.upper()}`" in text


def test_every_error_code_is_documented() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    for err in ALL_ERRORS:
        assert err.__name__ in text, err.__name__


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = "pip install -e '.[test]' && python -m pytest"
    assert test_cmd in readme and test_cmd in ci
    assert "pip install . && kinfile serve" in readme
