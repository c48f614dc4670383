"""Was the probe itself on time? Scheduling lag for the checks that judge timing.

A check that judges time with the probe's clock (VOICE pacing and latencies, PERF setup and
round trips) cannot tell a late target from a late probe: on a busy runner the probe's event
loop wakes up late, stamps arrivals late and sends late. `SchedulingLag` measures that while
the check runs — a task asks to wake every `INTERVAL` and records how late it woke — and
`judge_timing` turns a timing FAIL into a SKIP ("inconclusive: the runner was too busy") only
when the lag measured in the same check is large enough to explain it. Checks stay able to
FAIL: a failure bigger than the probe's own lateness could make is still a FAIL, and on a quiet
runner the lag is a fraction of a millisecond.

The probe keeps itself on time where it can: `hold_gc` / `gc_held` keep the cyclic garbage
collector out of a timed span (a full collection is the biggest stall the probe makes itself).

The contract: `scheduling_lag(conversation)` starts (once per conversation) and returns the
monitor, stopped with the conversation; `SchedulingLag` can also be run around any span (a
load run) and summarised per window; `judge_timing(conversation, problems)` raises CheckFailed
or CheckSkipped when there are problems, and returns when there are none.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass

from toolkit.conformance.model import CheckFailed, CheckSkipped
from toolkit.percentiles import nearest_rank

INTERVAL = 0.005
"""How often the monitor asks to wake up: fine enough to see a 10 ms stall, cheap on the loop."""
BUSY_P99 = 0.010
"""A probe whose wake-ups are this late at the 99th percentile was behind its own schedule for
the whole span: what it failed to see in a window may simply have come after it."""
EXPLAINS = 2.0
"""A timing problem is explained by the runner when its excess over the allowance is at most
this many times the worst lag measured: the probe's late stamp plus the target's own late
wake-up on the same busy machine."""


@dataclass(frozen=True, slots=True)
class TimingProblem:
    """One timing judgement that failed: what, and by how much it went past its allowance."""

    text: str
    excess: float | None
    """Seconds beyond the allowance (how late, or how early past the window); None for a
    problem with no size in time (turns unanswered within a window), which only a probe that
    was behind its schedule throughout (`LagSummary.busy`) explains."""


@dataclass(frozen=True, slots=True)
class LagSummary:
    """The probe's scheduling lag over a span of a check."""

    p99: float
    worst: float
    wakeups: int

    def describe(self) -> str:
        return (f"probe scheduling lag p99 {1000 * self.p99:.1f} ms, max {1000 * self.worst:.1f} ms "
                f"over {self.wakeups} wake-ups")

    def explains(self, problems: list[TimingProblem]) -> bool:
        """True when the probe's own lateness (on a machine that also runs the target) could
        account for every problem: each goes past its allowance by at most EXPLAINS × the
        worst lag measured over the span it was judged in."""
        return all(self.busy if problem.excess is None else problem.excess <= EXPLAINS * self.worst
                   for problem in problems)

    @property
    def busy(self) -> bool:
        """The probe was behind its own schedule most of the span (p99 at least BUSY_P99)."""
        return self.p99 >= BUSY_P99


class SchedulingLag:
    """How late the probe's event loop wakes up compared with when it asked to."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.samples: list[tuple[float, float]] = []
        """(loop time asked for, lag in seconds) for each wake-up."""
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = self.loop.create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _sample(self) -> None:
        loop = self.loop
        while True:
            asked = loop.time() + INTERVAL
            await asyncio.sleep(INTERVAL)
            self.samples.append((asked, max(0.0, loop.time() - asked)))

    def summary(self, since: float | None = None, until: float | None = None) -> LagSummary:
        """Lag over wake-ups asked for in [since, until] (loop time; the whole record by default)."""
        lags = sorted(lag for at, lag in self.samples
                      if (since is None or at >= since) and (until is None or at <= until))
        if not lags:
            return LagSummary(0.0, 0.0, 0)
        return LagSummary(nearest_rank(lags, 0.99)[0], lags[-1], len(lags))


def scheduling_lag(conversation) -> SchedulingLag:
    """The conversation's lag monitor, started on first use and stopped when the check ends."""
    monitor = conversation.scratch.get("scheduling_lag")
    if monitor is None:
        monitor = conversation.scratch["scheduling_lag"] = SchedulingLag(conversation.loop)
        monitor.start()
        conversation.cleanups.append(monitor.stop)
    return monitor


_gc_holds = 0
_gc_reenable = False


@contextlib.contextmanager
def gc_held() -> Iterator[None]:
    """No cyclic garbage collection inside: a full collection of the probe's heap stalls its event
    loop for 100 ms and more on a busy runner (measured: 151 ms), which stamps every datagram
    arriving meanwhile late. One collection runs first, outside the measured span; nested and
    concurrent holds (zoo lanes share the process) re-enable the collector when the last ends."""
    global _gc_holds, _gc_reenable
    if _gc_holds == 0 and gc.isenabled():
        gc.collect()
        gc.disable()
        _gc_reenable = True
    _gc_holds += 1
    try:
        yield
    finally:
        _gc_holds -= 1
        if _gc_holds == 0 and _gc_reenable:
            _gc_reenable = False
            gc.enable()


def hold_gc(conversation) -> None:
    """`gc_held` from now until the conversation closes."""
    if "gc_held" in conversation.scratch:
        return
    held = conversation.scratch["gc_held"] = gc_held()
    held.__enter__()

    async def release() -> None:
        held.__exit__(None, None, None)

    conversation.cleanups.append(release)


def judge_timing(conversation, problems: list[TimingProblem], *, since: float | None = None,
                 lag: LagSummary | None = None, context: str = "") -> None:
    """FAIL with the problems, or SKIP as inconclusive when the probe's lag over the judged span
    explains them all: `lag`, or the conversation's monitor from `since` (the conversation's
    clock, `conversation.now()`) until now. With no problems, note the lag."""
    if lag is None:
        start = None if since is None else conversation.started + since
        lag = scheduling_lag(conversation).summary(since=start)
    if not problems:
        conversation.note(lag.describe())
        return
    said = "; ".join(problem.text for problem in problems) + context
    if lag.explains(problems):
        raise CheckSkipped(f"inconclusive: the runner was too busy ({lag.describe()}) to judge: {said}")
    conversation.note(lag.describe())
    raise CheckFailed(said)
