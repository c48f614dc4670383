"""`rtcgate serve --workers N`: the command line each worker is started with must be one
`rtcgate worker` accepts with the serve options carried over, and the supervisor must read the
ready line a worker prints (tests/relay/test_relay.py runs the whole thing)."""
from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from reference_server.shell.relay_worker import WorkerConfig, parse_ready_line, ready_line
from reference_server.shell.worker_processes import WorkerLaunch
from toolkit.cli import build_parser
from toolkit.commands.serve import config_from_args, worker_command


@pytest.mark.parametrize("udp, http, relay", [
    (("127.0.0.1", 40001), ("127.0.0.1", 40002), ("127.0.0.1", 3478)),
    (("::1", 40001), ("::1", 40002), ("::1", 3478)),
])
def test_the_supervisor_reads_the_ready_line_a_worker_prints(udp, http, relay):
    worker = WorkerConfig(7, relay, ("2001:db8::1", 3478), b"s" * 32)
    server = SimpleNamespace(worker=worker, udp_address=udp, http_address=http, config=SimpleNamespace(media="echo"))
    line = ready_line(server)
    url = f"http://[{http[0]}]:{http[1]}" if ":" in http[0] else f"http://{http[0]}:{http[1]}"
    assert parse_ready_line(line + "\n") == (7, udp, url)


@pytest.mark.parametrize("line", ["", "rtcgate worker 1 stopped", "2024-01-01 INFO rtcgate.voice: loaded",
                                  "rtcgate worker 1 listening udp=example.com:5 http=http://x"])
def test_other_lines_are_not_ready_lines(line):
    assert parse_ready_line(line) is None


def test_each_worker_is_started_with_options_rtcgate_worker_accepts(tmp_path):
    secret = bytes(range(32))
    (tmp_path / "secret").write_text(secret.hex())
    (tmp_path / "cert.pem").write_text("")
    (tmp_path / "key.pem").write_text("")
    parser = build_parser()
    serve = parser.parse_args(["serve", "--host", "::", "--workers", "2", "--consent-timeout", "12.5",
                               "--connect-timeout", "7", "--stun-error-rate", "0", "--media", "echo",
                               "--vad", "silero", "--model", "my.models:Echo", "--certificate",
                               str(tmp_path / "cert.pem"), "--private-key", str(tmp_path / "key.pem"),
                               "--keylog", str(tmp_path / "keys.log")])
    config = config_from_args(serve, parser)
    launch = WorkerLaunch(1, "::1", ("::1", 3478), ("2001:db8::1", 3478), tmp_path / "secret")

    command = worker_command(config, "debug", launch)

    assert command[:4] == [sys.executable, "-m", "toolkit.cli", "worker"]
    worker = parser.parse_args(command[3:])
    assert (worker.worker_id, worker.bind, worker.relay, worker.public, worker.secret) == (
        1, "::1", ("::1", 3478), ("2001:db8::1", 3478), secret)
    assert (worker.consent_timeout, worker.connect_timeout, worker.stun_error_rate) == (12.5, 7.0, 0.0)
    assert (worker.media, worker.model, worker.vad, worker.log_level) == ("echo", "my.models:Echo", "silero", "debug")
    assert (worker.certificate, worker.private_key, worker.keylog) == (
        tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "keys.log")
