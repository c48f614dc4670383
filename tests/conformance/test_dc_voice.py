"""DC and VOICE checks beyond the zoo (tests/zoo/ shows each one FAILing against its faulty variant
and PASSing against the reference server): where they SKIP, how the runner routes voice checks to
the reference server's voice twin, and the pure judgements of VOICE-04 and VOICE-05."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from tests.support.fake_target import FakeTarget
from toolkit.conformance.checks import BY_ID
from toolkit.conformance.checks.voice import FRAME_SAMPLES, Heard, pacing_problems, talkspurts, tone_runs
from toolkit.conformance.model import Check, Settings, Status
from toolkit.conformance.runner import run_check, run_checks
from toolkit.conformance.steps import Do
from toolkit.conformance.targets import ReferenceTarget, Target

DC_AND_VOICE = [check_id for check_id in BY_ID if check_id.startswith(("DC-", "VOICE-"))]

ANSWER = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
a=ice-lite
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 127.0.0.1
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 {fingerprint}
a=setup:passive
a=mid:0
a=rtpmap:111 opus/48000/2
a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host
""".replace("\n", "\r\n").format(fingerprint=":".join(["AB"] * 32))


@pytest.mark.parametrize("section", ["m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n", ""],
                         ids=["port-0", "absent"])
@pytest.mark.parametrize("check_id", DC_AND_VOICE)
def test_a_target_that_rejects_the_data_channel_skips_them(check_id, section):
    result = asyncio.run(run_check(FakeTarget(ANSWER + section, name="answerer"), BY_ID[check_id], Settings()))
    assert result.status is Status.SKIP
    assert result.message.startswith("the target rejected the data channel")


class EchoOnly(ReferenceTarget):
    """The reference server in echo mode, playing voice checks itself: a target with data channels
    and no voice loop."""

    def for_profile(self, profile: str) -> Target:
        return self


@pytest.fixture(scope="module")
def echo_only():
    with EchoOnly() as target:
        yield target


def test_a_target_without_a_voice_loop_skips_the_voice_checks(echo_only):
    result = asyncio.run(run_check(echo_only, BY_ID["VOICE-01"], Settings(reply_timeout=0.5)))
    assert result.status is Status.SKIP, result.message
    assert "sent no session.created on 'oai-events'" in result.message
    assert result.message.endswith("it runs no realtime voice loop")


# -- routing: the reference server's voice twin ----------------------------------------------------


def test_the_reference_target_plays_voice_checks_on_a_voice_twin_of_itself():
    command = [sys.executable, "-m", "tests.zoo.serve", "some-variant"]
    target = ReferenceTarget(consent_timeout=4.0, command=command)
    twin = target.for_profile("voice")
    assert twin is not target and twin is target.for_profile("voice")
    assert (twin.media, twin.server_command, twin.consent_timeout, twin.process) == ("voice", command, 4.0, None)
    assert "--media" in twin.command() and twin.command()[twin.command().index("--media") + 1] == "voice"
    assert target.for_profile("core") is target and target.for_profile("security") is target
    assert ReferenceTarget(media="voice").for_profile("voice").media == "voice"


class Recording(FakeTarget):
    def __init__(self, name: str, other: Target | None = None) -> None:
        super().__init__(ANSWER, name=name)
        self.other = other
        self.started = threading.Event()

    def for_profile(self, profile: str) -> Target:
        return self.other if profile == "voice" and self.other is not None else self

    def start(self) -> None:
        self.started.set()


def played_on(conversation) -> None:
    conversation.note(f"played on {conversation.target.name}")


def test_run_check_plays_on_the_profiles_target_and_replays_through_the_given_one():
    twin = Recording("twin")
    target = Recording("main", twin)
    check = Check("T-VOICE", "voice", "RFC 0000", "synthetic", (Do(played_on),))
    result = asyncio.run(run_check(target, check, Settings(seed=3)))
    assert result.status is Status.PASS
    assert result.notes == ["played on twin"]
    assert twin.started.is_set() and not target.started.is_set()
    assert "--signaling fake:main --only T-VOICE --seed 3" in result.replay


def test_run_checks_starts_the_other_targets_while_the_first_checks_play():
    twin = Recording("twin")
    target = Recording("main", twin)

    async def twin_starts_meanwhile(conversation) -> None:
        assert await asyncio.to_thread(twin.started.wait, 2.0), "the voice twin was not started in the background"

    core = Check("T-CORE", "core", "RFC 0000", "synthetic", (Do(twin_starts_meanwhile),))
    voice = Check("T-VOICE", "voice", "RFC 0000", "synthetic", (Do(played_on),))
    run = asyncio.run(run_checks(target, [core, voice], Settings()))
    assert [r.status for r in run.results] == [Status.PASS, Status.PASS], [r.message for r in run.results]
    assert run.results[1].notes == ["played on twin"]


# -- the judgements --------------------------------------------------------------------------------


def packets(arrivals: list[float], *, start: int = 1000, marker_at: tuple[int, ...] = (0,),
            samples: int = FRAME_SAMPLES, tone: float | None = 440.0) -> list[Heard]:
    return [Heard(at, start + index * FRAME_SAMPLES, index in marker_at, samples, -20.0, tone)
            for index, at in enumerate(arrivals)]


def test_a_paced_answer_with_a_little_jitter_passes():
    arrivals = [1.0 + 0.020 * k + (0.004 if k % 7 == 0 else 0.0) for k in range(50)]
    problems, worst, spurts = pacing_problems(packets(arrivals), 0.030)
    assert problems == [] and spurts == 1
    assert worst == pytest.approx(0.004, abs=1e-6)


def test_bursts_of_ten_frames_every_200_ms_fail():
    arrivals = [1.0 + 0.200 * (k // 10) + 0.0001 * (k % 10) for k in range(50)]
    problems, worst, _ = pacing_problems(packets(arrivals), 0.030)
    assert len(problems) == 1 and "ahead of real time (bursts)" in problems[0]
    assert worst > 0.080


def test_an_answer_slower_than_real_time_fails():
    arrivals = [1.0 + 0.025 * k for k in range(50)]
    problems, _, _ = pacing_problems(packets(arrivals), 0.030)
    assert problems and "for its real-time slot" in problems[0]


def test_frames_that_are_not_20_ms_fail():
    problems, _, _ = pacing_problems(packets([1.0 + 0.04 * k for k in range(5)], samples=1920), 0.030)
    assert problems[0] == "5 of 5 packets do not hold 20 ms (sample counts [1920])"


def test_each_talkspurt_gets_its_own_schedule():
    arrivals = [1.0 + 0.02 * k for k in range(10)] + [2.5 + 0.02 * k for k in range(10)]
    heard = packets(arrivals, marker_at=(0, 10))
    assert [len(spurt) for spurt in talkspurts(heard)] == [10, 10]
    assert pacing_problems(heard, 0.030)[0] == []
    # Without the marker, a 1.3 s pause inside one timestamp line is 1.3 s late.
    problems, worst, spurts = pacing_problems(packets(arrivals), 0.030)
    assert spurts == 1 and worst == pytest.approx(1.3 / 2, abs=0.01) and problems


def test_tone_runs_count_bursts_and_bridge_one_odd_frame():
    tones = [880, 880, None, None, 880, 660, 880, 880, None, None, 880, 880]
    heard = [Heard(0.02 * k, k * FRAME_SAMPLES, False, FRAME_SAMPLES, -20.0, tone) for k, tone in enumerate(tones)]
    assert tone_runs(heard, 880.0) == 3
