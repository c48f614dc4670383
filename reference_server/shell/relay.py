"""The relay process: the public UDP socket around the sans-IO RelayCore, and the HTTP proxy to the workers."""
from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ..relay.routing import MAX_ROUTES, RelayCore
from . import lifecycle
from .exposition import RelayCollector
from .http_api import start_http
from .lifecycle import format_host
from .relay_http import WorkerEndpoint, make_app

log = logging.getLogger("rtcgate.relay")

SOCKET_BUFFER = 4 << 20


@dataclass(frozen=True)
class RelayConfig:
    workers: tuple[WorkerEndpoint, ...]
    routing_secret: bytes
    host: str = "127.0.0.1"
    port: int = 3478
    http_host: str | None = None  # defaults to host
    http_port: int = 8080
    max_routes: int = MAX_ROUTES


def bind_public_socket(host: str, port: int) -> socket.socket:
    """The public UDP socket, bound before the relay starts (so workers can be told its port)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class RelayProtocol(asyncio.DatagramProtocol):
    """Every datagram goes through the core; what it returns leaves on the same socket."""

    def __init__(self, core: RelayCore, loop: asyncio.AbstractEventLoop) -> None:
        self.core = core
        self.clock = loop.time
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        out = self.core.receive_datagram(data, addr if len(addr) == 2 else addr[:2], self.clock())
        if out is not None:
            try:
                self.transport.sendto(out[0], out[1])
            except OSError as exc:
                log.debug("send to %s failed: %s", out[1], exc)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)


class RelayServer:
    def __init__(self, config: RelayConfig, sock: socket.socket | None = None) -> None:
        self.config = config
        self.core = RelayCore({worker.worker_id: worker.udp for worker in config.workers},
                              config.routing_secret, max_routes=config.max_routes)
        self._sock = sock
        self._transport: asyncio.DatagramTransport | None = None
        self._client: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.udp_address: tuple[str, int] | None = None
        self.http_address: tuple[str, int] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        sock = self._sock or bind_public_socket(config.host, config.port)
        self._transport, _ = await loop.create_datagram_endpoint(lambda: RelayProtocol(self.core, loop), sock=sock)
        self.udp_address = sock.getsockname()[:2]
        self._client = aiohttp.ClientSession()
        app = make_app(config.workers, RelayCollector(self.core.metrics, lambda: len(self.core.routes)), self._client)
        self._runner = await start_http(app, config.http_host or config.host, config.http_port)
        self.http_address = self._runner.addresses[0][:2]

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    @property
    def http_url(self) -> str:
        return f"http://{format_host(self.http_address[0])}:{self.http_address[1]}"


def describe_relay(server: RelayServer) -> str:
    workers = ", ".join(f"{worker.worker_id}={format_host(worker.udp[0])}:{worker.udp[1]}"
                        for worker in server.config.workers)
    host, port = server.udp_address
    return (f"rtcgate relay listening udp={format_host(host)}:{port} http={server.http_url} "
            f"(WHIP {server.http_url}/whip, metrics {server.http_url}/metrics; workers {workers})")


async def serve(config: RelayConfig, sock: socket.socket | None = None,
                describe: Callable[[RelayServer], str] = describe_relay) -> None:
    """Run until SIGINT/SIGTERM; prints `describe(server)`, the ready line tools parse."""
    server = RelayServer(config, sock)
    await lifecycle.serve_until_signalled(server, lambda: describe(server), "rtcgate relay stopped")


def run(config: RelayConfig, sock: socket.socket | None = None,
        describe: Callable[[RelayServer], str] = describe_relay) -> None:
    lifecycle.run(serve(config, sock, describe))
