"""`rtcgate relay`: the public port in front of `rtcgate worker` processes."""
from __future__ import annotations

import argparse
import sys

from reference_server.credentials import MAX_WORKER_ID
from toolkit.commands.arguments import (
    add_log_level_option,
    add_routing_secret_option,
    address_and_ports,
    ip_address,
    port,
    start_logging,
    whole,
)

EXIT_STATUS = {
    0: "stopped by SIGINT or SIGTERM",
    2: "bad arguments or secret file, or the relay cannot start (its port is taken)",
}


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
    add_routing_secret_option(relay)
    relay.add_argument("--max-routes", type=whole, default=100_000, metavar="N",
                       help="client addresses remembered at most; the least recently used go first")
    add_log_level_option(relay)
    relay.set_defaults(handler=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reference_server.shell.lifecycle import format_host
    from reference_server.shell.relay import RelayConfig
    from reference_server.shell.relay import run as run_relay
    from reference_server.shell.relay_http import WorkerEndpoint

    if len(args.workers) > MAX_WORKER_ID + 1:
        parser.error(f"{len(args.workers)} workers; worker ids go up to {MAX_WORKER_ID}")
    workers = tuple(WorkerEndpoint(i, (host, udp), f"http://{format_host(host)}:{http}")
                    for i, (host, udp, http) in enumerate(args.workers))
    if len({worker.udp for worker in workers}) != len(workers):
        parser.error("two --worker options name the same UDP address")
    start_logging(args.log_level)
    try:
        run_relay(RelayConfig(workers, args.secret, host=args.host, port=args.port, http_port=args.http_port,
                              max_routes=args.max_routes))
    except OSError as exc:
        print(f"rtcgate relay: {exc}", file=sys.stderr)
        return 2
    return 0
