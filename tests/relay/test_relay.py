"""The relay and its workers as separate processes, as users run them, with probe peers.

Workers sit on other loopback addresses (127.0.0.2, 127.0.0.3), as they would on other hosts.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import urllib.request

import pytest

from tests.support.server_process import start_server
from toolkit.children import read_until_ready, start_child, stop_child
from toolkit.cli import main
from toolkit.peer import DtlsConnected, PeerConnection, ProbePeer, RtpReceived, connect_whip
from toolkit.peer.offer import PeerError
from toolkit.peer.shell.whip import whip_delete, whip_patch

READY = re.compile(r"listening udp=(?P<udp_host>[^\s:]+):(?P<udp_port>\d+) http=(?P<http>\S+)")


class Process:
    """A child we started; its output is kept in `lines` after the ready line is parsed."""

    def __init__(self, *args: str) -> None:
        self.process = start_child([sys.executable, "-m", "toolkit.cli", *args])
        self.lines: list[str] = []
        self.ready: re.Match | None = None

    def wait_ready(self, timeout: float = 30.0) -> re.Match:
        self.ready = read_until_ready(self.process, READY, timeout, self.lines)
        if self.ready is None:
            self.stop()
            raise AssertionError("no ready line:\n" + "".join(self.lines))
        return self.ready

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """`sig` first when it is not SIGTERM (SIGKILL: a crash), then the usual stop."""
        if sig != signal.SIGTERM and self.process.poll() is None:
            self.process.send_signal(sig)
        stop_child(self.process)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metric(url: str, name: str, **labels: str) -> float:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.split("{")[0] == name and all(f'{k}="{v}"' in sample for k, v in labels.items()):
            return float(value)
    return 0.0


async def echo(connection: PeerConnection, payload: bytes, timeout: float, interval: float = 0.1) -> list[bytes]:
    """Send `payload` every `interval` until it comes back; every RTP payload received meanwhile."""
    deadline = connection.loop.time() + timeout
    received: list[bytes] = []
    timestamp = 0
    while connection.loop.time() < deadline:
        timestamp += 960
        connection.send_rtp(payload, timestamp=timestamp)
        try:
            event = await asyncio.wait_for(connection.received.get(), interval)
        except TimeoutError:
            continue
        if isinstance(event, RtpReceived):
            received.append(event.packet[12:])
            if received[-1] == payload:
                break
    return received


def test_relay_killed_mid_call_restarts_and_the_call_resumes_on_the_same_dtls_session(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(os.urandom(32).hex())
    relay_port, relay_http = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    workers = [Process("worker", "--id", str(i), "--relay", f"127.0.0.1:{relay_port}",
                       "--public", f"127.0.0.1:{relay_port}", "--secret-file", str(secret_file),
                       "--bind", f"127.0.0.{i + 2}", "--media", "echo") for i in range(2)]
    processes = list(workers)
    try:
        endpoints = []
        for worker in workers:
            ready = worker.wait_ready()
            endpoints += ["--worker", f"{ready['udp_host']}:{ready['udp_port']}:{ready['http'].rsplit(':', 1)[1]}"]
        relay_args = ("relay", "--port", str(relay_port), "--http-port", str(relay_http),
                      "--secret-file", str(secret_file), *endpoints)
        relay = Process(*relay_args)
        processes.append(relay)
        relay.wait_ready()
        http = f"http://127.0.0.1:{relay_http}"

        async def call() -> None:
            connection = await connect_whip(f"{http}/whip", peer=ProbePeer(consent_interval=0.5))
            try:
                assert connection.peer.remote == ("127.0.0.1", relay_port)  # the answer named the public port
                worker_id = connection.location.rsplit("/", 1)[1].split("-")[0]
                worker_http = workers[int(worker_id)].ready["http"]
                keys = connection.peer.srtp_keys
                assert set(await echo(connection, b"before", timeout=5)) == {b"before"}

                relay.stop(signal.SIGKILL)
                assert await echo(connection, b"relay down", timeout=0.3) == []
                processes.append(restarted := Process(*relay_args))
                await asyncio.get_running_loop().run_in_executor(None, restarted.wait_ready)
                # Until the next consent check rebuilds the route, media is dropped; then it flows.
                assert set(await echo(connection, b"after", timeout=10)) == {b"after"}

                assert connection.peer.state == "connected" and connection.peer.srtp_keys is keys
                assert not any(isinstance(event, DtlsConnected) for event in drain(connection))
                worker_metrics = f"{worker_http}/metrics"
                assert metric(worker_metrics, "rtcgate_sessions_created_total") == 1
                assert metric(worker_metrics, "rtcgate_setup_phase_seconds_count", phase="selected_to_dtls") == 1
                assert metric(f"{http}/metrics", "rtcgate_relay_routes_learned_total") == 1
                assert metric(f"{http}/metrics", "rtcgate_sessions", worker=worker_id) == 1
            finally:
                await connection.close()  # WHIP DELETE through the restarted relay
            assert metric(f"{worker_http}/metrics", "rtcgate_sessions") == 0

        asyncio.run(call())
    finally:
        for process in processes:
            process.stop()


def drain(connection: PeerConnection) -> list[object]:
    found = []
    while not connection.received.empty():
        found.append(connection.received.get_nowait())
    return found


def test_serve_with_two_workers_spreads_sessions_and_each_gets_only_its_own_echo():
    server = start_server("--workers", "2")
    worker_pids = [int(pid) for pid in re.search(r"PIDs ([\d ]+)\)", server.output[-1])[1].split()]
    assert len(worker_pids) == 2

    async def calls() -> None:
        connections = [await connect_whip(server.whip_url) for _ in range(4)]
        try:
            owners = sorted(c.location.rsplit("/", 1)[1].split("-")[0] for c in connections)
            assert owners == ["0", "0", "1", "1"]
            for index, connection in enumerate(connections):
                assert connection.peer.remote == ("127.0.0.1", server.udp_port)
                assert set(await echo(connection, b"peer %d" % index, timeout=5)) == {b"peer %d" % index}
            await asyncio.sleep(0.2)  # any stray echo would have arrived by now
            for connection in connections:
                assert not any(isinstance(event, RtpReceived) for event in drain(connection))
            for worker in ("0", "1"):
                assert metric(server.metrics_url, "rtcgate_sessions", worker=worker) == 2
            # PATCH and DELETE reach the worker named in the Location; its new ufrag routes there too.
            first = connections[0]
            worker_id = int(first.location.rsplit("/", 1)[1].split("-")[0])
            status, fragment = await whip_patch(first.location, "a=ice-ufrag:restart1\r\n"
                                                                "a=ice-pwd:restartpasswordof24chars\r\n")
            ufrag = re.search(r"a=ice-ufrag:(\S+)", fragment)[1]
            assert status == 200 and ufrag.startswith(f"{worker_id:02x}")
            assert await whip_delete(connections[1].location) == 200
            assert metric(server.metrics_url, "rtcgate_sessions_closed_total", reason="signaling") == 1
            for resource in ("9-abc", "garbage"):
                with pytest.raises(PeerError) as error:
                    await whip_delete(f"{server.whip_url}/{resource}")
                assert error.value.status == 404
        finally:
            for connection in connections:
                await connection.close()

    try:
        asyncio.run(calls())
    finally:
        assert server.stop() == 0
    for pid in worker_pids:
        assert not os.path.exists(f"/proc/{pid}")  # the relay stopped its workers and reaped them


@pytest.mark.parametrize("args, message", [
    (["relay", "--worker", "127.0.0.1:5000", "--secret-file", "{secret}"], "is not HOST:UDPPORT:HTTPPORT"),
    (["relay", "--worker", "127.0.0.1:5000:5001", "--worker", "127.0.0.1:5000:5002", "--secret-file", "{secret}"],
     "two --worker options name the same UDP address"),
    (["relay", "--worker", "127.0.0.1:5000:5001", "--secret-file", "{short}"],
     "holds 64 bits of secret; the routing secret needs at least 128"),
    (["worker", "--id", "256", "--relay", "127.0.0.1:1", "--public", "127.0.0.1:1", "--secret-file", "{secret}"],
     "argument --id: 256 is outside 0..255"),
    (["worker", "--id", "0", "--relay", "localhost:1", "--public", "127.0.0.1:1", "--secret-file", "{secret}"],
     "'localhost:1' is not HOST:PORT"),
    (["serve", "--workers", "-1"], "argument --workers: -1 is outside 0..256"),
])
def test_bad_arguments_exit_2_with_a_message(args, message, tmp_path, capsys):
    (tmp_path / "secret").write_text("ab" * 32)
    (tmp_path / "short").write_text("ab" * 8)
    args = [arg.format(secret=tmp_path / "secret", short=tmp_path / "short") for arg in args]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
