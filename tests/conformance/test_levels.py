"""Requirement levels: a failed conversation FAILs only when its level gates the run; every
report shows the level and the cited requirement; the catalog cites one for every check."""
from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET

import pytest

from tests.support.fake_target import FakeTarget
from toolkit.commands.check import strictness
from toolkit.conformance.model import Check, CheckFailed, Level, Requirement, Settings, Status
from toolkit.conformance.runner import RunResult, run_check
from toolkit.conformance.steps import Do
from toolkit.reports.conformance import write_reports

MUST = Requirement(Level.MUST, "RFC 8489 §9.1.3", "the server MUST reject the request with an error response")
SHOULD = Requirement(Level.SHOULD, "RFC 5764 §4.1.1", "the server SHOULD return an appropriate DTLS alert")
POLICY = Requirement(Level.POLICY, "OWASP ASVS 4.0 V13.4", "answer strangers with silence",
                     prevents="session enumeration and reflection")


def broken(requirement: Requirement | None, check_id: str = "T-1") -> Check:
    def fail(conversation):
        raise CheckFailed("the target broke it")

    return Check(check_id, "security", "RFC 0000", "synthetic", (Do(fail),), timeout=5.0, requirement=requirement)


def play(check: Check, strict: Level = Level.MUST):
    return asyncio.run(run_check(FakeTarget(), check, Settings(seed=1, strict=strict)))


@pytest.mark.parametrize(("requirement", "strict", "status"), [
    (MUST, Level.MUST, Status.FAIL),
    (SHOULD, Level.MUST, Status.WARN),
    (POLICY, Level.MUST, Status.WARN),
    (SHOULD, Level.SHOULD, Status.FAIL),
    (POLICY, Level.SHOULD, Status.WARN),
    (POLICY, Level.POLICY, Status.FAIL),
    (None, Level.MUST, Status.FAIL),  # a user's own check without a requirement gates
])
def test_a_failed_conversation_fails_only_when_its_level_gates(requirement, strict, status):
    result = play(broken(requirement), strict)
    assert result.status is status
    assert result.message == "the target broke it"
    exit_code = RunResult("t", 1, "now", 0.0, [result], strict=strict).exit_code
    assert exit_code == (1 if status is Status.FAIL else 0)


def test_the_replay_of_a_strict_run_is_strict_too():
    assert "--strict policy" in play(broken(POLICY), Level.POLICY).replay
    assert "--strict" not in play(broken(POLICY)).replay


def test_a_policy_without_the_attack_it_prevents_is_refused():
    with pytest.raises(ValueError, match="prevents"):
        Requirement(Level.POLICY, "rtcgate", "be quiet")
    with pytest.raises(ValueError, match="citation"):
        Requirement(Level.MUST, " ", "text")


@pytest.mark.parametrize(("strict", "profile", "level"), [
    (None, None, Level.MUST), (None, "core,security", Level.MUST), (None, "hardened", Level.POLICY),
    ("should", None, Level.SHOULD), ("must", "hardened", Level.MUST), ("policy", None, Level.POLICY),
])
def test_strictness_comes_from_strict_or_the_hardened_profile(strict, profile, level):
    assert strictness(strict, profile) is level


def test_reports_show_the_level_and_the_cited_sentence(tmp_path):
    results = [play(broken(MUST, "T-MUST")), play(broken(SHOULD, "T-SHOULD")), play(broken(POLICY, "T-POLICY"))]
    run = RunResult("t", 1, "2026-01-01T00:00:00+00:00", 1.0, results)
    paths = write_reports(run, tmp_path)

    report = json.loads(paths["json"].read_text())
    assert report["strict"] == "MUST" and report["exit_code"] == 1
    by_id = {entry["id"]: entry for entry in report["results"]}
    assert by_id["T-SHOULD"]["status"] == "WARN" and by_id["T-SHOULD"]["level"] == "SHOULD"
    assert by_id["T-MUST"]["cite"] == "RFC 8489 §9.1.3" and "MUST reject" in by_id["T-MUST"]["requirement"]
    assert by_id["T-POLICY"]["prevents"] == "session enumeration and reflection"
    assert (tmp_path / by_id["T-POLICY"]["artifacts"]["replay"]).is_file()  # a WARN has its evidence too

    sarif = json.loads(paths["sarif"].read_text())["runs"][0]
    rules = {rule["id"]: rule for rule in sarif["tool"]["driver"]["rules"]}
    assert [rules[i]["defaultConfiguration"]["level"] for i in ("T-MUST", "T-SHOULD", "T-POLICY")] == \
        ["error", "warning", "note"]
    assert "SHOULD return an appropriate DTLS alert" in rules["T-SHOULD"]["help"]["text"]
    levels = {entry["ruleId"]: (entry["kind"], entry["level"]) for entry in sarif["results"]}
    assert levels == {"T-MUST": ("fail", "error"), "T-SHOULD": ("fail", "warning"), "T-POLICY": ("fail", "note")}

    cases = {case.get("name"): case for case in ET.parse(paths["junit"]).getroot().iter("testcase")}
    assert cases["T-MUST"].find("failure") is not None
    assert cases["T-SHOULD"].find("failure") is None and cases["T-SHOULD"].find("skipped") is None
    properties = {p.get("name"): p.get("value") for p in cases["T-SHOULD"].iter("property")}
    assert properties["verdict"] == "WARN" and properties["level"] == "SHOULD"
    assert cases["T-SHOULD"].find("system-out").text.startswith("WARN: the target broke it")

    page = paths["html"].read_text()
    assert re.search(r"<td>SHOULD</td>\s*<td><span class=\"badge WARN\">WARN</span>", page)
    assert "the server MUST reject the request with an error response" in page


# -- the catalog's own table -----------------------------------------------------------------

KEYWORDS = {Level.MUST: ("MUST", "REQUIRED", "SHALL"), Level.SHOULD: ("SHOULD", "RECOMMENDED")}


def test_every_check_cites_its_requirement_with_the_rfc_keyword_of_its_level():
    from toolkit.conformance.checks import CATALOG, SANITY

    for check in (SANITY, *CATALOG):
        requirement = check.requirement
        assert requirement is not None, check.id
        if requirement.level in KEYWORDS:
            assert re.match(r"RFC \d+ §\d", requirement.cite), f"{check.id}: {requirement.cite!r} names no RFC section"
            assert any(word in requirement.text for word in KEYWORDS[requirement.level]), (
                f"{check.id} is {requirement.level.value} but its quoted text has none of "
                f"{KEYWORDS[requirement.level]}: {requirement.text!r}")
        else:
            assert requirement.prevents, check.id


def test_the_requirement_table_names_only_checks_of_the_catalog():
    from toolkit.conformance.checks import CATALOG, SANITY
    from toolkit.conformance.requirements import REQUIREMENTS

    assert set(REQUIREMENTS) == {check.id for check in (SANITY, *CATALOG)}


def test_the_catalog_page_in_docs_is_the_one_the_checks_make():
    from pathlib import Path

    from toolkit.conformance.catalog_doc import catalog_page

    page = Path(__file__).parents[2] / "docs" / "checks.md"
    assert page.read_text(encoding="utf-8") == catalog_page(), (
        "docs/checks.md is out of date: python -m toolkit.conformance.catalog_doc --write docs/checks.md")
