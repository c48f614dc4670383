"""aiortc, a WebRTC stack nobody on this team wrote, against the reference server over WHIP.

The server echoes each session's audio back to that session, so a client that hears
its own tone — and no one else's — proves ICE, DTLS-SRTP, RTP routing on the shared
port and the re-protection on the way back.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.interop.tones import TONES_HZ, ToneTrack, dominant_frequency, first_channel, level_at
from toolkit.peer import whip_delete, whip_post

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("loopback_aiortc")]

CONNECT_TIMEOUT = 15.0
RECEIVE_TIMEOUT = 20.0
WARMUP_FRAMES = 25  # 0.5 s for the jitter buffer and the decoder to settle
ANALYSIS_FRAMES = 50  # 1 s: 1 Hz FFT bins
FREQUENCY_TOLERANCE_HZ = 3
CROSSTALK_RATIO = 0.01  # another client's tone must stay 40 dB below one's own


@dataclass
class EchoSession:
    """What one WHIP session saw: states once connected, and the audio that came back."""

    frequency: int
    connection_state: str = "new"
    ice_state: str = "new"
    dtls_state: str = "new"
    delete_status: int | None = None
    frames: list[av.AudioFrame] = field(default_factory=list)

    def samples(self) -> np.ndarray:
        return np.concatenate([first_channel(f) for f in self.frames[WARMUP_FRAMES:]])


async def wait_connected(pc: RTCPeerConnection) -> None:
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed"):
            raise AssertionError(f"connection {pc.connectionState} (ICE {pc.iceConnectionState})")
        await asyncio.sleep(0.02)


async def echo_session(whip_url: str, frequency: int) -> EchoSession:
    """Publish a tone over WHIP, collect what the server sends back, then DELETE the session."""
    session = EchoSession(frequency)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTrack(ToneTrack(frequency))
    remote_track: asyncio.Future = asyncio.get_running_loop().create_future()
    pc.on("track", lambda track: remote_track.done() or remote_track.set_result(track))
    try:
        await pc.setLocalDescription(await pc.createOffer())
        answer, location = await whip_post(whip_url, pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        try:
            await asyncio.wait_for(wait_connected(pc), CONNECT_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"not connected after {CONNECT_TIMEOUT} s: connection "
                                 f"{pc.connectionState}, ICE {pc.iceConnectionState}, "
                                 f"DTLS {sender.transport.state}") from None
        session.connection_state = pc.connectionState
        session.ice_state = pc.iceConnectionState
        session.dtls_state = sender.transport.state
        track = await asyncio.wait_for(remote_track, CONNECT_TIMEOUT)
        wanted = WARMUP_FRAMES + ANALYSIS_FRAMES

        async def collect() -> None:
            while len(session.frames) < wanted:
                session.frames.append(await track.recv())

        try:
            await asyncio.wait_for(collect(), RECEIVE_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"{frequency} Hz client received {len(session.frames)} of "
                                 f"{wanted} audio frames in {RECEIVE_TIMEOUT} s") from None
        session.delete_status = await whip_delete(location)
    finally:
        await pc.close()
    return session


def assert_connected(session: EchoSession) -> None:
    assert session.connection_state == "connected"
    assert session.ice_state in ("connected", "completed")
    assert session.dtls_state == "connected"
    assert session.delete_status == 200


@pytest.mark.timeout(120)
def test_three_sessions_in_a_row_hear_their_own_tone(rtcgate_server):
    for frequency in TONES_HZ[:3]:
        session = asyncio.run(echo_session(rtcgate_server.whip_url, frequency))
        assert_connected(session)
        heard = dominant_frequency(session.samples())
        assert abs(heard - frequency) <= FREQUENCY_TOLERANCE_HZ, f"sent {frequency} Hz, heard {heard} Hz"


@pytest.mark.timeout(120)
def test_ten_clients_on_one_port_each_hear_only_their_own_tone(rtcgate_server):
    async def all_at_once() -> list[EchoSession]:
        return await asyncio.gather(*(echo_session(rtcgate_server.whip_url, f) for f in TONES_HZ))

    sessions = asyncio.run(all_at_once())
    for session in sessions:
        assert_connected(session)
        samples = session.samples()
        heard = dominant_frequency(samples)
        assert abs(heard - session.frequency) <= FREQUENCY_TOLERANCE_HZ, (
            f"sent {session.frequency} Hz, heard {heard} Hz")
        own = level_at(samples, session.frequency)
        for other in TONES_HZ:
            if other != session.frequency:
                ratio = level_at(samples, other) / own
                assert ratio < CROSSTALK_RATIO, (
                    f"{session.frequency} Hz client hears {other} Hz at {20 * np.log10(ratio):.1f} dB")
