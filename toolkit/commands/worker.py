"""`rtcgate worker`: one reference-server worker behind an `rtcgate relay`."""
from __future__ import annotations

import argparse
import sys

from reference_server.credentials import MAX_WORKER_ID
from reference_server.voice.model import DEFAULT_MODEL
from toolkit.commands.arguments import (
    add_log_level_option,
    add_routing_secret_option,
    add_server_session_options,
    host_port,
    ip_address,
    port,
    server_session_settings,
    start_logging,
    whole_between,
)

EXIT_STATUS = {
    0: "stopped by SIGINT or SIGTERM",
    2: "bad arguments or secret file, or the worker cannot start (its port is taken, a model or VAD is missing)",
}


def register(commands) -> None:
    worker = commands.add_parser(
        "worker", help="run one reference-server worker behind `rtcgate relay`",
        description="Run the reference server as a worker: it receives its clients' datagrams from the relay "
                    "(the relay protocol over UDP) and sends its replies back through it; its SDP answers name "
                    "the relay's public address and port. Signaling reaches it through the relay's HTTP proxy.")
    worker.add_argument("--id", type=whole_between(0, MAX_WORKER_ID), required=True, dest="worker_id",
                        help=f"this worker's id, 0..{MAX_WORKER_ID}: the relay's i-th --worker is worker i")
    worker.add_argument("--relay", type=host_port, required=True, metavar="HOST:PORT",
                        help="the relay's UDP address as this worker sees it; only datagrams from it are accepted")
    worker.add_argument("--public", type=host_port, required=True, metavar="ADDR:PORT",
                        help="the relay's public address and port, put in SDP answers")
    add_routing_secret_option(worker)
    worker.add_argument("--bind", type=ip_address, default="127.0.0.1", help="bind address")
    worker.add_argument("--port", type=port, default=0, help="this worker's UDP port (0 = any free)")
    worker.add_argument("--http-port", type=port, default=0, help="this worker's HTTP port (0 = any free)")
    add_server_session_options(worker, DEFAULT_MODEL)
    add_log_level_option(worker)
    worker.set_defaults(handler=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reference_server.shell.relay_worker import WorkerConfig, run_worker
    from reference_server.shell.server import ServerConfig
    from reference_server.voice.model import ModelError
    from reference_server.voice.vad import VadError

    config = ServerConfig(host=args.bind, port=args.port, http_port=args.http_port,
                          **server_session_settings(args, parser))
    start_logging(args.log_level)
    try:
        run_worker(config, WorkerConfig(args.worker_id, args.relay, args.public, args.secret))
    except (OSError, ModelError, VadError) as exc:
        print(f"rtcgate worker: {exc}", file=sys.stderr)
        return 2
    return 0
