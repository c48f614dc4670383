"""`rtcgate serve`: run the reference single-port server (with --workers N, a relay in front of N worker processes)."""
from __future__ import annotations

import argparse
import sys

from reference_server.credentials import MAX_WORKER_ID
from reference_server.voice.model import DEFAULT_MODEL
from toolkit.commands.arguments import (
    add_log_level_option,
    add_server_session_options,
    ip_address,
    port,
    server_session_arguments,
    server_session_settings,
    start_logging,
    whole_between,
)

EXIT_STATUS = {
    0: "stopped by SIGINT or SIGTERM",
    2: "bad arguments, or the server cannot start (its port is taken, a model or VAD is missing)",
}
DEFAULT_HOST = "127.0.0.1"


def register(commands) -> None:
    serve = commands.add_parser("serve", help="run the reference single-port WebRTC server",
                                description="Run the reference ICE-lite/DTLS-SRTP server on one UDP port, "
                                            "with WHIP signaling over HTTP.")
    serve.add_argument("--host", type=ip_address, action="append", metavar="HOST",
                       help=f"UDP (and HTTP) bind address (default: {DEFAULT_HOST}); give it twice, an IPv4 and an "
                            "IPv6 address, to listen on both with the same UDP port (HTTP stays on the first)")
    serve.add_argument("--port", type=port, default=3478,
                       help="the single UDP port, on every --host (0 = any free port)")
    serve.add_argument("--http-port", type=port, default=8080, help="HTTP port for WHIP and metrics (0 = any)")
    serve.add_argument("--advertise", type=ip_address, default=None,
                       help="address put in the SDP host candidate of the first --host (default: that host); use a "
                            "non-loopback address of this machine for Firefox, or the public address behind NAT")
    add_server_session_options(serve, DEFAULT_MODEL)
    serve.add_argument("--dtls-role", choices=["server", "client"], default="server",
                       help="server: answer a=setup:passive and wait for the client's ClientHello; "
                            "client: answer a=setup:active and connect as DTLS client once ICE selects a pair")
    add_log_level_option(serve)
    serve.add_argument("--workers", type=whole_between(0, MAX_WORKER_ID + 1), default=0, metavar="N",
                       help="N >= 1: a relay in this process owns the port (on one --host only) and N worker "
                            "processes hold the sessions (one per core); 0: one process does everything")
    serve.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The ServerConfig these `rtcgate serve` options describe (also used by tests/zoo/)."""
    from reference_server.shell.server import ServerConfig

    settings = server_session_settings(args, parser)
    host, *extra_hosts = args.host or [DEFAULT_HOST]
    try:
        return ServerConfig(host=host, extra_hosts=tuple(extra_hosts), port=args.port, http_port=args.http_port,
                            advertise=args.advertise, dtls_role=args.dtls_role, **settings)
    except ValueError as exc:
        parser.error(f"--host: {exc}")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser, server_factory=None) -> int:
    """`server_factory(config)` may supply the ReferenceServer to run (a faulty variant, in tests)."""
    from reference_server.shell.server import run as run_server
    from reference_server.shell.worker_processes import run_with_workers
    from reference_server.voice.model import ModelError
    from reference_server.voice.vad import VadError

    config = config_from_args(args, parser)
    if args.workers:
        if server_factory is not None:
            parser.error("--workers starts stock workers; it does not combine with a server variant")
        if config.extra_hosts:
            parser.error("--workers listens on one address: give --host once (the relay is single-address)")
        if config.dtls_role != "server":
            parser.error("--workers runs DTLS-server workers only: --dtls-role client needs one process")
    start_logging(args.log_level)
    try:
        if args.workers:
            run_with_workers(config, args.workers, lambda launch: worker_command(config, args.log_level, launch))
        else:
            run_server(config, server_factory(config) if server_factory else None)
    except (OSError, ModelError, VadError) as exc:
        print(f"rtcgate serve: {exc}", file=sys.stderr)
        return 2
    return 0


def worker_command(config, log_level: str, launch) -> list[str]:
    """The `rtcgate worker` command line for one worker of `serve --workers N`: `config` is the
    ServerConfig the serve options describe, `launch` the shell's WorkerLaunch."""
    from reference_server.shell.lifecycle import format_host

    command = [sys.executable, "-m", "toolkit.cli", "worker", "--id", str(launch.worker_id),
               "--relay", f"{format_host(launch.relay[0])}:{launch.relay[1]}",
               "--public", f"{format_host(launch.public[0])}:{launch.public[1]}",
               "--secret-file", str(launch.secret_file), "--bind", launch.bind, "--log-level", log_level]
    return command + server_session_arguments(config)
