"""The asyncio shell: one UDP socket, one timer, one HTTP server around the sans-IO core."""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aiohttp import web

from . import dc_echo
from .certificate import Certificate
from .core import CoreConfig, ServerCore
from .datachannel import DataChannelAssociation
from .events import DataChannelBytes, DtlsConnected, SessionClosed
from .http_api import make_app
from .voice.endpoint import VoiceEndpoint
from .voice.model import load_model
from .voice.service import VoiceService

log = logging.getLogger("rtcgate.server")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3478
    http_host: str | None = None  # defaults to host
    http_port: int = 8080
    advertise: str | None = None  # address put in the SDP candidate; defaults to host
    consent_timeout: float = 30.0
    connect_timeout: float = 30.0
    max_tuples_per_session: int = 4
    certificate: Path | None = None
    private_key: Path | None = None
    keylog: Path | None = None
    media: str = "voice"  # "voice": the realtime voice loop; "echo": each session's audio comes back
    model: str = "reference_server.voice.model:ToneModel"  # module:factory, for media "voice"
    vad: str = "webrtcvad"  # or "silero" (needs onnxruntime and the model file)


class UdpShell(asyncio.DatagramProtocol):
    """Feeds datagrams to the core, sends what it queues, keeps one timer at `get_timer()`.

    It also owns each session's data-channel association (SCTP needs asyncio, so it lives
    here, not in the core); `on_datachannel(session_id, association)` gives it its behaviour."""

    def __init__(self, core: ServerCore, loop: asyncio.AbstractEventLoop,
                 on_datachannel: Callable[[str, DataChannelAssociation], None] = dc_echo.attach) -> None:
        self.core = core
        self.loop = loop
        self.on_datachannel = on_datachannel
        self.associations: dict[str, DataChannelAssociation] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_soon: asyncio.Handle | None = None
        self.voice: VoiceService | None = None  # set in voice mode; routes the voice events

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.core.receive_datagram(data, (addr[0], addr[1]), self.loop.time())
        self.flush()

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)

    def flush(self) -> None:
        sendto = self.transport.sendto
        for data, addr in self.core.datagrams_to_send():
            try:
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

    # ---- data channels: SCTP packets between the core's DTLS and one association per session ----

    def _open_association(self, session_id: str) -> None:
        offer = self.core.datachannel_offer(session_id)
        if offer is None or session_id in self.associations:
            return
        association = DataChannelAssociation(lambda packet: self._send_sctp(session_id, packet),
                                              remote_port=offer.sctp_port,
                                              remote_max_message_size=offer.max_message_size)
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
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.bind((config.host, config.port))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        core_config = CoreConfig(
            advertise_address=config.advertise or config.host, port=port,
            consent_timeout=config.consent_timeout, connect_timeout=config.connect_timeout,
            max_tuples_per_session=config.max_tuples_per_session,
            wall_clock_offset=time.time() - loop.time(),
        )
        voice_factory = model = None
        if config.media == "voice":
            model = load_model(config.model)

            def voice_factory(session_id: str, now: float) -> VoiceEndpoint:
                return self.voice_endpoint_class(session_id, now, vad=config.vad,
                                                 wall_clock_offset=core_config.wall_clock_offset)

            voice_factory("probe", 0.0)  # fail at start-up, not at the first call, if the VAD cannot load
        self.core = self.core_class(core_config, certificate, keylog=keylog, voice_factory=voice_factory)
        _, self.udp = await loop.create_datagram_endpoint(lambda: self.udp_shell_class(self.core, loop), sock=sock)
        if model is not None:
            self.udp.voice = self.voice_service_class(self.core, model, loop.time, self.udp.flush)
            self.udp.on_datachannel = self.udp.voice.attach_datachannel
        self.udp_address = (config.host, port)
        app = make_app(self.core, loop.time, self.udp.flush)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.http_host or config.host, config.http_port, shutdown_timeout=0.5)
        await site.start()
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


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(config: ServerConfig, server: ReferenceServer | None = None) -> None:
    """Run until SIGINT/SIGTERM; prints the ready line tools and tests parse."""
    server = server or ReferenceServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the ready line: a signal right after it stops us cleanly
        loop.add_signal_handler(sig, stop.set)
    udp_host, udp_port = server.udp_address
    http_host, http_port = server.http_address
    http_url = f"http://{_format_host(http_host)}:{http_port}"
    print(f"rtcgate reference server listening udp={_format_host(udp_host)}:{udp_port} http={http_url} "
          f"(WHIP {http_url}/whip, calls {http_url}/v1/realtime/calls, metrics {http_url}/metrics; "
          f"advertising {server.core.config.advertise_address}:{udp_port}; media {config.media})", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
        print("rtcgate reference server stopped", flush=True)


def run(config: ServerConfig, server: ReferenceServer | None = None) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config, server))
    else:
        uvloop.run(serve(config, server))
