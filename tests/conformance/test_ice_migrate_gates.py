"""ICE and MIGRATE gate fixes, both ways: a server the RFCs allow to behave so does not FAIL, the
bug still does (the zoo holds the failing side). ICE-07/ICE-11 SKIP any HTTP refusal of the
optional ICE restart (RFC 9725); ICE-06 and ICE-10 each SKIP the kind of target the other judges;
accepting authenticated SRTP from any address, or keeping the first nomination, only WARNs (POLICY)
and says which policy was not met."""

from __future__ import annotations

import asyncio
import sys

import pytest

from toolkit.conformance.checks import BY_ID, SANITY
from toolkit.conformance.checks.ice import restart_refused
from toolkit.conformance.model import Level, Settings, Status
from toolkit.conformance.runner import run_check
from toolkit.conformance.targets import ReferenceTarget
from toolkit.peer import PeerError


class RefusesRestart(ReferenceTarget):
    """The reference server behind a WHIP front that answers every restart PATCH with an HTTP error."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__()
        self.status, self.body = status, body

    async def restart(self, handle: object, sdpfrag: str, *, timeout: float) -> str | None:
        raise PeerError(f"WHIP PATCH answered {self.status}", status=self.status, body=self.body)


def play(target: ReferenceTarget, *check_ids: str, strict: Level = Level.POLICY) -> dict[str, object]:
    with target:
        return {check_id: asyncio.run(run_check(target, BY_ID[check_id], Settings(seed=1, strict=strict)))
                for check_id in check_ids}


@pytest.mark.parametrize(("status", "body"), [
    (405, ""),
    (422, "ICE restarts are not supported"),
    (501, "Not Implemented"),
    (400, "ICE restart not allowed on this session"),
    (403, "forbidden"),
])
def test_a_refused_restart_skips_with_its_status_and_reason(status, body):
    results = play(RefusesRestart(status, body), "ICE-07", "ICE-11")
    for result in results.values():
        assert result.status is Status.SKIP, result.message
        assert f"PATCH answered {status}" in result.message and body in result.message


def test_only_http_errors_are_refusals():
    assert restart_refused(PeerError("no answer within 5 s")) is None
    assert restart_refused(PeerError("redirect", status=302)) is None
    assert restart_refused(PeerError("gone", status=404, body="no such resource")) is not None


def variant(name: str, media: str = "echo") -> ReferenceTarget:
    return ReferenceTarget(command=[sys.executable, "-m", "tests.zoo.serve", name], media=media)


def test_a_target_taking_authenticated_srtp_from_any_address_only_warns():
    """Like full ICE agents: the unbound address's SRTP is decrypted and echoed to the selected pair."""
    results = play(variant("srtp-from-any-address"), "MIGRATE-02", "MIGRATE-08", strict=Level.MUST)
    assert results["MIGRATE-08"].status is Status.PASS, results["MIGRATE-08"].message
    assert results["MIGRATE-02"].status is Status.WARN
    assert "policy" in results["MIGRATE-02"].message and "decrypted into the session" in results["MIGRATE-02"].message


def test_keeping_the_first_nomination_only_warns_and_says_which_policy():
    results = play(variant("first-nomination-wins"), "ICE-05", "ICE-09", "MIGRATE-01", strict=Level.MUST)
    assert results["ICE-09"].status is Status.PASS, results["ICE-09"].message
    for check_id in ("ICE-05", "MIGRATE-01"):
        assert results[check_id].status is Status.WARN, results[check_id].message
        message = results[check_id].message
        assert "policy" in message and "RFC 8445" in message, message


def test_consent_checks_split_by_the_kind_of_target():
    """ICE-lite targets (the reference server; one that checks anyway, like Janus) SKIP ICE-10 at
    once; a full ICE agent (correct consent otherwise) PASSes ICE-10 and SKIPs ICE-06."""
    for lite_target in (ReferenceTarget(), variant("sends-own-checks")):
        lite = play(lite_target, "ICE-10")["ICE-10"]
        assert lite.status is Status.SKIP and "ICE-06" in lite.message
    full = play(variant("full-agent-answers-unknown-ufrags"), "ICE-06", "ICE-10")
    assert full["ICE-06"].status is Status.SKIP and "ICE-10" in full["ICE-06"].message
    assert full["ICE-10"].status is Status.PASS, full["ICE-10"].message


@pytest.mark.parametrize(("name", "status"), [("full-agent-answers-unknown-ufrags", Status.PASS),
                                              ("full-agent-media-refreshes-consent", Status.FAIL)])
def test_consent_of_a_checking_voice_target_is_judged_by_its_own_media(name, status):
    """A target that does not echo (the voice loop): ICE-10 watches for SRTP/SRTCP of its own after
    consent expired, once the sanity conversation has learned that it does not echo."""
    with variant(name, media="voice") as target:
        settings = Settings(seed=1, strict=Level.POLICY)
        assert asyncio.run(run_check(target, SANITY, settings)).status is Status.PASS
        assert target.echoes is False
        result = asyncio.run(run_check(target, BY_ID["ICE-10"], settings))
    assert result.status is status, result.message
    if status is Status.FAIL:
        assert "of its own" in result.message and "RFC 7675" in result.message
