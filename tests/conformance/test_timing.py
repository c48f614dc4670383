"""The probe's scheduling lag and the verdicts of timing-judged checks: a late probe makes a
timing failure inconclusive (SKIP), a late target still FAILs."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from toolkit.conformance.conversation import Conversation
from toolkit.conformance.model import CheckFailed, CheckSkipped, Settings
from toolkit.conformance.timing import LagSummary, SchedulingLag, TimingProblem, judge_timing


def test_a_blocked_event_loop_shows_as_lag():
    async def play() -> SchedulingLag:
        monitor = SchedulingLag(asyncio.get_running_loop())
        monitor.start()
        await asyncio.sleep(0.05)
        time.sleep(0.12)  # the probe falls behind: nothing on its loop runs for 120 ms
        await asyncio.sleep(0.05)
        await monitor.stop()
        return monitor

    lag = asyncio.run(play()).summary()
    assert lag.worst >= 0.11 and lag.wakeups >= 5


def test_lag_explains_only_problems_it_could_have_caused():
    quiet, stalled, behind = LagSummary(0.001, 0.002, 200), LagSummary(0.002, 0.040, 200), LagSummary(0.02, 0.05, 200)
    packet_late = [TimingProblem("packet 45 arrived 37 ms late (allowed ±30 ms)", 0.007)]
    bursts = [TimingProblem("packets 180 ms ahead of real time (bursts)", 0.150)]
    assert not quiet.explains(packet_late) and stalled.explains(packet_late)
    assert not stalled.explains(bursts) and not behind.explains(bursts)
    unanswered = [TimingProblem("mix: 4 turns answered, 6 in the quiet window", None)]
    assert not stalled.explains(unanswered) and behind.explains(unanswered)


def judged(problems: list[TimingProblem], lag: LagSummary):
    async def play():
        conversation = Conversation(target=None, settings=Settings(), rng=random.Random(1))
        try:
            judge_timing(conversation, problems, lag=lag)
        finally:
            for cleanup in conversation.cleanups:
                await cleanup()
        return conversation

    return asyncio.run(play())


def test_judge_timing_skips_inconclusive_fails_late_and_notes_a_pass():
    late = [TimingProblem("packet 45 arrived 37 ms late", 0.007)]
    with pytest.raises(CheckSkipped, match=r"inconclusive: the runner was too busy \(probe scheduling lag p99 "):
        judged(late, LagSummary(0.004, 0.030, 100))
    with pytest.raises(CheckFailed, match="packet 45 arrived 37 ms late"):
        judged(late, LagSummary(0.0005, 0.001, 100))
    assert judged([], LagSummary(0.0005, 0.001, 100)).notes == ["probe scheduling lag p99 0.5 ms, max 1.0 ms "
                                                                "over 100 wake-ups"]


def test_gc_is_held_across_nested_holds_and_restored_after():
    import gc

    from toolkit.conformance.timing import gc_held

    assert gc.isenabled()
    with gc_held():
        with gc_held():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
