"""bench.common: what every benchmark shares. A child is stopped however the run ends, a child
that never gets ready is one clear error, and a benchmark's failure is one line and status 1."""
from __future__ import annotations

import json
import pathlib
import sys

import pytest

from bench import common
from bench.relay_scaling import ServerGroup

READY = "import time; print('listening udp=127.0.0.1:4321 http=http://127.0.0.1:8765', flush=True); time.sleep(60)"


def test_a_child_is_ready_on_its_line_and_stopped_when_the_block_ends():
    with common.Children() as children:
        child = children.start("ready child", [sys.executable, "-c", READY])
        assert (child.udp_port, child.http_url) == (4321, "http://127.0.0.1:8765")
        assert child.process.poll() is None
        assert children.cpu_seconds() >= 0
    assert child.process.poll() is not None, "the with block stops every child it started"


def test_a_child_that_exits_before_it_is_ready_is_a_bench_error_with_its_log():
    with common.Children() as children, pytest.raises(common.BenchError) as raised:
        children.start("quitter", [sys.executable, "-c", "print('no port for you'); raise SystemExit(3)"])
    assert "quitter exited with status 3 before it was ready" in str(raised.value)
    assert "no port for you" in str(raised.value)


def test_run_benchmark_makes_a_failure_one_line_and_a_status(capsys):
    def fails() -> int:
        raise common.BenchError("the reference server did not start")

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert common.run_benchmark("srtp_echo", fails) == 1
    assert capsys.readouterr().err == "srtp_echo: the reference server did not start\n"
    assert common.run_benchmark("srtp_echo", interrupted) == 130
    assert common.run_benchmark("srtp_echo", lambda: 0) == 0


def test_results_are_json_with_paths_as_text(tmp_path, capsys):
    path = tmp_path / "deeper" / "figures.json"
    common.write_results(path, {"settings": {"json": pathlib.Path("/x/y.json")}, "µs": 1.5})
    assert json.loads(path.read_text()) == {"settings": {"json": "/x/y.json"}, "µs": 1.5}
    assert capsys.readouterr().out == f"written to {path}\n"


def test_a_relay_group_stands_in_for_a_child_in_an_echo_run(tmp_path):
    """echo_client.drive names the server and shows its log tail when no echo came back."""
    log = tmp_path / "serve.log"
    log.write_text("rtcgate reference server listening udp=127.0.0.1:1\n")
    serve = common.Child("--workers 1", process=None, log=log, http_url="http://127.0.0.1:2")
    group = ServerGroup("--workers 1", serve, worker_pids=[])
    assert (group.name, group.http_url) == ("--workers 1", "http://127.0.0.1:2")
    assert "listening" in group.log_tail()
