"""A WHIP answerer built on aiortc: a full ICE agent with one UDP port per session.

rtcgate did not write this stack; the conformance gate measures it. The answerer stays as
close to aiortc's defaults as an echo server can:

- `RTCConfiguration(iceServers=[])`; host candidates only, pinned to the listening address
  (aioice leaves 127.0.0.1 out when it lists host addresses, and everything here stays on
  loopback).
- `a=setup:passive` by default, the baseline the third-party tests pin; aiortc answers `active`
  unless its DTLS transport's role is set first. `--setup default` leaves aiortc's DTLS role
  alone (it answers `active`, and the probe plays the DTLS server); `--setup active` sets that
  role explicitly.
- Audio is echoed as RTP payload, packet by packet, through `pc.addTrack` of an echo track
  fed with pre-encoded frames (aiortc packs them without re-encoding). A decode/re-encode
  echo would lose the bytes the conformance checks look for in the echo; aiortc gives tracks
  decoded frames only, so the receiver is tapped for payloads before it decodes them.
- Data-channel messages are sent back on the channel they came on.
- No ICE restart or trickle: PATCH answers 405, as RFC 9725 §4.3.1 asks of such a server.

Run from the checkout: `python -m tests.answerers.aiortc_whip [--host 127.0.0.1] [--port 0]`; it prints
`aiortc-whip listening whip=http://HOST:PORT/whip` once it accepts offers.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import logging

import aioice.ice
import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.answerers.whip_resource import OfferRefused, WhipSessions, served, until_signalled

OPUS_CLOCK = fractions.Fraction(1, 48000)
ECHO_BACKLOG = 256
"""Payloads waiting for the sender; beyond this the oldest are dropped (the sender is not running)."""
SETUP_ROLES = {"passive": "server", "active": "client", "default": None}
"""The answer's a=setup → the DTLS role set before answering; None leaves aiortc's own choice."""


class EchoTrack(MediaStreamTrack):
    """An audio track whose frames are the RTP payloads the session received, unchanged."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.backlog: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue(ECHO_BACKLOG)

    def feed(self, payload: bytes, timestamp: int) -> None:
        if self.backlog.full():
            self.backlog.get_nowait()
        self.backlog.put_nowait((payload, timestamp))

    async def recv(self) -> av.Packet:
        payload, timestamp = await self.backlog.get()
        packet = av.Packet(payload)
        packet.pts = timestamp
        packet.time_base = OPUS_CLOCK
        return packet


def tap_receiver(receiver, echo: EchoTrack) -> None:
    """Copy every RTP payload the receiver gets into the echo track, then let aiortc handle it."""
    handle = receiver._handle_rtp_packet

    async def tapped(packet, arrival_time_ms: int) -> None:
        echo.feed(packet.payload, packet.timestamp)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = tapped


def echo_data_channel(channel) -> None:
    @channel.on("message")
    def on_message(message) -> None:
        if channel.readyState == "open":
            channel.send(message)


class Answerer(WhipSessions):
    """The WHIP resource: one RTCPeerConnection per POST, closed on DELETE or when it fails."""

    def __init__(self, setup: str) -> None:
        super().__init__()
        self.dtls_role = SETUP_ROLES[setup]

    async def answer(self, offer: str) -> tuple[str, RTCPeerConnection]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("datachannel", echo_data_channel)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "audio":
                    echo = EchoTrack()
                    pc.addTrack(echo)
                    tap_receiver(transceiver.receiver, echo)
            if self.dtls_role is not None:
                for transport in {t.receiver.transport for t in pc.getTransceivers()} | (
                        {pc.sctp.transport} if pc.sctp else set()):
                    transport._set_role(self.dtls_role)  # aiortc has no public knob for the answer's a=setup
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError, InvalidStateError...: all mean a bad offer
            await pc.close()
            raise OfferRefused(400, f"cannot answer this offer: {type(exc).__name__}: {exc}") from None
        return pc.localDescription.sdp, pc

    def started(self, resource: str, pc: RTCPeerConnection) -> None:
        """End the session when ICE fails (consent lost) or its DTLS transport closes (close_notify)."""

        @pc.on("connectionstatechange")
        async def on_connection_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.end(resource, pc)

        for transport in {t.receiver.transport for t in pc.getTransceivers()}:
            @transport.on("statechange")
            async def on_dtls_state(transport=transport) -> None:
                if transport.state in ("closed", "failed"):
                    await self.end(resource, pc)


async def serve(host: str, port: int, setup: str) -> None:
    answerer = Answerer(setup)
    async with served(answerer.app(), host, port) as bound_port:
        print(f"aiortc-whip listening whip=http://{host}:{bound_port}/whip", flush=True)
        await until_signalled()
        await answerer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="WHIP echo answerer on aiortc (full ICE, one port per session)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address and the only ICE host candidate")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (0: a free one)")
    parser.add_argument("--setup", choices=sorted(SETUP_ROLES), default="passive",
                        help="the answer's a=setup: passive (the default here), active (set explicitly), "
                             "or default (aiortc's own choice, which is active)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.host]
    asyncio.run(serve(args.host, args.port, args.setup))


if __name__ == "__main__":
    main()
