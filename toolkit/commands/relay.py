"""`rtcgate relay`: the public port in front of workers; also runs `rtcgate serve --workers N`."""
from __future__ import annotations

import argparse
import ctypes
import ipaddress
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from toolkit.commands.arguments import address_and_ports, ip_address, port, whole
from toolkit.commands.worker import MAX_WORKER_ID, add_secret_option, read_secret

EXIT_STATUS = {
    0: "stopped by SIGINT or SIGTERM",
    2: "bad arguments or secret file, or the relay cannot start (its port is taken)",
}

WORKER_START_TIMEOUT = 60.0
WORKER_STOP_TIMEOUT = 5.0
WORKER_READY = re.compile(r"rtcgate worker (?P<id>\d+) listening udp=(?P<udp>\S+) http=(?P<http>\S+)")


def worker_endpoint(text: str) -> tuple[str, int, int]:
    """`HOST:UDPPORT:HTTPPORT`, HOST an IP address (IPv6 in brackets)."""
    try:
        host, (udp, http) = address_and_ports(text, 2)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:UDPPORT:HTTPPORT (an IP address, IPv6 in "
                                         "brackets, and two ports 1..65535)") from None
    return host, udp, http


def register(commands) -> None:
    relay = commands.add_parser(
        "relay", help="own the public UDP port and route each client to its worker",
        description="Own the public UDP port and the public HTTP port in front of `rtcgate worker` processes "
                    "(on this host or others): new flows are routed by the worker id inside the server's ICE "
                    "ufrag, known flows by their 5-tuple; signaling is proxied to the workers.")
    relay.add_argument("--host", type=ip_address, default="127.0.0.1", help="UDP (and HTTP) bind address")
    relay.add_argument("--port", type=port, default=3478, help="the public UDP port (0 = any free port)")
    relay.add_argument("--http-port", type=port, default=8080, help="public HTTP port (0 = any)")
    relay.add_argument("--worker", type=worker_endpoint, action="append", required=True, dest="workers",
                       metavar="HOST:UDPPORT:HTTPPORT", help="a worker's UDP and HTTP addresses; repeat per worker, "
                                                              "the i-th is the worker started with --id i")
    add_secret_option(relay)
    relay.add_argument("--max-routes", type=whole, default=100_000, metavar="N",
                       help="client addresses remembered at most; the least recently used go first")
    relay.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                       help="logging level")
    relay.set_defaults(handler=run)


def _http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reference_server.relay.http_api import WorkerEndpoint
    from reference_server.relay.shell import RelayConfig, run as run_relay

    if len(args.workers) > MAX_WORKER_ID + 1:
        parser.error(f"{len(args.workers)} workers; worker ids go up to {MAX_WORKER_ID}")
    try:
        secret = read_secret(args.secret_file)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    workers = tuple(WorkerEndpoint(i, (host, udp), _http_url(host, http)) for i, (host, udp, http) in enumerate(args.workers))
    if len({worker.udp for worker in workers}) != len(workers):
        parser.error("two --worker options name the same UDP address")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_relay(RelayConfig(workers, secret, host=args.host, port=args.port, http_port=args.http_port,
                              max_routes=args.max_routes))
    except OSError as exc:
        print(f"rtcgate relay: {exc}", file=sys.stderr)
        return 2
    return 0


# -- rtcgate serve --workers N: the relay in this process, N workers as child processes ----------


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM it if this process dies without stopping it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_command(args: argparse.Namespace, worker_id: int, internal: str, public: str, port: int,
                    secret_file: Path) -> list[str]:
    bracket = (lambda host: f"[{host}]" if ":" in host else host)
    command = [sys.executable, "-m", "toolkit.cli", "worker", "--id", str(worker_id),
               "--relay", f"{bracket(internal)}:{port}", "--public", f"{bracket(public)}:{port}",
               "--secret-file", str(secret_file), "--bind", internal,
               "--consent-timeout", repr(args.consent_timeout), "--connect-timeout", repr(args.connect_timeout),
               "--stun-error-rate", repr(getattr(args, "stun_error_rate", 100.0)),
               "--media", args.media, "--model", args.model, "--vad", args.vad, "--log-level", args.log_level]
    for option, value in (("--certificate", args.certificate), ("--private-key", args.private_key),
                          ("--keylog", args.keylog)):
        if value is not None:
            command += [option, str(value)]
    return command


def _wait_ready(processes: list[subprocess.Popen]) -> list[tuple[str, str]]:
    """Each worker's (udp HOST:PORT, http URL) from its ready line, in order."""
    ready: dict[int, tuple[str, str]] = {}
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
            match = WORKER_READY.search(line)
            if match:
                ready[index] = (match["udp"], match["http"])
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


def run_with_workers(args: argparse.Namespace, config) -> int:
    """`rtcgate serve --workers N`: `config` is the ServerConfig the other serve options describe."""
    from reference_server.relay.http_api import WorkerEndpoint
    from reference_server.relay.shell import RelayConfig, bind_public_socket, run as run_relay
    from reference_server.server import _format_host

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
        for worker_id in range(args.workers):
            processes.append(subprocess.Popen(
                _worker_command(args, worker_id, internal, public, public_port, secret_file),
                stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None))
        ready = _wait_ready(processes)
        shutil.rmtree(secret_dir, ignore_errors=True)
        for process in processes:
            threading.Thread(target=_copy_output, args=(process,), daemon=True).start()
        workers = []
        for worker_id, (udp, http) in enumerate(ready):
            udp_host, (udp_port,) = address_and_ports(udp, 1)
            workers.append(WorkerEndpoint(worker_id, (udp_host, udp_port), http))

        def describe(server) -> str:
            url = server.http_url
            return (f"rtcgate reference server listening udp={_format_host(config.host)}:{public_port} http={url} "
                    f"(WHIP {url}/whip, calls {url}/v1/realtime/calls, metrics {url}/metrics; "
                    f"advertising {public}:{public_port}; media {config.media}; relay in front of {args.workers} "
                    f"worker{'s' * (args.workers != 1)}, PIDs {' '.join(str(p.pid) for p in processes)})")

        run_relay(RelayConfig(tuple(workers), secret, host=config.host, port=public_port, http_port=config.http_port),
                  sock, describe)
    except OSError as exc:
        print(f"rtcgate serve: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(secret_dir, ignore_errors=True)
        _stop(processes)
    return 0
