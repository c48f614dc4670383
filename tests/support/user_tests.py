"""A user's own test file for the pytest plugin, as the README shows one: a check of the user's
written with the public API, and the plugin's fixtures. The plugin tests run it in-tree (pytester)
and in a project outside the checkout against the installed wheel."""

USER_TESTS = '''
from toolkit.conformance import Check, Connect, Echo, Expect, Send, Silence, Status, StunError, check_request


def test_wrong_password_is_refused(rtc_check):
    result = rtc_check(Check("MY-01", "security", "RFC 8489 §9.1.3", "wrong password is refused",
                             (Connect(), Send(check_request(password="not-the-password-at-all")),
                              Expect((StunError(401), Silence())), Echo())))
    assert result.status is Status.PASS, result.message


def test_fixtures(rtc_target, reference_server, probe_peer, crafter):
    assert reference_server.whip_url.startswith("http://127.0.0.1:")
    assert probe_peer.state == "new"
    assert len(bytes(crafter.stun.ice_check("a:b", "pw"))) > 20
'''
USER_TEST_NAMES = {"test_wrong_password_is_refused", "test_fixtures"}
"""The tests in USER_TESTS, as the plugin reports them."""
