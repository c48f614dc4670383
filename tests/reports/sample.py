"""A run with one result of each kind the report writers meet, for their tests."""
from __future__ import annotations

from toolkit.conformance.model import Check, CheckResult, Datagram, Status
from toolkit.conformance.runner import RunResult
from toolkit.conformance.steps import Wait

SERVER = ("127.0.0.1", 3478)
CLIENT = ("127.0.0.1", 50000)


def result(check_id: str, status: Status, message: str = "", **extra) -> CheckResult:
    check = Check(check_id, "security", f"RFC 8489 §{check_id}", f"title of {check_id}", (Wait(0),))
    return CheckResult(check=check, status=status, message=message, duration=0.25, seed=9,
                       replay=f"rtcgate check --reference --only {check_id} --seed 9", **extra)


def sample_run() -> RunResult:
    """PASS, FAIL (with datagrams, keys and a dropped datagram), SKIP, XFAIL, XPASS, and two sanity PASSes."""
    binding = bytes.fromhex("000100002112a442") + bytes(12)
    failed = result("STUN-07", Status.FAIL, "expected silence; got a STUN error (48 bytes, error 400)",
                    notes=["main: error 400"],
                    datagrams=[Datagram(0.001, "out", "main", CLIENT, SERVER, binding),
                               Datagram(0.002, "in", "main", CLIENT, SERVER, binding[:1] + b"\x11" + binding[2:]),
                               Datagram(0.003, "out", "main", CLIENT, SERVER, b"\x80" * 30, note="dropped by the check, never sent")],
                    keylog=[b"CLIENT_RANDOM " + b"00" * 32 + b" " + b"11" * 48],
                    srtp_keys=[(CLIENT, SERVER, "SRTP_AES128_CM_SHA1_80", bytes(30))])
    results = [
        result("STUN-01", Status.PASS, notes=["success response"]),
        failed,
        result("STUN-10", Status.SKIP, "the target offers no IPv6 candidate"),
        result("DTLS-08", Status.XFAIL, "renegotiated", xfail_comment="known gap <b>"),
        result("DTLS-09", Status.XPASS, "expected to fail but passed"),
    ]
    sanity = [result("SANITY", Status.PASS), result("SANITY", Status.PASS)]
    return RunResult("reference server", 9, "2025-01-01T00:00:00+00:00", 1.5, results, sanity)
