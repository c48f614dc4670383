"""The pytest plugin from a test file outside the project (pytester runs pytest in a fresh directory)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import toolkit.conformance.checks  # noqa: F401  in-process pytester runs load the catalog: numpy imports once
from tests.support.user_tests import USER_TEST_NAMES, USER_TESTS

pytest_plugins = ["pytester"]


def test_catalog_runs_as_pytest_items_with_rfc_properties(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("--rtc-reference", "--rtc-only", "STUN-01", "--rtc-only", "DEMUX-01",
                                           "--junitxml=out.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    cases = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in ET.parse(pytester.path / "out.xml").getroot().iter("testcase")}
    assert set(cases) == {*USER_TEST_NAMES, "SANITY-before", "DEMUX-01", "STUN-01", "SANITY-after"}
    assert cases["STUN-01"]["rfc"] == "RFC 8489 §6.3, §14.2, RFC 8445 §7.3"
    assert cases["STUN-01"]["profile"] == "core"
    assert cases["test_wrong_password_is_refused"]["rfc"] == "RFC 8489 §9.1.3"


def test_profile_markers_select_items(pytester):
    result = pytester.runpytest_subprocess("--rtc-signaling", "nowhere:offer", "--collect-only", "-q",
                                           "-m", "lite", "-p", "no:cacheprovider")
    lines = [line for line in result.outlines if "::rtcgate::" in line]
    assert [line.rsplit("::", 1)[1] for line in lines] == ["ICE-01", "ICE-02", "ICE-03", "ICE-04", "ICE-05"]


def test_plugin_is_inert_without_a_target(pytester):
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n\n"
                                   "def test_needs_target(rtc_target):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*no rtcgate target: pass --rtc-whip URL*"])


# -- options from the ini file, usage errors ---------------------------------------------------------


def collected(result) -> list[str]:
    return [line.rsplit("::", 1)[1] for line in result.outlines if "::rtcgate::" in line]


def test_every_option_has_an_ini_twin_and_the_command_line_wins(pytester):
    from toolkit.pytest_plugin import _options

    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nrtc_signaling = "nowhere:offer"\n'
                               'rtc_only = "STUN-01 DEMUX-01"\nrtc_strict = "should"\n')
    from_ini = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert collected(from_ini) == ["SANITY-before", "DEMUX-01", "STUN-01", "SANITY-after"]
    from_cli = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", "--rtc-only", "ICE-01")
    assert collected(from_cli) == ["SANITY-before", "ICE-01", "SANITY-after"]
    help_text = pytester.runpytest("--help").stdout.str()
    for option in _options():
        assert option.flag in help_text and f"{option.name} (" in help_text, option.name


@pytest.mark.parametrize(("where", "args", "message"), [
    ("cli", ["--rtc-profile", "NOPE"],
     "--rtc-profile: unknown profile NOPE (known: core, lite, security, voice, perf, hardened)"),
    ("ini", ['rtc_profile = "NOPE"'],
     "--rtc-profile: unknown profile NOPE (known: core, lite, security, voice, perf, hardened)"),
    ("cli", ["--rtc-profile", "lite", "--rtc-only", "STUN-01"], "no check matches --rtc-profile and --rtc-only together"),
    ("ini", ['rtc_strict = "sometimes"'], "ini option rtc_strict: 'sometimes' is not one of must, should, policy"),
    ("ini", ['rtc_consent_timeout = "-1"'], "ini option rtc_consent_timeout: -1 is not a positive number"),
    ("ini", ['rtc_header = "Authorization Bearer x"'], "ini option rtc_header: a header must be 'Name: value'"),
])
def test_bad_rtc_values_are_usage_errors_saying_what_is_valid(pytester, where, args, message):
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    if where == "ini":
        pytester.makepyprojecttoml("[tool.pytest.ini_options]\nrtc_reference = true\n" + "\n".join(args) + "\n")
        args = []
    result = pytester.runpytest("--rtc-reference", *args, "--collect-only", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "::rtcgate::" not in result.stdout.str()  # nothing collected: not even the sanity items


# -- evidence, errors, reports, replay lines ---------------------------------------------------------

CRASHING_CONFTEST = '''
import dataclasses

from toolkit.conformance import checks
from toolkit.conformance.steps import Do


def crash(conversation):
    raise ZeroDivisionError("oops")


checks.CATALOG = tuple(dataclasses.replace(c, steps=(Do(crash),)) if c.id == "STUN-05" else c for c in checks.CATALOG)
'''


def junit_cases(path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_an_exception_inside_rtcgate_is_an_error_and_reports_go_under_the_rootdir(pytester):
    import toolkit

    pytester.makeconftest(CRASHING_CONFTEST)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nrtc_reference = true\nrtc_only = "STUN-01 STUN-05"\n')
    result = pytester.runpytest_subprocess("--junitxml=out.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*STUN-05 ERROR (no verdict on the target): the check itself raised "
                                 "ZeroDivisionError: oops*"])
    case = junit_cases(pytester.path / "out.xml")["STUN-05"]
    assert case.find("failure") is None and case.find("error") is not None
    assert properties(case)["verdict"] == "ERROR"
    reports = pytester.path / "rtcgate-reports"  # the default: in the rootdir
    report = json.loads((reports / "rtcgate.json").read_text())
    assert {r["id"]: r["status"] for r in report["results"]} == {"STUN-01": "PASS", "STUN-05": "ERROR"}
    assert report["exit_code"] == 2
    assert sorted(p.name for p in reports.iterdir()) == ["rtcgate-junit.xml", "rtcgate.html", "rtcgate.json",
                                                         "rtcgate.sarif"]
    package = Path(toolkit.__file__).parent
    assert not list(package.rglob("rtcgate.json")) and not list(package.rglob("evidence"))
    result.stdout.fnmatch_lines([f"rtcgate reports: {reports / 'rtcgate.html'}*"])


@pytest.fixture
def faulty_whip_url(monkeypatch):
    """A reference server with one bug STUN-01 catches (tests/zoo), run from anywhere."""
    import os
    import sys

    from toolkit.conformance.targets import ReferenceTarget

    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    with ReferenceTarget(command=[sys.executable, "-m", "tests.zoo.serve", "success-without-fingerprint"]) as server:
        yield server.whip_url


def replay_lines(result) -> list[str]:
    return [line.split("replay: ", 1)[1] for line in result.outlines if line.startswith("replay: ")]


def accepted_by_rtcgate_check(line: str) -> list[str]:
    """Parse a printed replay line with rtcgate's own parser and selection; return the checks it selects."""
    import shlex

    from toolkit.cli import build_parser
    from toolkit.commands.check import select_checks

    words = shlex.split(line)
    assert words[:2] == ["rtcgate", "check"]
    parser = build_parser()
    args = parser.parse_args(words[1:])
    return [check.id for check in select_checks(args, parser)]


