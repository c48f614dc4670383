"""A reference server that sits behind a relay: it speaks the relay protocol on its UDP socket.

Only the shell changes: forwarded datagrams are unwrapped before the core sees them (with the
real client address), and everything the core sends goes back to the relay wrapped, marked
BIND when the destination is a 5-tuple an authenticated check bound. The core is the usual
ServerCore, given this worker's id, the shared routing secret, and the relay's public address
and port for its SDP answers.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial

from ..core import ServerCore
from ..reasons import DropReason
from ..relay import protocol
from ..relay.protocol import Kind, RelayProtocolError
from . import lifecycle
from .lifecycle import format_host
from .server import ReferenceServer, ServerConfig, UdpShell

log = logging.getLogger("rtcgate.worker")

Address = tuple[str, int]

_READY = re.compile(r"rtcgate worker (?P<id>\d+) listening "
                    r"udp=(?:\[(?P<udp6>[0-9A-Fa-f:.]+)\]|(?P<udp4>[0-9.]+)):(?P<port>\d+) http=(?P<http>\S+)")


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: int
    relay: Address  # the relay's address as this worker sees it: forwards come from it, replies go to it
    public: Address  # the relay's public address and port, named in SDP answers
    routing_secret: bytes


class RelayTransport:
    """Stands in for the datagram transport under UdpShell: every send goes to the relay, wrapped."""

    def __init__(self, transport: asyncio.DatagramTransport, relay: Address, bound: Mapping[Address, object]) -> None:
        self._transport = transport
        self._relay = relay
        self._bound = bound

    def sendto(self, data: bytes, addr: Address) -> None:
        try:
            wrapped = protocol.encode(Kind.TO_CLIENT, addr, data, bind=addr in self._bound)
        except RelayProtocolError as exc:
            log.warning("cannot forward a datagram to %s: %s", addr, exc)
            return
        self._transport.sendto(wrapped, self._relay)

    def close(self) -> None:
        self._transport.close()


class WorkerUdpShell(UdpShell):
    def __init__(self, core: ServerCore, loop: asyncio.AbstractEventLoop, *, relay: Address) -> None:
        super().__init__(core, loop)
        self.relay = relay

    def connection_made(self, transport) -> None:
        self.transport = RelayTransport(transport, self.relay, self.core.sessions.by_address)

    def datagram_received(self, data: bytes, addr) -> None:
        if (addr[0], addr[1]) != self.relay:
            self.core.metrics.drops[DropReason.RELAY_FOREIGN_SOURCE] += 1
            return
        try:
            message = protocol.decode(data)
        except RelayProtocolError as exc:
            log.debug("dropped a datagram from the relay: %s", exc)
            self.core.metrics.drops[DropReason.RELAY_MALFORMED] += 1
            return
        if message.kind is not Kind.TO_WORKER:
            self.core.metrics.drops[DropReason.RELAY_WRONG_KIND] += 1
            return
        self.core.receive_datagram(message.payload, message.client, self.loop.time())
        self.flush()


class WorkerServer(ReferenceServer):
    """ReferenceServer whose core routes by this worker's id and whose shell talks to the relay."""

    def __init__(self, config: ServerConfig, worker: WorkerConfig) -> None:
        super().__init__(config)
        self.worker = worker
        make_core = self.core_class

        def core_class(core_config, certificate, **kwargs) -> ServerCore:
            core_config = replace(core_config, worker_id=worker.worker_id,
                                  advertise_address=worker.public[0], port=worker.public[1])
            return make_core(core_config, certificate, routing_secret=worker.routing_secret, **kwargs)

        self.core_class = core_class
        self.udp_shell_class = partial(WorkerUdpShell, relay=worker.relay)


def ready_line(server: WorkerServer) -> str:
    """`rtcgate worker ID listening udp=HOST:PORT http=URL (...)`: what the supervisor of
    `serve --workers` waits for (`parse_ready_line`) before it starts the relay."""
    worker = server.worker
    udp_host, udp_port = server.udp_address
    http_host, http_port = server.http_address
    return (f"rtcgate worker {worker.worker_id} listening udp={format_host(udp_host)}:{udp_port} "
            f"http=http://{format_host(http_host)}:{http_port} (relay {format_host(worker.relay[0])}:"
            f"{worker.relay[1]}, public {format_host(worker.public[0])}:{worker.public[1]}; "
            f"media {server.config.media})")


def parse_ready_line(line: str) -> tuple[int, Address, str] | None:
    """(worker id, UDP address, HTTP URL) from a worker's ready line; None for any other line."""
    match = _READY.search(line)
    if match is None:
        return None
    return int(match["id"]), (match["udp6"] or match["udp4"], int(match["port"])), match["http"]


async def serve_worker(config: ServerConfig, worker: WorkerConfig) -> None:
    """Run one worker until SIGINT/SIGTERM; prints a ready line with its own UDP and HTTP ports."""
    server = WorkerServer(config, worker)
    await lifecycle.serve_until_signalled(server, lambda: ready_line(server),
                                          f"rtcgate worker {worker.worker_id} stopped")


def run_worker(config: ServerConfig, worker: WorkerConfig) -> None:
    lifecycle.run(serve_worker(config, worker))
