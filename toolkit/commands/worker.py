"""`rtcgate worker`: one reference-server worker behind an `rtcgate relay`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from reference_server.credentials import MAX_WORKER_ID
from reference_server.voice.model import DEFAULT_MODEL
from toolkit.commands.arguments import (add_routing_secret_option, host_port, ip_address, non_negative_number, port,
                                       positive_number, whole_between)

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
    worker.add_argument("--consent-timeout", type=positive_number, default=30.0, metavar="S",
                        help="free a session after S seconds without an ICE check")
    worker.add_argument("--connect-timeout", type=positive_number, default=30.0, metavar="S",
                        help="free a session not DTLS-connected S seconds after signaling")
    worker.add_argument("--stun-error-rate", type=non_negative_number, default=100.0, metavar="N",
                        help="400/401 answers to unauthenticated STUN requests per second, in bursts of up to N "
                             "(0 = never)")
    worker.add_argument("--certificate", type=Path, help="PEM certificate (ECDSA P-256); default: generate one")
    worker.add_argument("--private-key", type=Path, help="PEM private key for --certificate")
    worker.add_argument("--keylog", type=Path, help="append DTLS secrets here in SSLKEYLOGFILE format")
    worker.add_argument("--media", choices=["voice", "echo"], default="voice",
                        help="voice: the realtime voice loop answers; echo: audio comes straight back")
    worker.add_argument("--model", default=DEFAULT_MODEL, metavar="MODULE:FACTORY", help="the voice model")
    worker.add_argument("--vad", choices=["webrtcvad", "silero"], default="webrtcvad", help="voice activity detector")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="logging level")
    worker.set_defaults(handler=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from reference_server.shell.relay_worker import WorkerConfig, run_worker
    from reference_server.shell.server import ServerConfig
    from reference_server.voice.model import ModelError
    from reference_server.voice.vad import VadError

    if (args.certificate is None) != (args.private_key is None):
        parser.error("--certificate and --private-key go together")
    config = ServerConfig(host=args.bind, port=args.port, http_port=args.http_port,
                          consent_timeout=args.consent_timeout, connect_timeout=args.connect_timeout,
                          stun_error_rate=args.stun_error_rate, certificate=args.certificate, private_key=args.private_key, keylog=args.keylog,
                          media=args.media, model=args.model, vad=args.vad)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(config, WorkerConfig(args.worker_id, args.relay, args.public, args.secret))
    except (OSError, ModelError, VadError) as exc:
        print(f"rtcgate worker: {exc}", file=sys.stderr)
        return 2
    return 0
