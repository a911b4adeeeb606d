"""Settings: one table of ``Setting(name, default, help)``, resolved once into a frozen object.

Resolution order, later wins: built-in defaults, the TOML file (``--config``, ``$KINFILE_CONFIG``
or ``<home>/kinfile.toml`` when it exists), ``KINFILE_<NAME>`` environment variables, then CLI
flags. Nothing in kinfile reads configuration at import time: the CLI (the edge) calls
:func:`load_settings` and passes the result down.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kinfile.errors import ConfigurationError


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: type = str


MB = 1024 * 1024

SETTINGS: tuple[Setting, ...] = (
    Setting("home", "", "Data directory (database, blobs, secret). Default ~/.local/share/kinfile."),
    Setting("db", "", "Database URL: sqlite:///path or postgresql://user@host/db. Default: SQLite in home."),
    Setting("blobs", "", "fsspec URL of the content-addressed blob store. Default: file://<home>/blobs."),
    Setting("host", "127.0.0.1", "Address `kinfile serve` listens on."),
    Setting("port", 8080, "Port `kinfile serve` listens on.", int),
    Setting("workers", 1, "Number of API server worker processes.", int),
    Setting("public_url", "", "Absolute base URL used in links (default: taken from each request)."),
    Setting("auth", True, "Require an x-apikey header on /api/v3 (keys from `kinfile apikey create`).", bool),
    Setting("max_upload_size", 650 * MB, "Largest accepted file in bytes (uploads and ingest).", int),
    Setting("spool_threshold", 1 * MB, "Uploads larger than this are spooled to disk, not memory.", int),
    Setting("jobs", 0, "Ingest worker processes (0 = one per core).", int),
    Setting("analysis_timeout", 10.0, "Time budget in seconds for the analysis of one file.", float),
    Setting(
        "submission_timeout",
        30.0,
        "Time budget in seconds for a submitted file and all its sub-files together; sub-files "
        "left when it runs out are not analysed (an anomaly counts them).",
        float,
    ),
    Setting(
        "analysers",
        "all",
        "Format analysers to run: all, none, or a comma list (pe,pdf,ole,...).",
    ),
    Setting(
        "magika",
        "all",
        "When the Magika model runs: all files, auto (only files the structural checks cannot "
        "name: text, scripts, unknown data), or off. It costs ~4 ms of CPU per file.",
    ),
    Setting(
        "exiftool",
        "off",
        "ExifTool merge: off, auto (use it when installed; costs ~20 ms of CPU per file), or its path.",
    ),
    Setting("max_child_depth", 3, "How deep sub-files (archive members, resources...) are followed.", int),
    Setting("max_children", 1000, "Most sub-files extracted from one submitted file, all levels.", int),
    Setting("max_child_bytes", 256 * MB, "Most bytes of sub-files extracted from one submitted file.", int),
    Setting(
        "engines",
        "auto",
        "Detection engines: auto (YARA when yara_rules is set, ClamAV when reachable), none, yara,clamav.",
    ),
    Setting("yara_rules", "", "YARA rule directories, comma-separated; `name=dir` names a ruleset."),
    Setting(
        "yara_timeout", 10.0, "Time limit in seconds of one YARA scan (whole seconds, at least 1).", float
    ),
    Setting("clamav", "auto", "ClamAV: auto, off, a clamd socket path, tcp://host:port, clamscan[:dbdir]."),
    Setting("clamav_timeout", 60.0, "Time limit in seconds of one ClamAV scan.", float),
    Setting("download_url_ttl", 3600, "Seconds a signed download URL stays valid.", int),
    Setting("secret_key", "", "Key that signs cursors and download URLs (default: <home>/secret.key)."),
    Setting("log_level", "WARNING", "Python logging level."),
    Setting("search_timeout", 10.0, "Deadline in seconds of one search (SQL and index lookups).", float),
    Setting(
        "search_max_rows",
        100_000,
        "Most files an index modifier (ssdeep, tlsh, ...) may feed into one search.",
        int,
    ),
    Setting(
        "fuzzy_search_rate", 0, "Fuzzy-hash searches allowed per API key per minute (0 = unlimited).", int
    ),
    Setting(
        "similarity_refresh",
        1.0,
        "Seconds between checks of the store for files new to the fuzzy-hash indexes.",
        float,
    ),
    Setting("content_index", "", "Directory of the content (n-gram) index. Default: <home>/content."),
    Setting(
        "content_partitions",
        4,
        "Partitions of a new content index (fixed when the index is created; `kinfile index rebuild`).",
        int,
    ),
    Setting(
        "content_index_interval",
        1.0,
        "Seconds between the server's checks for files new to the content index (0 = never).",
        float,
    ),
    Setting(
        "content_max_candidates",
        100_000,
        "Most files a content: pattern's n-grams may leave to verify; more is an unselective query.",
        int,
    ),
    Setting("content_batch_bytes", 64 * MB, "Bytes indexed into one new content-index segment.", int),
    Setting("clue_min_support", 10, "Fewest files of the month a mined clue rule must match.", int),
    Setting(
        "clue_mining_day",
        1,
        "Day of the month on which the server mines the previous month's clue rules (0 = never).",
        int,
    ),
)

# The accepted range (inclusive) of each number setting; outside it is a ConfigurationError
# (before: `serve --port 99999` died in uvicorn with a traceback, a negative timeout misbehaved).
DAY = 86_400
RANGES: dict[str, tuple[float, float]] = {
    "port": (0, 65_535),
    "workers": (1, 1024),
    "max_upload_size": (1, 2**62),
    "spool_threshold": (0, 2**62),
    "jobs": (0, 1024),
    "analysis_timeout": (0.001, DAY),
    "submission_timeout": (0.001, DAY),
    "max_child_depth": (0, 100),
    "max_children": (0, 10**7),
    "max_child_bytes": (0, 2**62),
    "yara_timeout": (1, DAY),
    "clamav_timeout": (0.001, DAY),
    "download_url_ttl": (1, 3650 * DAY),
    "search_timeout": (0.001, DAY),
    "search_max_rows": (1, 10**9),
    "fuzzy_search_rate": (0, 10**9),
    "similarity_refresh": (0, DAY),
    "content_partitions": (1, 4096),
    "content_index_interval": (0, DAY),
    "content_max_candidates": (1, 10**9),
    "content_batch_bytes": (1, 2**40),
    "clue_min_support": (1, 10**9),
    "clue_mining_day": (0, 31),
}

_BY_NAME = {s.name: s for s in SETTINGS}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    home: Path
    db: str
    blobs: str
    host: str
    port: int
    workers: int
    public_url: str
    auth: bool
    max_upload_size: int
    spool_threshold: int
    jobs: int
    analysis_timeout: float
    submission_timeout: float
    analysers: str
    magika: str
    exiftool: str
    max_child_depth: int
    max_children: int
    max_child_bytes: int
    engines: str
    yara_rules: str
    yara_timeout: float
    clamav: str
    clamav_timeout: float
    download_url_ttl: int
    secret_key: str
    log_level: str
    search_timeout: float
    search_max_rows: int
    fuzzy_search_rate: int
    similarity_refresh: float
    content_index: str
    content_partitions: int
    content_index_interval: float
    content_max_candidates: int
    content_batch_bytes: int
    clue_min_support: int
    clue_mining_day: int

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["home"] = str(self.home)
        out["secret_key"] = "(set)" if self.secret_key else "(unset)"
        return out

    @property
    def effective_jobs(self) -> int:
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    try:
        if setting.kind is bool:
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise ValueError(value)
        if setting.kind is int:
            number: Any = _parse_int(value)
        elif setting.kind is float:
            number = float(value)
        else:
            return setting.kind(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigurationError(f"setting {setting.name!r} from {origin}: invalid value {value!r}") from exc
    low, high = RANGES.get(setting.name, (-math.inf, math.inf))
    if not low <= number <= high:  # also NaN
        raise ConfigurationError(
            f"setting {setting.name!r} from {origin}: {value!r} is out of range ({_num(low)} to {_num(high)})"
        )
    return number


def _num(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def _parse_int(value: Any) -> int:
    """Integers, also with a size suffix (``650MB``, ``32kb``) for byte settings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    for suffix, factor in (("gb", 1024**3), ("mb", MB), ("kb", 1024), ("b", 1)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def default_home(env: Mapping[str, str]) -> Path:
    if env.get("KINFILE_HOME"):
        return Path(env["KINFILE_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    return Path(base) / "kinfile"


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Build the frozen settings. ``overrides`` are CLI flags (``None`` values are ignored)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    origins: dict[str, str] = {s.name: "default" for s in SETTINGS}

    home_hint = (overrides or {}).get("home") or env.get("KINFILE_HOME") or ""
    home = Path(home_hint).expanduser() if home_hint else default_home(env)
    path = config_file or env.get("KINFILE_CONFIG") or (home / "kinfile.toml")
    path = Path(path)
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc
        section = data.get("kinfile", data)
        for key, value in section.items():
            if key not in _BY_NAME:
                raise ConfigurationError(f"unknown setting {key!r} in {path}; valid: {', '.join(_BY_NAME)}")
            values[key], origins[key] = value, str(path)
    elif config_file:
        raise ConfigurationError(f"config file {path} does not exist")

    for s in SETTINGS:
        env_name = f"KINFILE_{s.name.upper()}"
        if env.get(env_name) not in (None, ""):
            values[s.name], origins[s.name] = env[env_name], env_name
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _BY_NAME:
            raise ConfigurationError(f"unknown setting {key!r}; valid: {', '.join(_BY_NAME)}")
        values[key], origins[key] = value, "command line"

    resolved = {name: _coerce(_BY_NAME[name], values[name], origins[name]) for name in values}
    home = Path(resolved["home"]).expanduser() if resolved["home"] else default_home(env)
    resolved["home"] = home
    if not resolved["db"]:
        resolved["db"] = f"sqlite:///{home / 'kinfile.db'}"
    if not resolved["blobs"]:
        resolved["blobs"] = f"file://{home / 'blobs'}"
    if not resolved["content_index"]:
        resolved["content_index"] = str(home / "content")
    if resolved["magika"] not in ("all", "auto", "off"):
        raise ConfigurationError(f"setting 'magika': {resolved['magika']!r} is not one of all, auto, off")
    return Settings(**resolved)


def setting_origins_doc() -> str:
    """Markdown table of every setting (used by docs/settings.md and checked by a test)."""
    rows = ["| setting | environment | default | range | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = "" if s.default == "" else s.default
        span = f"{_num(RANGES[s.name][0])} – {_num(RANGES[s.name][1])}" if s.name in RANGES else ""
        rows.append(f"| `{s.name}` | `KINFILE_{s.name.upper()}` | `{default}` | {span} | {s.help} |")
    return "\n".join(rows)
