"""The CLI's terminal output: rich progress only on a terminal, plain parseable lines elsewhere."""
from __future__ import annotations

import io
import re
from pathlib import Path

from toolkit import console as terminal
from toolkit.commands.check import Progress, print_summary
from toolkit.commands.interop import MatrixProgress
from toolkit.commands.interop import print_summary as print_matrix
from toolkit.commands.load import LoadDisplay
from toolkit.commands.load import print_summary as print_load
from toolkit.conformance.model import Check, CheckResult, Status
from toolkit.conformance.runner import RunResult
from toolkit.conformance.steps import Wait
from toolkit.interop.judge import CELLS, FAIL, PASS, Cell
from toolkit.interop.matrix import ClientResult, MatrixResult
from toolkit.load.run import Progress as LoadProgress

ESCAPE = re.compile(r"\x1b|\r")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def check_result(check_id: str, status: Status, message: str = "") -> CheckResult:
    check = Check(check_id, "security", "RFC 8489", f"title of {check_id}", (Wait(0),))
    return CheckResult(check=check, status=status, message=message, duration=0.25, seed=1,
                       replay=f"rtcgate check --only {check_id}")


def test_a_log_gets_plain_lines_whatever_its_environment_says(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    log = io.StringIO()
    console = terminal.console_for(log)
    assert not terminal.is_live(console)
    progress = Progress(console)
    first, second = check_result("STUN-01", Status.PASS), check_result("STUN-07", Status.FAIL, "[MUST] said no " * 20)
    progress(1, 2, first.check, None)
    progress(1, 2, first.check, first)
    progress(2, 2, second.check, second)
    progress.close()
    lines = log.getvalue().splitlines()
    assert lines[0] == "[1/2] STUN-01     PASS    0.25s"
    assert lines[1].startswith("[2/2] STUN-07     FAIL    0.25s  [MUST] said no")  # markup off, not wrapped
    assert len(lines) == 2 and not ESCAPE.search(log.getvalue())


def test_a_terminal_gets_a_progress_bar_and_colour():
    screen = Terminal()
    console = terminal.console_for(screen)
    assert terminal.is_live(console)
    progress = Progress(console)
    result = check_result("STUN-01", Status.PASS)
    progress(1, 1, result.check, None)
    progress(1, 1, result.check, result)
    progress.close()
    shown = screen.getvalue()
    assert "\x1b[" in shown and "STUN-01" in shown and "PASS" in shown


def test_check_summary_is_a_table_and_lines_a_test_can_read():
    results = [check_result("STUN-01", Status.PASS), check_result("STUN-07", Status.FAIL, "expected silence")]
    run = RunResult("reference server", 7, "2025-01-01T00:00:00+00:00", 1.5, results)
    out = io.StringIO()
    print_summary(run, {kind: Path("reports") / name for kind, name in
                        (("html", "rtcgate.html"), ("junit", "j.xml"), ("json", "r.json"), ("sarif", "r.sarif"))},
                  terminal.console_for(out))
    text = out.getvalue()
    assert not ESCAPE.search(text)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.split()}
    assert rows["family"] == [status.value for status in Status]
    assert rows["total"] == ["1", "1"] + ["0"] * (len(Status) - 2)
    assert "FAIL STUN-07 [MUST]: expected silence" in text
    assert "seed 7 — FAILED (only MUST gates)" in text


def test_load_progress_in_a_log_is_one_line_per_phase():
    log = io.StringIO()
    display = LoadDisplay(3, terminal.console_for(log))
    progress = LoadProgress()
    display.watch(progress)
    for up in range(4):
        progress.sessions_up = up
        display.tick(progress)
    progress.phase, progress.window, progress.window_length = "measuring", "quiet", 2.0
    display.window("quiet", "start")
    progress.window_elapsed, progress.sent, progress.received = 2.0, 300, 299
    display.tick(progress)
    display.window("quiet", "end")
    display.close()
    assert log.getvalue().splitlines() == ["set up: 3 up, 0 failed",
                                           "[quiet  2.0/2 s] sessions 3 · sent 300 · echoed 299"]


def test_load_summary_keeps_its_verdict_lines():
    rtt = {"p50": 0.4, "p99": 1.5, "max": 2.0}
    result = {"setup": {"sessions": 2, "failed": 0, "phases_ms": {"total": {"p50": 20.0, "p99": 30.0}}},
              "scenarios": [{"name": "quiet", "media": {"sent": 100, "lost": 0, "reordered": 0, "rtt": rtt,
                                                        "jitter": {"p50": 0.1}},
                             "server": {"sessions_start": 2, "sessions_end": 2}}],
              "verdicts": [{"name": "quiet: no legit loss", "value": 0, "goal": "= 0", "ok": True}]}
    out = io.StringIO()
    print_load(result, terminal.console_for(out))
    lines = out.getvalue().splitlines()
    assert "PASS  quiet: no legit loss: 0 (goal = 0)" in lines
    assert lines[1].split() == ["window", "sent", "lost", "reord", "p50", "ms", "p99", "ms", "max", "ms", "jitter",
                                "sessions"]
    assert lines[3].split() == ["quiet", "100", "0", "0", "0.40", "1.50", "2.00", "0.10", "2→2"]


def test_interop_progress_and_summary():
    log = io.StringIO()
    progress = MatrixProgress(terminal.console_for(log))
    progress("[1/1] aiortc (1.16) against the reference server …")
    progress.close()
    assert log.getvalue() == "[1/1] aiortc (1.16) against the reference server …\n"
    client = ClientResult("aiortc", "aiortc", "aiortc", "1.16", "reference server")
    client.cells = {cell_id: Cell(PASS, "fine") for cell_id, _ in CELLS}
    client.cells["ice"] = Cell(FAIL, "never connected")
    result = MatrixResult([client], 0.0, 12.0, {}, None, "no dumpcap")
    out = io.StringIO()
    print_matrix(result, terminal.console_for(out))
    text = out.getvalue()
    assert not ESCAPE.search(text)
    assert text.splitlines()[2].split()[:4] == ["aiortc", "1.16", "FAIL", "PASS"]
    assert "aiortc, ICE connected: FAIL: never connected" in text
    assert "NOT all supported cells green; no packet capture (no dumpcap)" in text
