"""Every check FAILs against a variant with the bug it looks for, and PASSes against the reference server.

Each variant runs once, as its own `python -m tests.zoo.serve NAME` process, with every check it
names; the reference server runs once per family (so a check that breaks it spoils only its own
family's results) with every check some variant names. The processes run a few at a time (most of
a check is waiting for silence or a timeout), all from one module-scoped fixture that plays only
what the selected tests need.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import pytest

from tests.zoo import variants
from tests.zoo.serve import main as serve_main
from toolkit.conformance.checks import BY_ID, CATALOG
from toolkit.conformance.model import TIMED_PROFILES, Check, CheckResult, Level, Settings, Status
from toolkit.conformance.runner import run_check
from toolkit.conformance.steps import Require
from toolkit.conformance.targets import ReferenceTarget, TargetError, ipv6_loopback

ZOO = variants()
PAIRS = [(entry.name, check_id) for entry in ZOO.values() for check_id in entry.checks]
REFERENCE_RUNS = sorted({(check_id, ZOO[name].host, ZOO[name].dtls_role, ZOO[name].reference)
                         for name, check_id in PAIRS})
"""(check, host, DTLS role, the correct variant standing in for the reference server, or "")."""
LANES = 4
"""Servers under test at once: a check mostly waits (silence windows, timeouts), so 4 fit on 2 cores.
Servers of checks in TIMED_PROFILES play alone: every lane shares the probe's event loop and
another lane's traffic would make the probe late."""
SEED = 1
pytestmark = pytest.mark.timeout(1500)
"""The module fixture plays every variant once (4–5 minutes on 2 cores, more on a busy machine);
pytest-timeout counts it against the first test that asks for it."""


@dataclass(frozen=True)
class Server:
    """One server process: a variant, or the reference server for one family of checks."""

    variant: str | None
    host: str
    family: str = ""
    dtls_role: str = "server"

    def target(self) -> ReferenceTarget:
        if self.variant is None:
            return ReferenceTarget(host=self.host, dtls_role=self.dtls_role)
        return ReferenceTarget(host=self.host, command=[sys.executable, "-m", "tests.zoo.serve", self.variant],
                               dtls_role=self.dtls_role)

    @property
    def name(self) -> str:
        return self.variant or f"the reference server ({self.family} checks, {self.host}, DTLS {self.dtls_role})"


@dataclass
class Outcome:
    result: CheckResult | None
    server_output: str
    internal_errors: int = 0
    """Datagrams the server's core raised on (it logs each): a variant must fail its check by its
    bug, not by crashing on the probe's traffic."""




INTERNAL_ERROR = "internal error handling"
"""What the core logs when handling a datagram raised (reference_server/core.py)."""


def server_for(params: dict) -> Server:
    name = params.get("name") or params.get("reference")
    if name:
        return Server(name, ZOO[name].host, dtls_role=ZOO[name].dtls_role)
    return Server(None, params["host"], BY_ID[params["check_id"]].family, params.get("dtls_role", "server"))


def judged_by_the_clock(checks: list[str]) -> bool:
    return any(BY_ID[check_id].profile in TIMED_PROFILES for check_id in checks)


async def play(plan: dict[Server, list[str]]) -> dict[tuple[Server, str], Outcome]:
    """Run each server's checks in order, LANES servers at a time, the longest plans first; then
    the servers with checks judged by the clock, one at a time."""
    outcomes: dict[tuple[Server, str], Outcome] = {}
    await play_lanes({s: c for s, c in plan.items() if not judged_by_the_clock(c)}, outcomes, LANES)
    await play_lanes({s: c for s, c in plan.items() if judged_by_the_clock(c)}, outcomes, 1)
    return outcomes


async def play_lanes(plan: dict[Server, list[str]], outcomes: dict[tuple[Server, str], Outcome], lanes: int) -> None:
    queue: asyncio.Queue[Server] = asyncio.Queue()
    for server in sorted(plan, key=lambda server: -len(plan[server])):
        queue.put_nowait(server)

    async def lane() -> None:
        while not queue.empty():
            server = queue.get_nowait()
            target = server.target()
            settings = Settings(seed=SEED, local_host=server.host, strict=Level.POLICY)  # hardened: POLICY bugs FAIL too
            try:
                await asyncio.to_thread(target.start)
            except TargetError as exc:
                for check_id in plan[server]:
                    outcomes[server, check_id] = Outcome(None, str(exc))
                continue
            try:
                for check_id in plan[server]:
                    outcomes[server, check_id] = Outcome(await run_check(target, BY_ID[check_id], settings), "")
            finally:
                await asyncio.to_thread(target.stop)
            tail = "".join(target.output[-15:])
            crashes = sum(INTERNAL_ERROR in line for line in target.output)
            for check_id in plan[server]:
                outcomes[server, check_id].server_output = tail
                outcomes[server, check_id].internal_errors = crashes

    await asyncio.gather(*(lane() for _ in range(lanes)))


