"""Settings resolve defaults < TOML file < environment < command line, and reject bad values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kinfile.errors import ConfigurationError
from kinfile.settings import load_settings


def test_defaults_follow_the_home(tmp_path: Path) -> None:
    s = load_settings(env={"KINFILE_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.db == f"sqlite:///{tmp_path / 'kinfile.db'}"
    assert s.blobs == f"file://{tmp_path / 'blobs'}"
    assert s.max_upload_size == 650 * 1024 * 1024
    assert s.auth is True


def test_default_home_is_xdg_data(tmp_path: Path) -> None:
    assert load_settings(env={"XDG_DATA_HOME": str(tmp_path)}).home == tmp_path / "kinfile"


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    (tmp_path / "kinfile.toml").write_text("port = 1111\nworkers = 3\nauth = false\n")
    env = {"KINFILE_HOME": str(tmp_path), "KINFILE_PORT": "2222", "KINFILE_MAX_UPLOAD_SIZE": "32mb"}
    s = load_settings({"workers": 5}, env=env)
    assert (s.port, s.workers, s.auth) == (2222, 5, False)
    assert s.max_upload_size == 32 * 1024 * 1024
    s = load_settings({"port": 3333}, env=env)
    assert s.port == 3333


def test_frozen(tmp_path: Path) -> None:
    s = load_settings({"home": str(tmp_path)}, env={})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": "eighty"}, "invalid value"),
        ({"auth": "maybe"}, "invalid value"),
        ({"nonsense": 1}, "unknown setting"),
        ({"max_upload_size": "0"}, "'max_upload_size' from command line: '0' is out of range (1 to"),
        ({"port": "99999"}, "'port' from command line: '99999' is out of range (0 to 65,535)"),
        ({"analysis_timeout": "nan"}, "'analysis_timeout' from command line: 'nan' is out of range"),
        ({"analysis_timeout": "-1"}, "out of range (0.001 to 86,400)"),
        ({"workers": "0"}, "'workers' from command line: '0' is out of range (1 to 1,024)"),
    ],
)
def test_bad_values_are_configuration_errors(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_settings({"home": str(tmp_path), **overrides}, env={})


def test_bad_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(ConfigurationError, match="cannot read config file"):
        load_settings({"home": str(tmp_path)}, env={}, config_file=bad)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings({"home": str(tmp_path)}, env={}, config_file=tmp_path / "missing.toml")
    (tmp_path / "kinfile.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ConfigurationError, match="unknown setting 'colour'"):
        load_settings({"home": str(tmp_path)}, env={})
