"""The YARA engine with the 274 ReversingLabs rules on real and built files."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfile.analysis.pipeline import analyse_bytes
from kinfile.engines.base import Target
from kinfile.engines.yara import YaraEngine, cache_key, parse_rulesets
from kinfile.settings import load_settings
from kinfile.verdicts import Verdicts
from tests.conftest import FOUNDATION
from tests.engines.helpers import RL_RULES, trickbot_positive, write_rules, zipped

pytestmark = pytest.mark.skipif(not RL_RULES.is_dir(), reason="../shared/rules/reversinglabs not present")


@pytest.fixture(scope="module")
def rl_engine(tmp_path_factory: pytest.TempPathFactory) -> YaraEngine:
    return YaraEngine(parse_rulesets(str(RL_RULES)), tmp_path_factory.mktemp("yara-cache"), timeout=10)


def test_reversinglabs_rules_all_compile_and_are_cached(rl_engine: YaraEngine, tmp_path: Path) -> None:
    (ruleset,) = rl_engine.rulesets
    assert ruleset.name == "reversinglabs" and len(ruleset.files) == 274
    assert rl_engine.errors == []
    info = rl_engine.info()
    assert info.available and info.name == "YARA" and info.version.startswith("1.")
    assert len(info.update) == 8 and info.update.isdigit()
    cache = tmp_path / "cache"
    first = YaraEngine(rl_engine.rulesets, cache)
    cached = cache / f"{cache_key(rl_engine.rulesets)}.yarx"
    assert cached.is_file()
    mtime = cached.stat().st_mtime_ns
    second = YaraEngine(rl_engine.rulesets, cache)  # loads the serialised rules
    assert cached.stat().st_mtime_ns == mtime
    data = trickbot_positive()
    assert first.scan(Target(data)).results == second.scan(Target(data)).results


def test_built_positive_matches_the_trickbot_rule(rl_engine: YaraEngine) -> None:
    verdict = rl_engine.scan(Target(trickbot_positive()))
    res = verdict.results["YARA"]
    assert res["category"] == "malicious" and res["result"] == "Win32_Trojan_TrickBot"
    assert res["method"] == "blacklist" and res["engine_name"] == "YARA"
    (entry,) = verdict.attributes["crowdsourced_yara_results"]
    assert entry == {
        "rule_name": "Win32_Trojan_TrickBot",
        "ruleset_name": "reversinglabs",
        "ruleset_id": rl_engine.rulesets[0].ruleset_id,
        "author": "ReversingLabs",
        "description": "Yara rule that detects TrickBot trojan.",
        "source": "ReversingLabs",
        "match_in_subfile": False,
    }


def test_one_string_missing_is_no_match(rl_engine: YaraEngine) -> None:
    data = trickbot_positive()
    broken = data.replace(b"\x58\x8b\xc8\x75", b"\x90\x90\x90\x90")  # the decrypt snippet's start
    assert rl_engine.scan(Target(broken)).results["YARA"]["category"] == "undetected"


def test_real_clean_files_are_undetected(rl_engine: YaraEngine, foundation_files: list[Path]) -> None:
    for path in foundation_files:
        verdict = rl_engine.scan(Target(path.read_bytes()))
        assert verdict.results["YARA"]["category"] == "undetected", path.name
        assert verdict.results["YARA"]["result"] is None
        assert "crowdsourced_yara_results" not in verdict.attributes


def test_category_comes_from_rule_metadata(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path / "team",
        """
        rule info_rule { meta: category = "INFO" strings: $a = "kinfile-marker" condition: $a }
        rule plain_rule { strings: $a = "kinfile-marker" condition: $a }
        rule clean_rule : harmless { strings: $a = "kinfile-clean" condition: $a }
        rule hunt_rule { meta: verdict = "suspicious" strings: $a = "kinfile-hunt" condition: $a }
        """,
    )
    engine = YaraEngine(parse_rulesets(f"myteam={rules}"), None)
    both = engine.scan(Target(b"xx kinfile-marker yy"))
    assert both.results["YARA"]["category"] == "malicious"  # no metadata: default malicious
    assert both.results["YARA"]["result"] == "plain_rule"
    assert {e["ruleset_name"] for e in both.attributes["crowdsourced_yara_results"]} == {"myteam"}
    assert engine.scan(Target(b"kinfile-hunt")).results["YARA"]["category"] == "suspicious"
    assert engine.scan(Target(b"kinfile-clean")).results["YARA"]["category"] == "harmless"


def test_per_file_timeout(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path / "slow",
        "rule slow { condition: for all i in (0..filesize) : "
        "( for all j in (0..filesize) : ( uint8(i) != 0xAB or uint8(j) != 0xCD ) ) }",
    )
    engine = YaraEngine(parse_rulesets(str(rules)), None, timeout=1)
    verdict = engine.scan(Target(b"\0" * 200_000))
    assert verdict.results["YARA"]["category"] == "timeout"
    assert verdict.results["YARA"]["result"] is None


def test_subfile_matches_are_reported_on_the_parent(tmp_path: Path) -> None:
    settings = load_settings(
        {"home": str(tmp_path / "home"), "yara_rules": str(RL_RULES), "clamav": "off"}, env={}
    )
    archive = zipped("payload.exe", trickbot_positive())
    node = analyse_bytes(archive, "sample.zip")
    runs = Verdicts(settings).scan_tree(node)
    assert [r.sha256 for r in runs][0] == node.record.sha256 and len(runs) == 2
    parent = node.record.attributes
    assert parent["last_analysis_results"]["YARA"]["category"] == "malicious"
    assert parent["last_analysis_results"]["YARA"]["result"] == "Win32_Trojan_TrickBot"
    (entry,) = parent["crowdsourced_yara_results"]
    assert entry["rule_name"] == "Win32_Trojan_TrickBot" and entry["match_in_subfile"] is True
    child = node.children[0][1].record.attributes
    assert child["crowdsourced_yara_results"][0]["match_in_subfile"] is False
    assert child["last_analysis_stats"]["malicious"] == 1
    clean = analyse_bytes((FOUNDATION / "wmasf.dll_").read_bytes())
    Verdicts(settings).scan_tree(clean)
    assert clean.record.attributes["last_analysis_stats"]["undetected"] == 1
    assert "popular_threat_classification" not in clean.record.attributes
