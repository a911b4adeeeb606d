"""The YARA engine (yara-x): rulesets from directories, compiled once and cached.

* A ruleset is a directory of ``*.yar``/``*.yara`` files (recursively); its name is the
  directory's name unless given (``name=path``). Each ruleset is one yara-x namespace.
* Compiled rules are cached under ``<cache_dir>/<key>.yarx`` where ``key`` is the sha256 of the
  yara-x version and every ruleset's name and sorted ``(relative path, sha256 of the file)``:
  any edit of a rule file, or a yara-x upgrade, compiles again. A file that does not compile is
  left out (its error is listed in :meth:`YaraEngine.info`); the other files still load.
* One ``yara_x.Scanner`` per thread (scanners are not thread-safe); an ingest worker process
  builds its engine once, so the rules are loaded once per worker.
* A rule's category comes from its metadata: ``verdict`` or ``category`` (or a tag) naming
  malicious/suspicious/harmless words (see :data:`CATEGORY_WORDS`); default ``malicious``.
  ReversingLabs' ``category = "INFO"`` (certificate block-list) is ``suspicious``.
* A scan gives one ``YARA`` result (the most severe matching rule; ``undetected`` when none,
  ``timeout`` past the per-file time limit) and the ``crowdsourced_yara_results`` entries.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfile.engines.base import SEVERITY, EngineInfo, Target, Verdict, day_of, result, today

logger = logging.getLogger(__name__)

ENGINE_NAME = "YARA"
RULE_SUFFIXES = (".yar", ".yara")
MAX_ENTRIES = 256
CATEGORY_WORDS = {
    "malicious": {"malicious", "malware", "exploit", "trojan", "ransomware", "backdoor", "virus", "worm"},
    "suspicious": {
        "suspicious",
        "info",
        "informational",
        "hunting",
        "heuristic",
        "pua",
        "grayware",
        "anomaly",
    },
    "harmless": {"harmless", "clean", "benign", "goodware", "whitelist", "allowlist", "legit"},
}


@dataclass(frozen=True)
class Ruleset:
    name: str
    root: Path
    files: tuple[Path, ...]
    digest: str  # sha256 of the name and every (relative path, content hash)

    @property
    def ruleset_id(self) -> str:
        return self.digest[:10]

    def update(self) -> str:
        """The ruleset's date: the newest rule file's modification day (UTC)."""
        newest = max((p.stat().st_mtime for p in self.files), default=0.0)
        return day_of(newest) if newest else today()


def parse_rulesets(spec: str) -> list[Ruleset]:
    """``"dir1,name=dir2"`` → rulesets (missing directories are an error the caller reports)."""
    out: list[Ruleset] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, path = item.rpartition("=")
        name = name.strip()
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"YARA rules directory {path!r} does not exist")
        files = tuple(sorted(p for p in root.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file()))
        out.append(
            Ruleset(
                name=name or root.name,
                root=root,
                files=files,
                digest=ruleset_digest(name or root.name, root, files),
            )
        )
    return out


def ruleset_digest(name: str, root: Path, files: tuple[Path, ...]) -> str:
    h = hashlib.sha256(name.encode())
    for path in files:
        h.update(str(path.relative_to(root)).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def yara_x_version() -> str:
    try:
        return importlib.metadata.version("yara-x")
    except importlib.metadata.PackageNotFoundError:
        return ""


def cache_key(rulesets: list[Ruleset]) -> str:
    h = hashlib.sha256(f"yara-x {yara_x_version()}".encode())
    for rs in rulesets:
        h.update(rs.digest.encode())
    return h.hexdigest()


def compile_rules(rulesets: list[Ruleset], cache_dir: Path | None) -> tuple[Any, list[str]]:
    """Compiled ``yara_x.Rules`` (from the cache when possible) and compile errors."""
    import yara_x

    key = cache_key(rulesets)
    cached = cache_dir / f"{key}.yarx" if cache_dir else None
    errors_file = cache_dir / f"{key}.errors" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            with open(cached, "rb") as fh:
                rules = yara_x.Rules.deserialize_from(fh)
            known = errors_file.read_text().splitlines() if errors_file and errors_file.is_file() else []
            return rules, known
        except Exception as exc:  # a damaged cache file is rebuilt
            logger.warning("ignoring unreadable YARA cache %s: %s", cached, exc)
    compiler = yara_x.Compiler()
    errors: list[str] = []
    for rs in rulesets:
        compiler.new_namespace(rs.name)
        for path in rs.files:
            try:
                compiler.add_source(path.read_text(encoding="utf-8", errors="replace"), origin=str(path))
            except Exception as exc:
                errors.append(f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    rules = compiler.build()
    if cached is not None and errors_file is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            with open(tmp, "wb") as fh:
                rules.serialize_into(fh)
            errors_file.write_text("\n".join(errors))
            tmp.replace(cached)
        except OSError as exc:
            logger.warning("cannot write YARA cache %s: %s", cached, exc)
    return rules, errors


def rule_category(metadata: dict[str, Any], tags: tuple[str, ...]) -> str:
    values = [metadata.get(k) for k in ("verdict", "category")] + list(tags)
    for value in values:
        if not isinstance(value, str):
            continue
        word = value.strip().lower()
        for category, words in CATEGORY_WORDS.items():
            if word in words:
                return category
    return "malicious"


class YaraEngine:
    """The ``YARA`` engine over one or more rulesets compiled together."""

    name = ENGINE_NAME

    def __init__(self, rulesets: list[Ruleset], cache_dir: Path | None = None, timeout: float = 10.0) -> None:
        self.rulesets = rulesets
        self.timeout = max(1, int(round(timeout)))
        self.rules, self.errors = compile_rules(rulesets, cache_dir)
        self._local = threading.local()
        self._by_namespace = {rs.name: rs for rs in rulesets}
        self._rule_cache: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._info = EngineInfo(
            name=ENGINE_NAME,
            version=yara_x_version(),
            update=max((rs.update() for rs in rulesets), default=today()),
            available=True,
            detail=f"{len(rulesets)} ruleset(s): {', '.join(rs.name for rs in rulesets)}"
            + (f"; {len(self.errors)} file(s) failed to compile" if self.errors else ""),
        )

    def info(self) -> EngineInfo:
        return self._info

    def scanner(self) -> Any:
        scanner = getattr(self._local, "scanner", None)
        if scanner is None:
            import yara_x

            scanner = yara_x.Scanner(self.rules)
            scanner.set_timeout(self.timeout)
            self._local.scanner = scanner
        return scanner

    def _describe(self, rule: Any) -> tuple[str, dict[str, Any]]:
        """Category and ``crowdsourced_yara_results`` entry of a rule (cached: metadata is static)."""
        key = (rule.namespace, rule.identifier)
        found = self._rule_cache.get(key)
        if found is None:
            meta = dict(rule.metadata)
            rs = self._by_namespace.get(rule.namespace)
            entry = {
                "rule_name": rule.identifier,
                "ruleset_name": rule.namespace,
                "ruleset_id": rs.ruleset_id if rs else "",
                "author": str(meta.get("author", "")),
                "description": str(meta.get("description", "")),
                "source": str(meta.get("source") or meta.get("reference") or rule.namespace),
                "match_in_subfile": False,
            }
            found = (rule_category(meta, tuple(rule.tags)), entry)
            self._rule_cache[key] = found
        return found

    def scan(self, target: Target) -> Verdict:
        import yara_x

        try:
            matches = self.scanner().scan(target.data).matching_rules
        except yara_x.TimeoutError:
            return Verdict(results={ENGINE_NAME: result(self._info, "timeout")})
        except Exception as exc:  # a scan error is a failure result, never an exception
            logger.warning("YARA scan of %s failed: %s", target.sha256 or "data", exc)
            return Verdict(results={ENGINE_NAME: result(self._info, "failure")})
        if not matches:
            return Verdict(results={ENGINE_NAME: result(self._info, "undetected")})
        best: tuple[int, str, str] | None = None
        entries = []
        for rule in matches:
            category, entry = self._describe(rule)
            entries.append(dict(entry))
            rank = SEVERITY.get(category, 0)
            if best is None or rank > best[0]:
                best = (rank, category, rule.identifier)
        assert best is not None
        return Verdict(
            results={ENGINE_NAME: result(self._info, best[1], best[2])},
            attributes={"crowdsourced_yara_results": entries[:MAX_ENTRIES]},
        )
