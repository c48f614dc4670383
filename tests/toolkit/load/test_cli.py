"""`rtcgate load`: argument errors in-process, real runs against the reference server as the user runs them."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.support.server_process import start_server
from toolkit.cli import main


def rtcgate_load(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "load", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def no_uvloop(monkeypatch):
    """`rtcgate load` installs uvloop's policy for the process; keep this test process on asyncio's."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


@pytest.mark.parametrize(("args", "message"), [
    ((), "rtcgate load: give exactly one target: --whip URL or --reference\n"),
    (("--whip", "http://127.0.0.1:9/whip", "--reference"),
     "rtcgate load: give exactly one target: --whip URL or --reference\n"),
    (("--whip", "http://127.0.0.1:9/whip", "--attack", "garbage@1k", "--attack", "nope@5"),
     "rtcgate load: attack 'nope@5' has unknown kind 'nope'; known kinds: garbage, stun-unknown-ufrag, "
     "stun-bad-credentials, clienthello-unbound, srtp-bad-tag, mix\n"),
    (("--reference", "--attack", "garbage"), "rtcgate load: attack 'garbage' is not KIND@PPS"),
])
def test_wrong_targets_and_attacks_exit_2_saying_which(capsys, args, message):
    assert main(["load", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message)
    assert captured.out == ""


def test_out_of_range_numbers_are_argument_errors(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["load", "--reference", "--sessions", "0"])
    assert raised.value.code == 2
    assert "argument --sessions: 0 is not a positive whole number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["load", "--reference", "--duration", "soon"])
    assert "argument --duration: 'soon' is not a number" in capsys.readouterr().err


def test_an_unreachable_target_exits_2_and_writes_no_report(capsys, tmp_path, no_uvloop):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/whip"
    assert main(["load", "--whip", url, "--sessions", "2", "--quiet", "--report-dir", str(tmp_path)]) == 2
    assert f"rtcgate load: no session could be set up against {url}: session " in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_quiet_run_that_holds_exits_0_and_writes_json_and_html(tmp_path):
    done = rtcgate_load("--reference", "--sessions", "2", "--duration", "0.2", "--quiet", "--name", "smoke",
                        "--report-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["smoke.html", "smoke.json"]
    assert "PASS  quiet: no legit loss: 0 (goal = 0)" in done.stdout
    assert f"report: {tmp_path / 'smoke.html'} (JSON: {tmp_path / 'smoke.json'})" in done.stdout
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert result["command"].startswith("rtcgate load --reference --sessions 2")
    assert [scenario["name"] for scenario in result["scenarios"]] == ["quiet"]
    assert result["setup"]["failed"] == 0 and all(verdict["ok"] for verdict in result["verdicts"])
    assert (tmp_path / "smoke.html").read_text().startswith("<!DOCTYPE html>")


def test_a_verdict_that_does_not_hold_exits_1(tmp_path, capsys, no_uvloop):
    server = start_server(media="echo")
    try:
        # No attack can make the p99 RTT a billionth of the quiet one: that verdict fails for sure.
        code = main(["load", "--whip", server.whip_url, "--sessions", "2", "--duration", "0.2",
                     "--attack", "garbage@200", "--p99-goal", "1e-9", "--quiet", "--report-dir", str(tmp_path)])
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL  garbage@200: legit p99 RTT / quiet p99: " in out
    assert "PASS  quiet: no legit loss: 0 (goal = 0)" in out
    result = json.loads((tmp_path / "load.json").read_text())
    assert [scenario["name"] for scenario in result["scenarios"]] == ["quiet", "garbage@200"]
    assert result["scenarios"][1]["attack"]["sent"] > 0
