"""The single-port server: one UDP socket per address family, one timer, one HTTP server around
the sans-IO core, which it drains after every input."""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ..certificate import Certificate
from ..core import CoreConfig, ServerCore
from ..events import DataChannelBytes, DtlsConnected, SessionClosed
from ..voice.endpoint import VoiceEndpoint
from ..voice.model import DEFAULT_MODEL, load_model
from . import datachannel_echo, lifecycle
from .datachannel import DataChannelAssociation
from .http_api import make_app, start_http
from .lifecycle import format_host
from .voice import VoiceService

log = logging.getLogger("rtcgate.server")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3478
    extra_hosts: tuple[str, ...] = ()  # more UDP addresses on the same port, one per other address family
    http_host: str | None = None  # defaults to host
    http_port: int = 8080
    advertise: str | None = None  # address put in the SDP candidate; defaults to host
    consent_timeout: float = 30.0
    connect_timeout: float = 30.0
    max_tuples_per_session: int = 4
    stun_error_rate: float = 100.0  # 400/401 answers to unauthenticated requests per second (CoreConfig)
    dtls_role: str = "server"  # "server": answer a=setup:passive; "client": answer active (CoreConfig)
    certificate: Path | None = None
    private_key: Path | None = None
    keylog: Path | None = None
    media: str = "voice"  # "voice": the realtime voice loop; "echo": each session's audio comes back
    model: str = DEFAULT_MODEL  # module:factory, for media "voice"
    vad: str = "webrtcvad"  # or "silero" (needs onnxruntime and the model file)

    def __post_init__(self) -> None:
        # Replies leave by the socket of the client's address family, so each family has one socket.
        by_family: dict[bool, str] = {}
        for host in self.udp_hosts:
            ipv6 = _is_ipv6(host)
            if ipv6 in by_family:
                raise ValueError(f"UDP host {host} is a second {'IPv6' if ipv6 else 'IPv4'} address (after "
                                 f"{by_family[ipv6]}); listen on at most one IPv4 and one IPv6 address")
            by_family[ipv6] = host

    @property
    def udp_hosts(self) -> tuple[str, ...]:
        return (self.host, *self.extra_hosts)


def _is_ipv6(host: str) -> bool:
    return ":" in host


