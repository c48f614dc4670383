"""`rtcgate serve` as a user runs it: the ready line, argument errors, stopping on signals."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.support.server_process import start_server


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_within_a_second(sig):
    server = start_server()
    assert server.udp_host == "127.0.0.1" and server.udp_port > 0
    started = time.monotonic()
    server.process.send_signal(sig)
    server.process.wait(5)
    assert time.monotonic() - started < 1.0
    assert server.process.returncode == 0


def test_advertise_address_goes_into_the_answer():
    server = start_server("--advertise", "127.0.0.2")
    try:
        assert "advertising 127.0.0.2:" in "".join(server.output)
    finally:
        server.stop()


def test_two_hosts_share_the_port_and_the_ready_line_names_both():
    from tests.reference_server.test_server import ipv6_loopback

    if not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    server = start_server("--host", "::1")
    try:
        assert server.udp_host == "127.0.0.1"
        assert f" udp6=[::1]:{server.udp_port} " in "".join(server.output)
    finally:
        server.stop()


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "outside 0..65535"),
    (["--advertise", "example.com"], "is not an IP address"),
    (["--consent-timeout", "-1"], "positive number"),
    (["--certificate", "x.pem"], "go together"),
    (["--host", "127.0.0.1", "--host", "127.0.0.2"], "at most one IPv4 and one IPv6 address"),
    (["--host", "127.0.0.1", "--host", "::1", "--workers", "2"], "give --host once"),
    (["--dtls-role", "client", "--workers", "2"], "--dtls-role client needs one process"),
    (["--dtls-role", "both"], "argument --dtls-role: invalid choice: 'both'"),
])
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = subprocess.run([sys.executable, "-m", "toolkit.cli", "serve", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr


def test_port_in_use_is_a_clear_error():
    server = start_server()
    try:
        result = subprocess.run([sys.executable, "-m", "toolkit.cli", "serve", "--port", str(server.udp_port),
                                 "--http-port", "0"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "rtcgate serve:" in result.stderr
    finally:
        server.stop()


def test_stun_error_rate_option_reaches_the_server_config(capsys):
    from toolkit.cli import build_parser
    from toolkit.commands.serve import config_from_args

    parser = build_parser()
    assert config_from_args(parser.parse_args(["serve"]), parser).stun_error_rate == 100.0
    assert config_from_args(parser.parse_args(["serve", "--stun-error-rate", "0"]), parser).stun_error_rate == 0.0
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--stun-error-rate", "-5"])
    assert "-5 is not a number ≥ 0" in capsys.readouterr().err


def test_dtls_role_option_reaches_the_server_config():
    from toolkit.cli import build_parser
    from toolkit.commands.serve import config_from_args

    parser = build_parser()
    assert config_from_args(parser.parse_args(["serve"]), parser).dtls_role == "server"
    assert config_from_args(parser.parse_args(["serve", "--dtls-role", "client"]), parser).dtls_role == "client"
