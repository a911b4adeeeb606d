"""How a report's verdict attributes follow from local scans and imported reports (pure).

A report keeps the two sources apart in the internal attribute ``verdict_sources`` (never
served)::

    {"local":    {"results": {...}, "date": int, "crowdsourced_yara_results": [...]},
     "imported": {"results": {...}, "stats": {...}, "date": int, "source": str,
                  "crowdsourced_yara_results": [...], "popular_threat_classification": {...}}}

(an imported part ``{"source", "served": true}`` means "the served attributes are the imported
ones": a report-only file does not store its results twice; :func:`sources_of` expands it)
and :func:`compose` derives the served attributes from them:

* ``last_analysis_results`` = imported results overlaid with local ones (a local engine wins
  over an imported engine of the same name);
* ``last_analysis_stats`` counts the merged results; ``last_analysis_date`` is the later run;
* ``popular_threat_classification`` is AVClass over the merged results;
* ``crowdsourced_yara_results``: local matches, then imported ones of other rules.

While no local engine has run, the imported stats and classification stand as imported
(VirusTotal computed them over the same results), so an imported report round-trips exactly.

Other imported attributes (``vhash``, ``trid``...) live at their own key, with their source in the
served map ``imported`` ``{attribute: source}``; :func:`carry_over` keeps them (and the verdict
sources) when a report is replaced by a new analysis, unless kinfile now computes them itself.
"""

from __future__ import annotations

from typing import Any

from kinfile.engines import avclass
from kinfile.engines.base import stats_of

SOURCES = "verdict_sources"
IMPORTED = "imported"
VERDICT_KEYS = (
    "last_analysis_results",
    "last_analysis_stats",
    "last_analysis_date",
    "popular_threat_classification",
    "crowdsourced_yara_results",
)
NOT_CARRIED = frozenset({"last_modification_date"})  # a new analysis is a new modification


def _yara_key(entry: dict[str, Any]) -> tuple[Any, Any]:
    return entry.get("ruleset_id") or entry.get("ruleset_name"), entry.get("rule_name")


def sources_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """``verdict_sources`` of a report with a ``served`` imported part expanded."""
    sources = dict(attrs.get(SOURCES) or {})
    imported = sources.get("imported")
    if imported and imported.get("served"):
        expanded = {
            "results": attrs.get("last_analysis_results") or {},
            "stats": attrs.get("last_analysis_stats"),
            "date": attrs.get("last_analysis_date"),
            "crowdsourced_yara_results": attrs.get("crowdsourced_yara_results"),
            "popular_threat_classification": attrs.get("popular_threat_classification"),
            "source": imported.get("source"),
        }
        sources["imported"] = {k: v for k, v in expanded.items() if v not in (None, [], {})}
    return sources


def compose(attrs: dict[str, Any]) -> dict[str, Any]:
    """Set the served verdict attributes of ``attrs`` from its ``verdict_sources`` (in place)."""
    sources = sources_of(attrs)
    local = sources.get("local") or {}
    imported = sources.get("imported") or {}
    if not local and not imported:
        return attrs
    results = {**(imported.get("results") or {}), **(local.get("results") or {})}
    dates = [d for d in (local.get("date"), imported.get("date")) if isinstance(d, int)]
    values: dict[str, Any] = {"last_analysis_results": results}
    if local.get("results") or not imported.get("stats"):
        values["last_analysis_stats"] = stats_of(results)
    else:
        values["last_analysis_stats"] = dict(imported["stats"])
    values["last_analysis_date"] = max(dates) if dates else None
    classification = None
    if local.get("results") or not imported.get("popular_threat_classification"):
        classification = avclass.classify(
            attrs.get("md5", ""), attrs.get("sha1", ""), attrs.get("sha256", ""), results
        )
    values["popular_threat_classification"] = classification or imported.get("popular_threat_classification")
    yara = list(local.get("crowdsourced_yara_results") or [])
    seen = {_yara_key(e) for e in yara}
    yara += [e for e in imported.get("crowdsourced_yara_results") or [] if _yara_key(e) not in seen]
    values["crowdsourced_yara_results"] = yara
    for key, value in values.items():
        if value in (None, [], {}) and key != "last_analysis_results":
            attrs.pop(key, None)
        else:
            attrs[key] = value
    if imported and not local:
        sources["imported"] = {"source": imported.get("source"), "served": True}
    attrs[SOURCES] = sources
    return attrs


def carry_over(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` (a fresh analysis replacing ``old``) keeping imported attributes and verdict sources."""
    old_sources = sources_of(old)
    if old_sources:
        sources = sources_of(new)
        for part in ("local", "imported"):
            if part not in sources and old_sources.get(part):
                sources[part] = old_sources[part]
        new[SOURCES] = sources
    provenance = dict(new.get(IMPORTED) or {})
    for key, source in (old.get(IMPORTED) or {}).items():
        if key in NOT_CARRIED or key in VERDICT_KEYS or key not in old or key in new:
            continue  # computed (or imported again) by the new report: it wins
        new[key] = old[key]
        provenance[key] = source
    if provenance:
        new[IMPORTED] = provenance
    if new.get(SOURCES):
        compose(new)
    return new
