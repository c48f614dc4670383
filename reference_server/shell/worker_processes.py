"""`rtcgate serve --workers N`: the relay in this process, in front of N worker processes that it
starts, waits for, passes the output of, and stops.

The caller builds each worker's command line (`worker_command`), so this module does not name
the program a worker runs; a worker must print its ready line (`relay_worker.ready_line`) and
stop on SIGTERM. The routing secret reaches the workers in a file only this user can read,
removed once every worker has read it. On Linux a worker also gets SIGTERM when this process
dies without stopping it.
"""
from __future__ import annotations

import ctypes
import ipaddress
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .lifecycle import format_host
from .relay import RelayConfig, RelayServer, bind_public_socket
from .relay import run as run_relay
from .relay_http import WorkerEndpoint
from .relay_worker import parse_ready_line
from .server import ServerConfig

WORKER_START_TIMEOUT = 60.0
WORKER_STOP_TIMEOUT = 5.0

Address = tuple[str, int]


@dataclass(frozen=True)
class WorkerLaunch:
    """What one worker process is told (`rtcgate worker`'s options)."""
    worker_id: int
    bind: str  # its bind address: loopback when the relay listens on a wildcard address
    relay: Address  # the relay as the worker sees it
    public: Address  # the relay's public address and port, for the worker's SDP answers
    secret_file: Path


def run_with_workers(config: ServerConfig, count: int, worker_command: Callable[[WorkerLaunch], list[str]]) -> None:
    """Run the relay on `config`'s host and port in front of `count` workers until SIGINT or
    SIGTERM, then stop the workers. OSError: the port is taken, or a worker did not start."""
    host = ipaddress.ip_address(config.host)
    internal = str(ipaddress.ip_address("::1" if host.version == 6 else "127.0.0.1")) if host.is_unspecified else config.host
    public = config.advertise or config.host
    processes: list[subprocess.Popen] = []
    secret_dir = tempfile.mkdtemp(prefix="rtcgate-relay-")
    try:
        sock = bind_public_socket(config.host, config.port)
        public_port = sock.getsockname()[1]
        secret_file = Path(secret_dir) / "routing-secret"
        secret = os.urandom(32)
        secret_file.write_text(secret.hex())  # mkdtemp made the directory 0700
        for worker_id in range(count):
            launch = WorkerLaunch(worker_id, internal, (internal, public_port), (public, public_port), secret_file)
            processes.append(subprocess.Popen(
                worker_command(launch), stdout=subprocess.PIPE, text=True,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None))
        ready = _wait_ready(processes)
        shutil.rmtree(secret_dir, ignore_errors=True)
        for process in processes:
            threading.Thread(target=_copy_output, args=(process,), daemon=True).start()
        workers = tuple(WorkerEndpoint(worker_id, udp, http) for worker_id, (udp, http) in enumerate(ready))

        def describe(server: RelayServer) -> str:
            url = server.http_url
            return (f"rtcgate reference server listening udp={format_host(config.host)}:{public_port} http={url} "
                    f"(WHIP {url}/whip, calls {url}/v1/realtime/calls, metrics {url}/metrics; "
                    f"advertising {public}:{public_port}; media {config.media}; relay in front of {count} "
                    f"worker{'s' * (count != 1)}, PIDs {' '.join(str(p.pid) for p in processes)})")

        run_relay(RelayConfig(workers, secret, host=config.host, port=public_port, http_port=config.http_port),
                  sock, describe)
    finally:
        shutil.rmtree(secret_dir, ignore_errors=True)
        _stop(processes)


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM it if this process dies without stopping it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_ready(processes: list[subprocess.Popen]) -> list[tuple[Address, str]]:
    """Each worker's (UDP address, HTTP URL) from its ready line, in order; its other lines are
    passed to stdout."""
    ready: dict[int, tuple[Address, str]] = {}
    pending = {process.stdout: index for index, process in enumerate(processes)}
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while pending:
        left = deadline - time.monotonic()
        readable = select.select(list(pending), [], [], max(left, 0))[0] if left > 0 else []
        if not readable:
            raise OSError(f"worker {min(pending.values())} did not report ready within {WORKER_START_TIMEOUT:g} s")
        for stream in readable:
            index = pending[stream]
            line = stream.readline()
            if not line:
                raise OSError(f"worker {index} exited with status {processes[index].wait()} before it was ready")
            parsed = parse_ready_line(line)
            if parsed is not None:
                _, udp, http = parsed
                ready[index] = (udp, http)
                del pending[stream]
            else:
                sys.stdout.write(line)
    return [ready[index] for index in range(len(processes))]


def _copy_output(process: subprocess.Popen) -> None:
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each worker we started, by PID; SIGKILL the ones that linger."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
