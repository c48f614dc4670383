"""Runner semantics on synthetic checks: statuses, expected failures, sanity, seeds, exit codes."""
from __future__ import annotations

import asyncio

import pytest

from tests.support.fake_target import FakeTarget
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped, Settings, Status
from toolkit.conformance.runner import (
    RunResult,
    TargetUnreachable,
    apply_xfail,
    check_seed,
    run_check,
    run_checks,
)
from toolkit.conformance.steps import Do, Wait
from toolkit.conformance.targets import TargetError, make_target
from toolkit.conformance.xfail import XfailError, parse_xfail


def fail(conversation):
    raise CheckFailed("the target said yes")


def skip(conversation):
    raise CheckSkipped("does not apply")


def crash(conversation):
    raise ZeroDivisionError("oops")


def synthetic(check_id: str, *steps, timeout: float = 5.0) -> Check:
    return Check(check_id, "core", "RFC 0000", f"synthetic {check_id}", tuple(steps), timeout=timeout)


PASSING = synthetic("T-PASS", Do(lambda conversation: conversation.note("fine")))
FAILING = synthetic("T-FAIL", Do(fail))
SKIPPING = synthetic("T-SKIP", Do(skip))


def run(check: Check, seed: int = 5):
    return asyncio.run(run_check(FakeTarget(), check, Settings(seed=seed)))


@pytest.mark.parametrize(("check", "status", "message"), [
    (PASSING, Status.PASS, ""),
    (FAILING, Status.FAIL, "the target said yes"),
    (SKIPPING, Status.SKIP, "does not apply"),
    (synthetic("T-CRASH", Do(crash)), Status.ERROR, "the check itself raised ZeroDivisionError: oops"),
])
def test_step_outcomes_become_statuses(check, status, message):
    result = run(check)
    assert result.status is status
    assert result.message == message


def test_a_conversation_over_its_budget_fails_naming_the_step():
    result = run(synthetic("T-SLOW", Wait(5.0), timeout=0.05))
    assert result.status is Status.FAIL
    assert "did not finish within 0.05 s (at step 1: Wait(5 s))" in result.message


def test_signaling_failure_is_a_fail_with_the_reason():
    from toolkit.conformance.steps import Connect

    result = run(synthetic("T-CONNECT", Connect()))
    assert result.status is Status.FAIL
    assert result.message == "session main: signaling failed: connection refused"


def test_replay_command_names_the_check_and_seed():
    result = run(FAILING, seed=1234)
    assert result.replay == "rtcgate check --signaling fake:target --only T-FAIL --seed 1234"


def test_each_check_has_its_own_stable_seed():
    assert check_seed(1234, "STUN-02") == check_seed(1234, "STUN-02")
    assert check_seed(1234, "STUN-02") != check_seed(1234, "STUN-03")
    assert check_seed(1234, "STUN-02") != check_seed(1235, "STUN-02")


@pytest.mark.parametrize(("status", "expected"), [
    (Status.FAIL, Status.XFAIL), (Status.PASS, Status.XPASS), (Status.SKIP, Status.SKIP)])
def test_expected_failures_turn_fail_into_xfail_and_pass_into_xpass(status, expected):
    result = run({Status.FAIL: FAILING, Status.PASS: PASSING, Status.SKIP: SKIPPING}[status])
    check_id = result.check.id
    assert apply_xfail(result, {check_id: "known gap"}).status is expected
    assert result.xfail_comment == "known gap"


def test_exit_code_is_one_for_fail_or_xpass_and_two_for_an_error():
    def exit_code(*statuses):
        results = [run(PASSING) for _ in statuses]
        for result, status in zip(results, statuses):
            result.status = status
        return RunResult("t", 0, "now", 0.0, results).exit_code

    assert exit_code(Status.PASS, Status.SKIP, Status.XFAIL) == 0
    assert exit_code(Status.PASS, Status.FAIL) == 1
    assert exit_code(Status.XPASS) == 1
    assert exit_code(Status.FAIL, Status.ERROR) == 2  # rtcgate failed: no verdict, whatever else failed


def test_failing_sanity_stops_the_run_as_unreachable():
    with pytest.raises(TargetUnreachable, match="the sanity conversation failed: the target said yes") as raised:
        asyncio.run(run_checks(FakeTarget(), [PASSING], Settings(), sanity=FAILING))
    run = raised.value.run  # what the reports of a stopped run are written from
    assert [s.status for s in run.sanity] == [Status.ERROR] and run.results == []
    assert run.stopped.endswith("the sanity conversation failed: the target said yes")
    assert run.exit_code == 2


def test_run_checks_reports_progress_and_applies_xfail():
    seen = []
    result = asyncio.run(run_checks(FakeTarget(), [PASSING, FAILING, SKIPPING], Settings(), sanity=PASSING,
                                    xfail={"T-FAIL": "ticket 7"},
                                    progress=lambda i, n, check, r: seen.append((i, n, check.id, r and r.status))))
    assert [r.status for r in result.results] == [Status.PASS, Status.XFAIL, Status.SKIP]
    assert [s.status for s in result.sanity] == [Status.PASS, Status.PASS]
    assert seen[:2] == [(1, 3, "T-PASS", None), (1, 3, "T-PASS", Status.PASS)]
    assert result.exit_code == 0


def test_xfail_file_needs_a_comment_and_known_ids():
    assert parse_xfail("# header\n\nstun-07   # answers unknown ufrags\n", known_ids={"STUN-07"}) == {
        "STUN-07": "answers unknown ufrags"}
    with pytest.raises(XfailError, match="line 1: STUN-07 has no comment"):
        parse_xfail("STUN-07\n")
    with pytest.raises(XfailError, match="line 2: NOPE-01 is not a check in the catalog"):
        parse_xfail("STUN-07 # x\nNOPE-01 # y\n", known_ids={"STUN-07"})
    with pytest.raises(XfailError, match="line 2: STUN-07 is listed twice"):
        parse_xfail("STUN-07 # x\nSTUN-07 # y\n")


def test_make_target_wants_exactly_one():
    with pytest.raises(TargetError, match="give exactly one target"):
        make_target()
    with pytest.raises(TargetError, match=r"\(got --whip, --reference\)"):
        make_target(whip="http://x/whip", reference=True)
    with pytest.raises(TargetError, match="is not 'module:function'"):
        make_target(signaling="nocolon")


def test_a_target_in_a_with_block_is_stopped_however_the_block_ends():
    calls = []

    class Recorded(FakeTarget):
        def start(self) -> None:
            calls.append("start")

        def stop(self) -> None:
            calls.append("stop")

    with pytest.raises(ZeroDivisionError), Recorded():
        1 / 0
    assert calls == ["start", "stop"]
