"""The conformance gate against two answerers nobody here wrote: aiortc (full ICE, one port per
session) and werift in ICE-lite mode, each behind a small WHIP echo server in this folder.

The gate must run its whole catalog against each to the end, SKIP what does not apply with a
reason, and back every FAIL with evidence (pcap, key log, replay command). What these stacks
get wrong is what the gate measures, so their PASS/FAIL outcomes are recorded (printed, and
as a JUnit property), not asserted; reports/third-party-conformance.md says what they mean.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from toolkit.conformance.checks import CATALOG

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
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


def aiortc_command() -> list[str]:
    return [sys.executable, str(HERE / "aiortc_whip.py")]


def werift_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    if not (HERE / "node_modules" / "werift").is_dir():
        missing("werift is not installed in tests/answerers/node_modules")
    return [node, str(HERE / "werift_whip.mjs")]


def aiortc_active_command() -> list[str]:
    """aiortc with its own a=setup:active: it is the DTLS client, the probe the server."""
    return [*aiortc_command(), "--setup", "active"]


ANSWERERS = {"aiortc": aiortc_command, "aiortc-active": aiortc_active_command, "werift": werift_command}


@contextmanager
def answerer(command: list[str]) -> Iterator[str]:
    """Start an answerer, yield its WHIP URL, then stop that process (by its PID)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    output: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None and (left := deadline - time.monotonic()) > 0:
            if not select.select([process.stdout], [], [], left)[0]:
                break
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if match := READY_LINE.search(line):
                url = match["url"]
        assert url, f"{command[-1]} printed no ready line within {START_TIMEOUT:g} s:\n{''.join(output[-20:])}"
        threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.parametrize("name", ANSWERERS)
def test_the_whole_catalog_runs_against_a_third_party_answerer(name, tmp_path, record_property):
    command = ANSWERERS[name]()
    with answerer(command) as url:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "toolkit.cli", "check", "--whip", url, "--seed", str(SEED),
             "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=RUN_BUDGET,
        )
        elapsed = time.monotonic() - started
    assert done.returncode in (0, 1), f"exit {done.returncode} (2 means the gate gave up):\n{done.stderr[-3000:]}"
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    results = report["results"]
    assert [result["id"] for result in results] == [check.id for check in CATALOG]
    assert {result["status"] for result in results} <= {"PASS", "FAIL", "SKIP"}
    for result in results:
        if result["status"] == "SKIP":
            assert result["message"].strip(), f"{result['id']} skipped without a reason"
        if result["status"] == "FAIL":
            assert result["message"].strip(), f"{result['id']} failed without saying why"
            missing_evidence = [kind for kind in EVIDENCE
                                if not (tmp_path / result["artifacts"].get(kind, "-")).is_file()]
            assert not missing_evidence, f"{result['id']} failed without {', '.join(missing_evidence)}"
            replay = (tmp_path / result["artifacts"]["replay"]).read_text()
            assert replay.startswith(f"rtcgate check --whip {url} --only {result['id']} --seed {SEED}\n")
    outcome = "\n".join(f"{result['status']:<4} {result['id']:<11} {result['message'][:150]}" for result in results)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(report["summary"].items()))
    record_property(f"{name}-conformance", f"{summary}; {elapsed:.0f} s\n{outcome}")
    print(f"\n{name} ({' '.join(command[1:])}): exit {done.returncode}, {summary}, {elapsed:.0f} s\n{outcome}")
