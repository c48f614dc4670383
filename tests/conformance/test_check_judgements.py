"""Judgements inside checks, tested on their own both ways: they FAIL the bug they name and
PASS what the RFCs allow (servers that differ from the reference server in allowed ways)."""

from __future__ import annotations

import asyncio

from reference_server import stun
from toolkit.conformance.checks import BY_ID
from toolkit.conformance.checks.stun import amplification_excuse
from toolkit.conformance.model import Status
from toolkit.conformance.runner import Settings, run_check
from toolkit.conformance.targets import ReferenceTarget

TID = bytes(range(12))


def error(code: int, reason: str, *extra: tuple[int, bytes]) -> bytes:
    return stun.build(stun.BINDING, stun.ERROR, TID, [(stun.ERROR_CODE, stun.error_code(code, reason)), *extra])


def test_bare_mandated_400_may_exceed_a_tiny_request():
    """Janus answers a 28-byte header+FINGERPRINT request with a 48-byte 400 (RFC 8489 §9.1.3)."""
    answer = error(400, "Bad Request")
    assert len(answer) == 48
    assert amplification_excuse(answer) is not None
    assert amplification_excuse(error(420, "Unknown Attribute", (stun.UNKNOWN_ATTRIBUTES, b"\x7f\x31"))) is not None


def test_stuffed_or_successful_answers_amplify():
    assert amplification_excuse(error(400, "Bad Request", (stun.SOFTWARE, b"some server 1.0"))) is None
    assert amplification_excuse(error(401, "Unauthorized: " + "x" * 40)) is None
    assert amplification_excuse(error(400, "Bad Request", (stun.UNKNOWN_ATTRIBUTES, b"\x7f\x31"))) is None
    success = stun.build(stun.BINDING, stun.SUCCESS, TID, [(stun.SOFTWARE, b"x")])
    assert amplification_excuse(success) is None
    assert amplification_excuse(error(400, "Bad Request")[:-3]) is None  # lengths that do not add up


# -- DC-01 wording, DC-04 without a=max-message-size -------------------------------------------


def test_dc_messages_that_came_back_changed_are_altered_not_missing():
    from toolkit.conformance.checks.dc import _difference

    said = _difference(["one", "two", b"three"], ["one", "twx"])
    assert "1 altered" in said and "'twx'" in said and "1 missing" in said and "b'three'" in said
    assert "missing" not in _difference(["one", "two"], ["one", "TWO"])


class WithoutMaxMessageSize(ReferenceTarget):
    """The reference server, its answers stripped of a=max-message-size (RFC 8841 §6.1: 65536)."""

    async def offer(self, sdp: str, *, timeout: float):
        answer, handle = await super().offer(sdp, timeout=timeout)
        return "".join(line for line in answer.splitlines(keepends=True)
                       if not line.startswith("a=max-message-size:")), handle


def test_dc04_passes_a_target_whose_answer_has_no_max_message_size():
    target = WithoutMaxMessageSize()
    target.start()
    try:
        result = asyncio.run(run_check(target, BY_ID["DC-04"], Settings(seed=1)))
    finally:
        target.stop()
    assert result.status is Status.PASS, result.message
    assert any("absent: 65536" in note for note in result.notes), result.notes


def test_dtls04_budget_follows_the_rfc6347_backoff():
    from toolkit.conformance.checks.dtls import backoff_budget

    assert backoff_budget(0) == 0
    assert backoff_budget(4) == 1 + 2 + 4 + 8  # the timer may stay doubled across lost flights
    assert backoff_budget(8) == 1 + 2 + 4 + 8 + 16 + 32 + 60 + 60  # capped at 60 s (RFC 6347 §4.2.4.1)
