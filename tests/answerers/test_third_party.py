"""The conformance gate against answerers nobody here wrote: aiortc (full ICE, one port per
session), werift in ICE-lite mode, each behind a small WHIP echo server in this folder, and
Janus EchoTest (test_janus.py, sharing the helpers here).

The gate must run its whole catalog against each to the end, SKIP what does not apply with a
reason, and back every FAIL and WARN with evidence (pcap, key log, replay command). What these stacks
get wrong is what the gate measures. A target with an expected-verdicts file
(expected/<target>.txt, see verdicts.py) must get exactly those verdicts, and the test lists
every difference; for the others the outcomes are recorded (printed, and as a JUnit
property), not asserted; reports/third-party-conformance.md says what they mean.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.answerers.verdicts import EXPECTED_DIR, VerdictFileError, differences, draft_verdicts, read_verdicts
from toolkit.children import read_until_ready, start_child, stop_child
from toolkit.conformance.checks import CATALOG

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
READY_LINE = re.compile(r"listening whip=(?P<url>\S+)")
START_TIMEOUT = 20.0
RUN_BUDGET = 150.0
"""A hang guard: the catalog takes 70–100 s against either answerer here (ICE-06 alone waits out
a 30 s consent), on a shared 2-core machine sometimes more."""
SEED = 1
EVIDENCE = ("pcap", "keylog", "replay")


def missing(what: str) -> None:
    """A missing answerer fails the run in CI (where it must be installed) and skips elsewhere."""
    message = f"{what}; run scripts/install-clients.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def aiortc_command(setup: str = "passive") -> list[str]:
    return [sys.executable, "-m", "tests.answerers.aiortc_whip", "--setup", setup]


def werift_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    if not (HERE / "node_modules" / "werift").is_dir():
        missing("werift is not installed in tests/answerers/node_modules")
    return [node, str(HERE / "werift_whip.mjs")]


ANSWERERS = {
    "aiortc": aiortc_command,
    "aiortc-default": lambda: aiortc_command("default"),  # aiortc's own a=setup:active
    "werift": werift_command,
}


@contextmanager
def answerer(command: list[str]) -> Iterator[str]:
    """Start an answerer (in the checkout, where `python -m tests...` finds it), yield its WHIP URL,
    then stop that process (by its PID)."""
    process = start_child(command, cwd=ROOT)
    output: list[str] = []
    try:
        ready = read_until_ready(process, READY_LINE, START_TIMEOUT, output)
        assert ready, f"{command[-1]} printed no ready line within {START_TIMEOUT:g} s:\n{''.join(output[-20:])}"
        yield ready["url"]
    finally:
        stop_child(process)


@pytest.mark.parametrize("name", ANSWERERS)
def test_the_whole_catalog_runs_against_a_third_party_answerer(name, tmp_path, record_property):
    command = ANSWERERS[name]()
    with answerer(command) as url:
        run_catalog(name, command, url, tmp_path, record_property)


def run_catalog(name: str, command: list[str], url: str, report_dir: Path, record_property,
                run_prefix: list[str] = ()) -> None:
    """Run the whole catalog against `url` (inside a namespace with `run_prefix`), check that it
    ran to the end with evidence for every FAIL, record the outcome, and hold the verdicts to
    expected/<name>.txt when the target has one."""
    started = time.monotonic()
    done = subprocess.run(
        [*run_prefix, sys.executable, "-m", "toolkit.cli", "check", "--whip", url, "--seed", str(SEED),
         "--report-dir", str(report_dir)],
        capture_output=True, text=True, timeout=RUN_BUDGET,
    )
    elapsed = time.monotonic() - started
    assert done.returncode in (0, 1), f"exit {done.returncode} (2 means the gate gave up):\n{done.stderr[-3000:]}"
    report = json.loads((report_dir / "rtcgate.json").read_text())
    results = report["results"]
    assert [result["id"] for result in results] == [check.id for check in CATALOG]
    assert {result["status"] for result in results} <= {"PASS", "FAIL", "WARN", "SKIP"}
    for result in results:
        if result["status"] == "SKIP":
            assert result["message"].strip(), f"{result['id']} skipped without a reason"
        if result["status"] in ("FAIL", "WARN"):
            assert result["message"].strip(), f"{result['id']} failed without saying why"
            missing_evidence = [kind for kind in EVIDENCE
                                if not (report_dir / result["artifacts"].get(kind, "-")).is_file()]
            assert not missing_evidence, f"{result['id']} failed without {', '.join(missing_evidence)}"
            replay = (report_dir / result["artifacts"]["replay"]).read_text()
            assert replay.startswith(f"rtcgate check --whip {url} --only {result['id']} --seed {SEED}\n")
    outcome = "\n".join(f"{result['status']:<4} {result['id']:<11} {result['message'][:150]}" for result in results)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(report["summary"].items()))
    record_property(f"{name}-conformance", f"{summary}; {elapsed:.0f} s\n{outcome}")
    print(f"\n{name} ({' '.join(command[1:])}): exit {done.returncode}, {summary}, {elapsed:.0f} s\n{outcome}")
    assert_expected_verdicts(name, report, report_dir)


def assert_expected_verdicts(name: str, report: dict, report_dir: Path) -> None:
    """Hold the run to expected/<name>.txt if the target has one; an empty file fails with a draft."""
    path = EXPECTED_DIR / f"{name}.txt"
    if not path.is_file():
        return
    try:
        expected = read_verdicts(path, known_checks=[check.id for check in CATALOG])
    except VerdictFileError as exc:
        pytest.fail(f"tests/answerers/expected/{exc}", pytrace=False)
    if not expected:
        draft = report_dir / f"{name}.draft.txt"
        draft.write_text(draft_verdicts(report, target=name))
        pytest.fail(f"tests/answerers/expected/{name}.txt has no verdicts yet. This run's are drafted in {draft} "
                    f"(or: python -m tests.answerers.verdicts draft {report_dir / 'rtcgate.json'} --target {name}); "
                    "copy it there and replace each drafted reason with why that verdict is right.")
    found = differences(expected, report["results"])
    if found:
        pytest.fail(f"{len(found)} verdicts differ from tests/answerers/expected/{name}.txt "
                    "(check: expected, got: message):\n" + "\n".join(map(str, found)), pytrace=False)
