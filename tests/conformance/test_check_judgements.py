"""Judgements inside checks, tested on their own both ways: they FAIL the bug they name and
PASS what the RFCs allow (servers that differ from the reference server in allowed ways)."""

from __future__ import annotations

from reference_server import stun
from toolkit.conformance.checks.stun import amplification_excuse

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
