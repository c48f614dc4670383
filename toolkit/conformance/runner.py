"""The one runner: plays each check's conversation against a target and judges the outcome.

`sanity` (connect, media taken) runs first and last: first to prove the target works at all
(otherwise the run stops with `TargetUnreachable`, exit 2) and to learn whether it echoes media
(`Target.echoes`, `RunResult.target_echoes`), last to prove the catalog did not break it. Each
check gets its own seed, derived from the run's seed and its ID, so `--only ID --seed N` replays
exactly that check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import random
import shlex
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from toolkit.conformance.conversation import Conversation
from toolkit.conformance.model import (
    RFC_CONSENT_TIMEOUT,
    Check,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    Level,
    Settings,
    Status,
    as_typed,
)
from toolkit.conformance.targets import Target, TargetError
from toolkit.peer import PeerError


class TargetUnreachable(Exception):
    """The first sanity conversation failed: the target cannot be reached or does not work at all.

    `run` is the run so far (its first sanity conversation, now ERROR, and `stopped`), so the
    reports can still be written and say so."""

    def __init__(self, message: str, run: RunResult | None = None) -> None:
        super().__init__(message)
        self.run = run


@dataclass(slots=True)
class RunResult:
    target: str
    seed: int
    started: str
    duration: float
    results: list[CheckResult]
    sanity: list[CheckResult] = field(default_factory=list)
    """The sanity conversations, first and last."""
    strict: Level = Level.MUST
    """The weakest level that gated this run."""
    target_echoes: bool | None = None
    """What the first sanity conversation learned: whether the target sends our media back."""
    stopped: str | None = None
    """Why the run stopped before judging the catalog (the target cannot be reached, rtcgate
    itself failed); None for a run that went to its end."""

    def counts(self) -> Counter[Status]:
        return Counter(result.status for result in self.results)

    @property
    def exit_code(self) -> int:
        """2 when the run stopped or something ERRORed (no verdict), else 1 when something FAILs
        or XPASSes (sanity included), else 0."""
        everything = (*self.results, *self.sanity)
        if self.stopped or any(result.status is Status.ERROR for result in everything):
            return 2
        return 1 if any(result.status.bad for result in everything) else 0


DEFAULTS = Settings()


def check_seed(seed: int, check_id: str) -> int:
    """The seed of one check in a run: stable across runs, processes and Python versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{check_id}".encode()).digest()[:8], "big")


def replay_command(target: Target, check_id: str, settings: Settings) -> str:
    """The `rtcgate check` line that plays `check_id` again as `settings` played it: what the
    command line set (PERF thresholds only for a PERF check, the only ones they decide)."""
    arguments = ["rtcgate", "check", *target.replay_args, "--only", check_id, "--seed", str(settings.seed)]
    if settings.strict is not Level.MUST:
        arguments += ["--strict", settings.strict.value.lower()]
    if settings.silence != DEFAULTS.silence:
        arguments += ["--silence", as_typed(settings.silence)]
    if target.consent_timeout is None and settings.consent_timeout != RFC_CONSENT_TIMEOUT:
        arguments += ["--consent-timeout", as_typed(settings.consent_timeout)]
    if settings.dtls_role != "auto":
        arguments += ["--dtls-role", settings.dtls_role]
    if check_id.startswith("PERF-"):  # the user's thresholds decide a PERF check: replay with them
        arguments += settings.perf.replay_args()
    return shlex.join(arguments)