@pytest.fixture(scope="module")
def zoo_outcomes(request) -> dict[tuple[Server, str], Outcome]:
    """Plays what the selected tests of this module need, once."""
    plan: dict[Server, list[str]] = {}
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is not request.module or "check_id" not in params:
            continue
        server = server_for(params)
        if server.host != "::1" or ipv6_loopback():
            plan.setdefault(server, []).append(params["check_id"])
    return asyncio.run(play(plan))


def outcome_of(outcomes: dict[tuple[Server, str], Outcome], params: dict) -> tuple[CheckResult, Outcome]:
    server = server_for(params)
    if server.host == "::1" and not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    outcome = outcomes[server, params["check_id"]]
    assert outcome.result is not None, f"{server.name} could not be started: {outcome.server_output}"
    return outcome.result, outcome


def explain(result: CheckResult, outcome: Outcome) -> str:
    notes = "\n  ".join(result.notes[-6:])
    return f"{result.status.value}: {result.message}\n  notes:\n  {notes}\n  server output:\n{outcome.server_output}"


@pytest.mark.parametrize(("name", "check_id"), PAIRS, ids=[f"{name}:{check_id}" for name, check_id in PAIRS])
def test_check_fails_against_its_variant(zoo_outcomes, name, check_id):
    result, outcome = outcome_of(zoo_outcomes, {"name": name, "check_id": check_id})
    detail = explain(result, outcome)
    assert result.status is Status.FAIL, f"{check_id} did not catch {name} ({ZOO[name].why}): {detail}"
    assert not result.message.startswith("the check itself raised"), detail
    assert not outcome.internal_errors, f"{name} raised inside its core {outcome.internal_errors} time(s): {detail}"


@pytest.mark.parametrize(("check_id", "host", "dtls_role", "reference"), REFERENCE_RUNS,
                         ids=[f"{check_id}@{host}" + ("" if role == "server" else f"-dtls-{role}")
                              + (f"-{reference}" if reference else "")
                              for check_id, host, role, reference in REFERENCE_RUNS])
def test_check_passes_against_the_reference_server(zoo_outcomes, check_id, host, dtls_role, reference):
    result, outcome = outcome_of(zoo_outcomes, {"host": host, "check_id": check_id, "dtls_role": dtls_role,
                                                "reference": reference})
    assert result.status is Status.PASS, explain(result, outcome)
    assert not outcome.internal_errors, f"the reference server raised inside its core: {explain(result, outcome)}"


def not_implemented_yet(check: Check) -> bool:
    return any(isinstance(step, Require) and step.label == "not implemented yet" for step in check.steps)


def test_every_implemented_check_has_a_variant():
    """Every check has a variant it must FAIL against; only checks that still SKIP as not implemented wait."""
    covered = {check_id for _, check_id in PAIRS}
    missing = [check.id for check in CATALOG if not not_implemented_yet(check) and check.id not in covered]
    assert not missing, f"no zoo variant makes these checks FAIL: {', '.join(missing)}"


def test_variants_name_known_checks_once():
    unknown = sorted({check_id for _, check_id in PAIRS} - set(BY_ID))
    assert not unknown, f"variants name checks the catalog does not have: {unknown}"
    standing_in = {entry.reference for entry in ZOO.values() if entry.reference}
    assert standing_in <= set(ZOO), f"unknown variants stand in for the reference server: {standing_in - set(ZOO)}"
    for entry in ZOO.values():
        assert len(set(entry.checks)) == len(entry.checks), f"{entry.name} names a check twice"


def test_serve_refuses_an_unknown_variant_and_lists_them(capsys):
    assert serve_main(["no-such-variant"]) == 2
    listing = capsys.readouterr().err
    assert "unknown variant 'no-such-variant'" in listing
    assert all(name in listing for name in ZOO)