def test_a_failing_item_attaches_its_evidence_and_a_replay_line_rtcgate_takes(pytester, faulty_whip_url):
    result = pytester.runpytest_subprocess("--rtc-whip", faulty_whip_url, "--rtc-only", "STUN-01",
                                           "--rtc-report-dir", "out/evidence-here", "--junitxml=out.xml",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*STUN-01 FAILED:*", "*Captured rtcgate evidence call*"])
    report_dir = pytester.path / "out" / "evidence-here"
    found = properties(junit_cases(pytester.path / "out.xml")["STUN-01"])
    assert found["verdict"] == "FAIL"
    assert found["evidence_pcap"] == str(report_dir / "evidence" / "STUN-01" / "conversation.pcap")
    assert found["evidence_keylog"] == str(report_dir / "evidence" / "STUN-01" / "keylog.txt")
    assert Path(found["evidence_pcap"]).read_bytes()[:4] == bytes.fromhex("d4c3b2a1")
    assert Path(found["evidence_keylog"]).read_text().startswith("CLIENT_RANDOM ")
    assert found["replay"] == f"rtcgate check --whip {faulty_whip_url} --only STUN-01 --seed 0"
    assert set(replay_lines(result)) == {found["replay"]}  # in the failure and in the evidence section
    assert accepted_by_rtcgate_check(found["replay"]) == ["STUN-01"]
    sarif = json.loads((report_dir / "rtcgate.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["STUN-01"]


def test_an_unreachable_target_is_an_error_whose_replay_line_rtcgate_takes(pytester):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/whip"
    result = pytester.runpytest_subprocess("--rtc-whip", url, "--rtc-only", "STUN-01", "--junitxml=out.xml",
                                           "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(errors=1, skipped=2)
    result.stdout.fnmatch_lines(["*SANITY ERROR (no verdict on the target): the target cannot be reached: "
                                 "*signaling failed*"])
    case = junit_cases(pytester.path / "out.xml")["SANITY-before"]
    assert case.find("error") is not None and case.find("failure") is None
    (replay,) = set(replay_lines(result))
    assert replay == f"rtcgate check --whip {url} --only SANITY --seed 0"
    assert accepted_by_rtcgate_check(replay) == []  # the sanity conversation alone
    report = json.loads((pytester.path / "rtcgate-reports" / "rtcgate.json").read_text())
    assert [r["status"] for r in report["sanity"]] == ["ERROR"] and report["exit_code"] == 2