class UdpShell(asyncio.DatagramProtocol):
    """Feeds datagrams to the core, sends what it queues, keeps one timer at `get_timer()`.

    A dual-stack server adds the socket of its other address family (`add_socket`): the core
    sees datagrams from both, and each reply leaves by the socket of its destination's family.

    It also owns each session's data-channel association (SCTP needs asyncio, so it lives
    here, not in the core); `on_datachannel(session_id, association)` gives it its behaviour."""

    def __init__(self, core: ServerCore, loop: asyncio.AbstractEventLoop,
                 on_datachannel: Callable[[str, DataChannelAssociation], None] = datachannel_echo.attach) -> None:
        self.core = core
        self.loop = loop
        self.on_datachannel = on_datachannel
        self.associations: dict[str, DataChannelAssociation] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.other_transport: asyncio.DatagramTransport | None = None  # the other address family's socket
        self._other_is_ipv6 = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_soon: asyncio.Handle | None = None
        self.voice: VoiceService | None = None  # set in voice mode; routes the voice events

    def connection_made(self, transport) -> None:
        self.transport = transport

    def add_socket(self, transport: asyncio.DatagramTransport, is_ipv6: bool) -> None:
        """The socket of the other address family: replies to its family's addresses leave by it."""
        self.other_transport = transport
        self._other_is_ipv6 = is_ipv6

    def datagram_received(self, data: bytes, addr) -> None:
        self.core.receive_datagram(data, (addr[0], addr[1]), self.loop.time())
        self.flush()

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)

    def flush(self) -> None:
        sendto = self.transport.sendto
        other_sendto = self.other_transport.sendto if self.other_transport is not None else None
        other_is_ipv6 = self._other_is_ipv6
        for data, addr in self.core.datagrams_to_send():
            try:
                if other_sendto is not None and (":" in addr[0]) == other_is_ipv6:
                    other_sendto(data, addr)
                else:
                    sendto(data, addr)
            except OSError as exc:
                log.debug("send to %s failed: %s", addr, exc)
        while (event := self.core.next_event()) is not None:
            if isinstance(event, DataChannelBytes):
                self._datachannel_bytes(event)
                continue
            if self.voice is not None and self.voice.handle(event):
                log.debug("%s", event)
                continue
            log.info("%s", event)
            if isinstance(event, DtlsConnected):
                self._open_association(event.session_id)
            elif isinstance(event, SessionClosed):
                self._close_association(event.session_id)
        at = self.core.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(at, self._on_timer) if at is not None else None
            self._timer_at = at

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.core.handle_timer(self.loop.time())
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._flush_soon is not None:
            self._flush_soon.cancel()
        if self.transport is not None:
            self.transport.close()
        if self.other_transport is not None:
            self.other_transport.close()

    # ---- data channels: SCTP packets between the core's DTLS and one association per session ----

    def _open_association(self, session_id: str) -> None:
        offer = self.core.datachannel_offer(session_id)
        if offer is None or session_id in self.associations:
            return
        association = DataChannelAssociation(lambda packet: self._send_sctp(session_id, packet),
                                              remote_port=offer.sctp_port,
                                              remote_max_message_size=offer.max_message_size,
                                              dtls_role=self.core.config.dtls_role)
        self.associations[session_id] = association
        self.on_datachannel(session_id, association)

    def _datachannel_bytes(self, event: DataChannelBytes) -> None:
        association = self.associations.get(event.session_id)
        if association is not None:
            association.receive(event.data)

    def _close_association(self, session_id: str) -> None:
        association = self.associations.pop(session_id, None)
        if association is not None:
            association.close()

    def _send_sctp(self, session_id: str, packet: bytes) -> bool:
        """Encrypt through the core now; send on the next loop turn, together with the rest of a burst."""
        sent = self.core.send_application_data(session_id, packet)
        if sent and self._flush_soon is None:
            self._flush_soon = self.loop.call_soon(self._flush_queued)
        return sent

    def _flush_queued(self) -> None:
        self._flush_soon = None
        self.flush()

    async def close_associations(self) -> None:
        """Server shutdown: abort every association (their ABORTs go out) and wait for them."""
        associations = list(self.associations.values())
        self.associations.clear()
        for association in associations:
            association.close()
        await asyncio.gather(*(association.wait_closed() for association in associations),
                             return_exceptions=True)
        self.flush()


class OtherFamilySocket(asyncio.DatagramProtocol):
    """The protocol of a dual-stack server's second socket: its datagrams go to the shell of the first."""

    def __init__(self, shell: UdpShell) -> None:
        self.shell = shell

    def datagram_received(self, data: bytes, addr) -> None:
        self.shell.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.shell.error_received(exc)


