"""The pytest plugin from a test file outside the project (pytester runs pytest in a fresh directory)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

pytest_plugins = ["pytester"]

USER_TESTS = '''
from toolkit.conformance import Check, Connect, Echo, Expect, Send, Silence, Status, StunError, check_request


def test_my_own_check(rtc_check):
    result = rtc_check(Check("MY-01", "security", "RFC 8489 §9.1.3", "wrong password is refused",
                             (Connect(), Send(check_request(password="not-the-password-at-all")),
                              Expect((StunError(401), Silence())), Echo())))
    assert result.status is Status.PASS, result.message


def test_fixtures(reference_server, probe_peer, crafter):
    assert reference_server.whip_url.startswith("http://127.0.0.1:")
    assert probe_peer.state == "new"
    assert len(bytes(crafter.stun.ice_check("a:b", "pw"))) > 20
'''


def test_catalog_runs_as_pytest_items_with_rfc_properties(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("--rtc-reference", "--rtc-only", "STUN-01", "--rtc-only", "DEMUX-01",
                                           "--junitxml=out.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    cases = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in ET.parse(pytester.path / "out.xml").getroot().iter("testcase")}
    assert set(cases) == {"test_my_own_check", "test_fixtures", "SANITY-before", "DEMUX-01", "STUN-01", "SANITY-after"}
    assert cases["STUN-01"]["rfc"] == "RFC 8489 §6.3, §14.2, RFC 8445 §7.3"
    assert cases["STUN-01"]["profile"] == "core"
    assert cases["test_my_own_check"]["rfc"] == "RFC 8489 §9.1.3"


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
