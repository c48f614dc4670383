"""Judgements inside checks, tested on their own both ways: they FAIL the bug they name and
PASS what the RFCs allow (servers that differ from the reference server in allowed ways)."""

from __future__ import annotations

import asyncio

from reference_server import stun
from toolkit.conformance.checks import BY_ID
from toolkit.conformance.checks.stun import amplification_excuse
from toolkit.conformance.model import Settings, Status
from toolkit.conformance.runner import run_check
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
    with WithoutMaxMessageSize() as target:
        result = asyncio.run(run_check(target, BY_ID["DC-04"], Settings(seed=1)))
    assert result.status is Status.PASS, result.message
    assert any("absent: 65536" in note for note in result.notes), result.notes


def test_dtls04_budget_follows_the_rfc6347_backoff():
    from toolkit.conformance.checks.dtls import backoff_budget

    assert backoff_budget(0) == 0
    assert backoff_budget(4) == 1 + 2 + 4 + 8  # the timer may stay doubled across lost flights
    assert backoff_budget(8) == 1 + 2 + 4 + 8 + 16 + 32 + 60 + 60  # capped at 60 s (RFC 6347 §4.2.4.1)


# -- ICE-01 / ICE-08: ufrag randomness -----------------------------------------------------------


def _ufrag_fails(ufrags: list[str]) -> bool:
    from toolkit.conformance.checks.ice import ufrag_problems

    return bool(ufrag_problems(ufrags)[0])


RANDOM_GENERATORS = {
    "6 hex (24 bits)": lambda rng: f"{rng.getrandbits(24):06x}",
    "4 base64 (24 bits)": lambda rng: "".join(rng.choice(BASE64) for _ in range(4)),
    "8 alphanumerics": lambda rng: "".join(rng.choice(BASE64[:62]) for _ in range(8)),
    "5 lowercase+digits (25.9 bits)": lambda rng: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                                          for _ in range(5)),
    "fixed routing prefix + 32 random bits": lambda rng: f"0a{rng.getrandbits(32):08x}",
}
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def test_random_ufrags_pass_essentially_always():
    import random

    rng = random.Random(8445)
    for name, generate in RANDOM_GENERATORS.items():
        failed = sum(_ufrag_fails([generate(rng) for _ in range(8)]) for _ in range(3000))
        assert failed == 0, f"{name}: {failed} of 3000 samples of 8 random ufrags FAILed"


def test_the_stated_false_fail_probabilities():
    from toolkit.conformance.checks.ice import UNIFORM_LEVEL, at_most_distinct

    assert at_most_distinct(8, 16, 2) < UNIFORM_LEVEL <= at_most_distinct(8, 16, 3)
    assert at_most_distinct(8, 64, 3) < UNIFORM_LEVEL <= at_most_distinct(8, 64, 4)
    assert 6 * at_most_distinct(8, 16, 2) + 28 / 2 ** 24 < 5e-5
    assert abs(at_most_distinct(3, 4, 1) - 4 / 64) < 1e-12  # all three draws the same symbol


def test_counters_clocks_and_fixed_ufrags_fail():
    import random

    rng = random.Random(5)
    start = rng.getrandbits(32)
    clock_us = 1_733_600_000_000_000 + rng.getrandbits(20)
    cases = {
        "counter": [f"sess{n:04d}" for n in range(1, 9)],
        "counter from a random start": [f"{start + n:08x}" for n in range(8)],
        "microsecond clock, sessions 2–30 ms apart": [
            f"{(clock_us + n * rng.randint(2_000, 30_000)) & 0xFFFFFFFF:08x}" for n in range(8)],
        "millisecond clock in base 36": [_base36(1_733_600_000_000 + 7 * n) for n in range(8)],
        "random prefix, fixed rest": [f"{rng.getrandbits(12):03x}fixedpart" for _ in range(8)],
        "repeated": ["abcdefgh"] * 2 + [f"{rng.getrandbits(40):010x}" for _ in range(6)],
        "too short": [f"{rng.getrandbits(12):03x}" for _ in range(8)],
        "not ice-chars": [f"{rng.getrandbits(32):08x}-x" for _ in range(8)],
    }
    for name, ufrags in cases.items():
        assert _ufrag_fails(ufrags), f"{name}: {ufrags} passed"


def _base36(value: int) -> str:
    digits = ""
    while value:
        value, digit = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits


# -- checks that must PASS servers differing from the reference in allowed ways ------------------


def run_against_allowed(server: str, check_id: str, media: str = "echo"):
    """`check_id` against allowed server `server`; a voice server first plays the sanity conversation,
    which learns that it does not echo (the check then judges through RTCP reports)."""
    from tests.conformance.allowed_servers import command
    from toolkit.conformance.checks import SANITY
    from toolkit.conformance.model import Level

    settings = Settings(seed=1, strict=Level.POLICY)
    target = ReferenceTarget(media=media, command=command(server))

    async def play():
        if media == "voice":
            sanity = await run_check(target, SANITY, settings)
            assert sanity.status is Status.PASS and target.echoes is False, sanity.message
        return await run_check(target, BY_ID[check_id], settings)

    with target:
        return asyncio.run(play())


def test_srtp03_passes_a_replay_window_larger_than_its_jump():
    """RFC 3711 §3.3.2 sets no maximum window: the packet 2000 behind may be accepted, once."""
    result = run_against_allowed("large-replay-window", "SRTP-03")
    assert result.status is Status.PASS, result.message
    assert any("accepted once" in note for note in result.notes), result.notes


def test_srtp03_passes_a_larger_replay_window_judged_through_rtcp_reports():
    result = run_against_allowed("large-replay-window", "SRTP-03", media="voice")
    assert result.status is Status.PASS, result.message
    assert any("accepted once" in note for note in result.notes), result.notes


def test_dtls10_does_not_count_media_already_in_flight_at_close_notify():
    result = run_against_allowed("media-in-flight-at-close", "DTLS-10")
    assert result.status is Status.PASS, result.message
    assert any("not counted" in note for note in result.notes), result.notes


def test_dtls02_passes_a_target_that_completes_then_tears_down():
    """RFC 5763 §5: a fingerprint mismatch may be found after the handshake; the session then ends."""
    result = run_against_allowed("tears-down-after-handshake", "DTLS-02")
    assert result.status is Status.PASS, result.message
    assert any("handshake completed" in note for note in result.notes), result.notes


def test_dc03_does_not_judge_the_channel_its_second_open_disturbed():
    result = run_against_allowed("reopen-disturbs-channel", "DC-03")
    assert result.status is Status.PASS, result.message
