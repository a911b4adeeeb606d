"""Verdicts: run the configured detection engines over analysed files and record the run.

One run scans every node of an analysed tree once (the file and its extracted sub-files),
bottom-up: a node's final result per engine is the worst of its own and its sub-files' (a ZIP
holding a detected member is detected), and YARA matches of sub-files are reported on the
parent with ``match_in_subfile: true``. Each node's report gets its ``verdict_sources.local``
part and the served verdict attributes (engines/merge.py), and the submitted file's run becomes
an analysis row (``/analyses/{id}``) with the results of the engines that ran.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from kinfile.analysis.pipeline import Analysed
from kinfile.engines.base import Engine, EngineInfo, Target, Verdict, stats_of, worst
from kinfile.engines.merge import SOURCES, compose, sources_of
from kinfile.errors import ConfigurationError
from kinfile.formats.common import Deadline
from kinfile.settings import Settings
from kinfile.storage.store import AnalysisRow

logger = logging.getLogger(__name__)

ENGINE_NAMES = ("yara", "clamav")
YARA_RESULTS = "crowdsourced_yara_results"


def parse_engines(settings: Settings) -> list[str]:
    """The engine kinds to build: ``auto`` = YARA when rules are set, ClamAV unless off."""
    words = [w.strip().lower() for w in settings.engines.split(",") if w.strip()]
    if not words or words == ["auto"]:
        chosen = ["yara"] if settings.yara_rules.strip() else []
        return chosen + ([] if settings.clamav.strip().lower() == "off" else ["clamav"])
    if words == ["none"]:
        return []
    unknown = sorted(set(words) - set(ENGINE_NAMES))
    if unknown:
        raise ConfigurationError(f"unknown engines {unknown}; valid: auto, none, {', '.join(ENGINE_NAMES)}")
    return list(dict.fromkeys(words))


def engines_from(settings: Settings) -> list[Engine]:
    engines: list[Engine] = []
    for kind in parse_engines(settings):
        if kind == "yara":
            from kinfile.engines.yara import YaraEngine, parse_rulesets

            if not settings.yara_rules.strip():
                raise ConfigurationError("engine yara needs the yara_rules setting (rule directories)")
            try:
                rulesets = parse_rulesets(settings.yara_rules)
            except FileNotFoundError as exc:
                raise ConfigurationError(str(exc)) from exc
            engines.append(YaraEngine(rulesets, settings.home / "yara-cache", settings.yara_timeout))
        elif kind == "clamav":
            from kinfile.engines.clamav import ClamAVEngine

            engines.append(ClamAVEngine(settings.clamav, settings.clamav_timeout))
    return engines


def combine(own: Verdict, children: list[Verdict]) -> Verdict:
    """A node's verdict from its own scan and its sub-files' final verdicts."""
    results = dict(own.results)
    yara = [dict(e) for e in own.attributes.get(YARA_RESULTS, [])]
    seen = {(e.get("ruleset_id"), e.get("rule_name")) for e in yara}
    for child in children:
        for engine, res in child.results.items():
            mine = results.get(engine)
            picked = worst(mine, res)
            if picked is not mine:
                results[engine] = dict(picked)  # type: ignore[arg-type]
        for entry in child.attributes.get(YARA_RESULTS, []):
            key = (entry.get("ruleset_id"), entry.get("rule_name"))
            if key not in seen:
                seen.add(key)
                yara.append({**entry, "match_in_subfile": True})
    return Verdict(results=results, attributes={YARA_RESULTS: yara} if yara else {})


@dataclass
class Run:
    """The verdict of one node, ready to be written."""

    sha256: str
    verdict: Verdict
    date: int

    def analysis(self) -> AnalysisRow:
        results = self.verdict.results
        return AnalysisRow(self.sha256, self.date, "completed", stats_of(results), results)


def apply_local(attrs: dict[str, Any], verdict: Verdict, date: int) -> dict[str, Any]:
    """Record a local run in a report and recompute its served verdict attributes."""
    sources = sources_of(attrs)
    local: dict[str, Any] = {"results": verdict.results, "date": date}
    if verdict.attributes.get(YARA_RESULTS):
        local[YARA_RESULTS] = verdict.attributes[YARA_RESULTS]
    sources["local"] = local
    attrs[SOURCES] = sources
    for key in (
        "last_analysis_results",
        "last_analysis_stats",
        "popular_threat_classification",
        YARA_RESULTS,
    ):
        attrs.pop(key, None)
    return compose(attrs)


class Verdicts:
    """The configured engines (built on first use: compiling rules takes a moment)."""

    def __init__(self, settings: Settings, engines: list[Engine] | None = None) -> None:
        self.settings = settings
        self._engines = engines
        self._lock = threading.Lock()

    @property
    def engines(self) -> list[Engine]:
        with self._lock:
            if self._engines is None:
                self._engines = engines_from(self.settings)
            return self._engines

    def infos(self) -> list[EngineInfo]:
        return [engine.info() for engine in self.engines]

    def active(self) -> list[Engine]:
        return [engine for engine in self.engines if engine.info().available]

    def scan_target(self, target: Target, engines: list[Engine] | None = None) -> Verdict:
        """Own verdict of one target: every available engine, results merged."""
        out = Verdict()
        for engine in self.active() if engines is None else engines:
            try:
                got = engine.scan(target)
            except Exception:  # an engine bug must not lose the file
                logger.exception("engine %s failed on %s", engine.name, target.sha256)
                continue
            out.results.update(got.results)
            out.attributes.update(got.attributes)
        return out

    def scan_tree(self, node: Analysed, date: int | None = None) -> list[Run]:
        """Scan an analysed tree; set every node's verdict attributes; runs root first."""
        engines = self.active()
        when = int(date if date is not None else time.time())
        runs: list[Run] = []
        if not engines:
            return runs
        # one time budget for the submission's sub-files (the submitted file is always scanned;
        # each scan is bounded by its engine's own timeout)
        self._scan_node(node, engines, when, runs, Deadline(self.settings.submission_timeout))
        runs.reverse()
        return runs

    def _scan_node(
        self,
        node: Analysed,
        engines: list[Engine],
        when: int,
        runs: list[Run],
        deadline: Deadline,
        top: bool = True,
    ) -> Verdict:
        rec = node.record
        if top or deadline.remaining() > 0:
            own = self.scan_target(Target(node.data, rec.sha256), engines)
        else:
            own = Verdict()
            rec.attributes.setdefault("anomalies", []).append(
                f"not scanned: the submission's {self.settings.submission_timeout:g} s time budget ran out"
            )
        children = [self._scan_node(kid, engines, when, runs, deadline, False) for _, kid in node.children]
        final = combine(own, children)
        apply_local(rec.attributes, final, when)
        runs.append(Run(rec.sha256, final, when))
        return final