def bind_udp_sockets(hosts: tuple[str, ...], port: int) -> list[socket.socket]:
    """One non-blocking UDP socket per host, all on one port number: the first binds `port`
    (0: any free one), the others the port it got. OSError names the address that failed."""
    sockets: list[socket.socket] = []
    try:
        for host in hosts:
            sock = socket.socket(socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            if len(hosts) > 1 and sock.family == socket.AF_INET6:
                # A wildcard "::" would otherwise take the port for IPv4 too, from the IPv4 socket.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if len(sockets) == 1:
                    raise
                raise OSError(f"cannot listen on UDP {format_host(host)}:{port} as well as "
                              f"{format_host(hosts[0])}:{port}: {exc.strerror or exc}") from None
            sock.setblocking(False)
            port = sock.getsockname()[1]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class ReferenceServer:
    # The parts a test may swap for a faulty variant before start() (tests/zoo/); nothing else
    # in the server changes them.
    core_class: type[ServerCore] = ServerCore
    voice_endpoint_class: type[VoiceEndpoint] = VoiceEndpoint
    voice_service_class: type[VoiceService] = VoiceService
    udp_shell_class: type[UdpShell] = UdpShell  # relay workers swap in one that speaks the relay protocol

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.core: ServerCore | None = None
        self.udp: UdpShell | None = None
        self._runner: web.AppRunner | None = None
        self._keylog_file = None
        self.udp_address: tuple[str, int] | None = None
        self.udp_addresses: list[tuple[str, int]] = []  # udp_address first, then the extra hosts'
        self.http_address: tuple[str, int] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        if config.certificate is not None:
            certificate = Certificate.load(config.certificate.read_bytes(), config.private_key.read_bytes())
        else:
            certificate = Certificate.generate()
        keylog = None
        if config.keylog is not None:
            self._keylog_file = open(config.keylog, "ab", buffering=0)
            keylog = lambda line: self._keylog_file.write(line + b"\n")  # noqa: E731
        sockets = bind_udp_sockets(config.udp_hosts, config.port)
        port = sockets[0].getsockname()[1]
        core_config = CoreConfig(
            advertise_address=config.advertise or config.host, port=port, extra_addresses=config.extra_hosts,
            consent_timeout=config.consent_timeout, connect_timeout=config.connect_timeout,
            max_tuples_per_session=config.max_tuples_per_session, stun_error_rate=config.stun_error_rate,
            dtls_role=config.dtls_role, wall_clock_offset=time.time() - loop.time(),
        )
        voice_factory = model = None
        if config.media == "voice":
            model = load_model(config.model)

            def voice_factory(session_id: str, now: float) -> VoiceEndpoint:
                return self.voice_endpoint_class(session_id, now, vad=config.vad,
                                                 wall_clock_offset=core_config.wall_clock_offset)

            voice_factory("probe", 0.0)  # fail at start-up, not at the first call, if the VAD cannot load
        self.core = self.core_class(core_config, certificate, keylog=keylog, voice_factory=voice_factory)
        _, self.udp = await loop.create_datagram_endpoint(lambda: self.udp_shell_class(self.core, loop), sock=sockets[0])
        for sock in sockets[1:]:
            transport, _ = await loop.create_datagram_endpoint(lambda: OtherFamilySocket(self.udp), sock=sock)
            self.udp.add_socket(transport, sock.family == socket.AF_INET6)
        if model is not None:
            self.udp.voice = self.voice_service_class(self.core, model, loop.time, self.udp.flush)
            self.udp.on_datachannel = self.udp.voice.attach_datachannel
        self.udp_addresses = [(host, port) for host in config.udp_hosts]
        self.udp_address = self.udp_addresses[0]
        app = make_app(self.core, loop.time, self.udp.flush)
        self._runner = await start_http(app, config.http_host or config.host, config.http_port)
        self.http_address = self._runner.addresses[0][:2]

    async def stop(self) -> None:
        if self.udp is not None:
            if self.udp.voice is not None:
                await self.udp.voice.aclose()
            await self.udp.close_associations()
            self.udp.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._keylog_file is not None:
            self._keylog_file.close()


def ready_line(server: ReferenceServer) -> str:
    """`listening udp=HOST:PORT http=URL`, then `udp6=[HOST]:PORT` (or `udp4=`) for a second socket:
    the first address stays where parsers of single-socket servers look for it."""
    (udp_host, udp_port), *others = server.udp_addresses
    http_host, http_port = server.http_address
    http_url = f"http://{format_host(http_host)}:{http_port}"
    more = "".join(f" udp{6 if _is_ipv6(host) else 4}={format_host(host)}:{port}" for host, port in others)
    config = server.core.config
    advertised = " and ".join(f"{format_host(address)}:{udp_port}" for address in (config.advertise_address, *config.extra_addresses))
    return (f"rtcgate reference server listening udp={format_host(udp_host)}:{udp_port} http={http_url}{more} "
            f"(WHIP {http_url}/whip, calls {http_url}/v1/realtime/calls, metrics {http_url}/metrics; "
            f"advertising {advertised}; media {server.config.media})")


async def serve(config: ServerConfig, server: ReferenceServer | None = None) -> None:
    """Run until SIGINT/SIGTERM; prints the ready line tools and tests parse."""
    server = server or ReferenceServer(config)
    await lifecycle.serve_until_signalled(server, lambda: ready_line(server), "rtcgate reference server stopped")


def run(config: ServerConfig, server: ReferenceServer | None = None) -> None:
    lifecycle.run(serve(config, server))