async def run_check(target: Target, check: Check, settings: Settings) -> CheckResult:
    """Play one check; never raises for what the target does (that is the result).

    The check plays against `target.for_profile(check.profile)` (the reference server's voice
    twin for `voice` checks), started here if it is not yet; the replay command names `target`.
    """
    played = target.for_profile(check.profile)
    if played.consent_timeout is not None:
        settings = dataclasses.replace(settings, consent_timeout=played.consent_timeout)
    loop = asyncio.get_running_loop()
    seed = check_seed(settings.seed, check.id)
    conversation = Conversation(played, settings, random.Random(seed))
    started = loop.time()
    status, message = Status.PASS, ""
    step_index = 0
    try:
        if played is not target:
            try:
                await asyncio.to_thread(played.start)
            except TargetError as exc:
                raise CheckFailed(f"the {check.profile} target could not be started: {exc}") from None
        async with asyncio.timeout(check.timeout):
            for step in check.steps:
                await step.run(conversation)
    except CheckFailed as exc:
        status, message = check.failed_status(settings.strict), str(exc)
    except CheckSkipped as exc:
        status, message = Status.SKIP, str(exc)
    except TimeoutError:
        step = check.steps[step_index].describe() if check.steps else "no step"
        status = check.failed_status(settings.strict)
        message = f"the conversation did not finish within {check.timeout:g} s (at step {step_index + 1}: {step})"
    except PeerError as exc:
        status, message = check.failed_status(settings.strict), f"the probe peer could not go on: {exc}"
    except Exception as exc:  # a bug in the check itself: report it as an ERROR, keep running the catalog
        status, message = Status.ERROR, f"the check itself raised {type(exc).__name__}: {exc}"
        conversation.note(traceback.format_exc())
    finally:
        try:
            async with asyncio.timeout(5.0):
                await conversation.close()
        except (Exception, TimeoutError) as exc:
            conversation.note(f"cleanup: {type(exc).__name__}: {exc}")
    result = CheckResult(
        check=check,
        status=status,
        message=message,
        duration=loop.time() - started,
        seed=settings.seed,
        notes=conversation.notes,
        datagrams=conversation.datagrams,
        replay=replay_command(target, check.id, settings),
        local_ports={name: socket.local for name, socket in conversation.sockets.items()},
    )
    for session in conversation.sessions.values():
        result.keylog.extend(session.peer.keylog_lines)
        keys = session.peer.srtp_keys
        if keys is None or session.peer.remote is None:
            continue
        remote = session.peer.remote
        for socket in conversation.sockets.values():
            if socket.owner is session:
                result.srtp_keys.append((socket.local, remote, keys.profile, keys.local))
                result.srtp_keys.append((remote, socket.local, keys.profile, keys.remote))
    return result


def apply_xfail(result: CheckResult, xfail: dict[str, str]) -> CheckResult:
    comment = xfail.get(result.check.id)
    if comment is None:
        return result
    result.xfail_comment = comment
    if result.status is Status.FAIL:
        result.status = Status.XFAIL
    elif result.status is Status.PASS:
        result.status = Status.XPASS
        result.message = f"expected to fail ({comment}) but passed: remove it from the expected-failures file"
    return result


Progress = Callable[[int, int, Check, "CheckResult | None"], None]
"""Called with result None when a check starts, and with its result when it ends."""


async def run_checks(
    target: Target,
    checks: Sequence[Check],
    settings: Settings,
    *,
    sanity: Check | None = None,
    xfail: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Sanity, every check in order, sanity again. TargetUnreachable if the first sanity fails."""
    xfail = xfail or {}
    settings = dataclasses.replace(settings, planned=frozenset(check.id for check in checks))
    started_wall = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    run = RunResult(target.description, settings.seed, started_wall, 0.0, [], strict=settings.strict)
    total = len(checks)
    # Targets that other profiles play against (the reference's voice twin) start in the
    # background now, so the checks before theirs hide the start-up; a failed start is retried,
    # and reported, by the first check that needs it.
    others = {id(played): played for played in (target.for_profile(check.profile) for check in checks)
              if played is not target}
    warming = [asyncio.create_task(asyncio.to_thread(played.start)) for played in others.values()]
    try:
        if sanity is not None:
            first = await run_check(target, sanity, settings)
            run.sanity.append(first)
            if first.status is not Status.PASS:
                why = "rtcgate itself failed" if first.status is Status.ERROR else "the target cannot be reached"
                first.status = Status.ERROR  # no verdict on the target's conformance: the catalog never ran
                run.stopped = f"{why}: {target.description}: the sanity conversation failed: {first.message}"
                run.duration = time.monotonic() - started
                raise TargetUnreachable(run.stopped, run)
        run.target_echoes = target.echoes
        for index, check in enumerate(checks, start=1):
            if progress is not None:
                progress(index, total, check, None)
            result = apply_xfail(await run_check(target, check, settings), xfail)
            run.results.append(result)
            if progress is not None:
                progress(index, total, check, result)
        if sanity is not None:
            last = await run_check(target, sanity, settings)
            if last.status is Status.FAIL:
                last.message = f"the target stopped working during the run: {last.message}"
            run.sanity.append(last)
    finally:
        await asyncio.gather(*warming, return_exceptions=True)
    run.duration = time.monotonic() - started
    return run
