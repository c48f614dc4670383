from __future__ import annotations

import asyncio
import struct
import time
from types import SimpleNamespace

import pylibsrtp
import pytest

from tests.support.server_process import start_server
from toolkit.load.sessions import REPORT_BLOCK, LoadSession, SpeechView, open_session
from toolkit.peer.audio import FIRST_SENTENCE_PACKETS, speech_sample
from toolkit.peer.offer import PeerError
from toolkit.peer.srtp import SRTP_PROFILES, SrtpKeys

OUR_SSRC = 0x1234ABCD
OTHER_SSRC = 0x0BADF00D
SERVER_SSRC = 0x5EEDBEEF


@pytest.fixture(scope="module")
def echo_server():
    server = start_server(media="echo")
    yield server
    server.stop()


async def wait_until(condition, limit: float = 8.0, tick=None) -> None:
    """Poll `condition` every 20 ms (calling `tick` first, if given) until it holds or `limit` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "the condition never held"
        if tick is not None:
            tick()
        await asyncio.sleep(0.02)


# SpeechView


def test_inbound_sequence_counts_the_packets_never_seen() -> None:
    view = SpeechView()
    for sequence in (100, 101, 104, 105, 105):  # 102 and 103 skipped; a duplicate
        view.on_inbound_sequence(sequence)
    assert (view.inbound_packets, view.inbound_gaps) == (5, 2)
    view.on_inbound_sequence(103)  # late: it fills a gap, and does not move the highest sequence back
    view.on_inbound_sequence(106)
    assert (view.inbound_packets, view.inbound_gaps) == (7, 1)


def test_inbound_sequence_wraps_at_16_bits() -> None:
    view = SpeechView()
    for sequence in (0xFFFD, 0xFFFE, 0x0000, 0x0001, 0x0003):
        view.on_inbound_sequence(sequence)
    assert view.inbound_gaps == 2  # 0xFFFF and 0x0002
    view.on_inbound_sequence(0xFFFF)  # from before the wrap: late (a gap filled), not 65 532 packets lost
    view.on_inbound_sequence(0x0004)
    assert (view.inbound_packets, view.inbound_gaps) == (7, 1)


# RTCP report blocks


def fake_connection(sent: list[bytes]) -> SimpleNamespace:
    """What LoadSession uses of a PeerConnection, without a network: keys, SSRC, a sendto that records."""
    keys = SrtpKeys("SRTP_AES128_CM_SHA1_80", bytes(range(30)), bytes(range(30, 60)))
    peer = SimpleNamespace(srtp_keys=keys, ssrc=OUR_SSRC, remote=("127.0.0.1", 9), state="connected")
    transport = SimpleNamespace(sendto=lambda data, addr: sent.append(data))
    return SimpleNamespace(peer=peer, transport=transport, media_handler=None, loop=None)


def report_block(ssrc: int, cumulative_lost: int, lsr: int, dlsr: int) -> bytes:
    return REPORT_BLOCK.pack(ssrc, (12 << 24) | (cumulative_lost & 0xFFFFFF), 70_000, 30, lsr, dlsr)


def rtcp(packet_type: int, ssrc: int, blocks: list[bytes], sender_info: bytes = b"") -> bytes:
    body = struct.pack("!I", ssrc) + sender_info + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), packet_type, len(body) // 4) + body


def our_sender_report_lsr(datagram: bytes) -> int:
    """Decrypt the SR the session sent (with its own outbound key) and take the middle of its NTP time."""
    keys = SrtpKeys("SRTP_AES128_CM_SHA1_80", bytes(range(30)), bytes(range(30, 60)))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=keys.local, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                            srtp_profile=SRTP_PROFILES[keys.profile].libsrtp_id))
    plain = rx.unprotect_rtcp(datagram)
    assert plain[1] == 200 and struct.unpack_from("!I", plain, 4)[0] == OUR_SSRC
    seconds, fraction = struct.unpack_from("!II", plain, 8)
    return ((seconds & 0xFFFF) << 16) | (fraction >> 16)


def test_rtcp_report_block_for_our_ssrc_gives_rtt_from_lsr_and_dlsr_and_the_reported_loss() -> None:
    async def scenario() -> tuple[LoadSession, int, int, list[int]]:
        sent: list[bytes] = []
        session = LoadSession(0, fake_connection(sent), "speech", None, 160, 10**9)
        before = time.perf_counter_ns()
        session.send_sender_report()
        after = time.perf_counter_ns()
        lsr = our_sender_report_lsr(sent[-1])
        dlsr = 0x8000  # half a second, in 1/65536 s
        sender_info = struct.pack("!IIIII", 0xE000_0000, 0, 960, 10, 1600)
        compound = (
            rtcp(200, SERVER_SSRC, [report_block(OTHER_SSRC, 99, lsr, dlsr)], sender_info)  # about someone else
            + rtcp(202, SERVER_SSRC, [])  # an SDES-typed packet: skipped whole
            + rtcp(201, SERVER_SSRC, [report_block(OTHER_SSRC, 98, 0, 0), report_block(OUR_SSRC, 3, lsr, dlsr)])
        )
        arrival = after + 500_000_000 + 2_000_000  # DLSR plus 2 ms of network
        session._on_rtcp(compound, arrival)
        first = list(session.speech_view.rtts_ns)
        session._on_rtcp(compound, arrival + 10**9)  # the same LSR again: its SR was answered already
        return session, before, after, first

    session, before, after, first = asyncio.run(scenario())
    view = session.speech_view
    assert len(first) == 1 and view.rtts_ns == first
    assert 2_000_000 <= first[0] <= 2_000_000 + (after - before) + 8_000  # ±DLSR's 1/65536 s rounding
    assert view.server_reported_lost == 3


def test_rtcp_cumulative_loss_is_signed_and_unknown_lsr_gives_no_rtt() -> None:
    async def scenario() -> LoadSession:
        session = LoadSession(0, fake_connection([]), "speech", None, 160, 10**9)
        session._on_rtcp(rtcp(201, SERVER_SSRC, [report_block(OUR_SSRC, -2, 0x12345678, 10)]), time.perf_counter_ns())
        return session

    view = asyncio.run(scenario()).speech_view
    assert view.server_reported_lost == -2  # duplicates make it negative (RFC 3550 §6.4.1)
    assert view.rtts_ns == []


# against the reference server


def test_open_session_times_every_setup_phase_and_echoes_land_in_their_window(echo_server) -> None:
    async def scenario():
        session = await open_session(echo_server.whip_url, 7, payload_bytes=64)
        try:
            first, _ = session.begin_window()
            for _ in range(5):
                session.send()
            second, _ = session.begin_window()  # at once: the first window's echoes are still on the way
            for _ in range(3):
                session.send()
            await wait_until(lambda: first.received == 5 and second.received == 3)
            return session, first, second
        finally:
            await session.close()

    session, first, second = asyncio.run(scenario())
    setup = session.setup.as_dict()
    assert all(setup[phase] > 0 for phase in ("signaling", "first_stun", "ice", "dtls", "first_srtp")), setup
    assert setup["total"] == pytest.approx(sum(v for k, v in setup.items() if k != "total"))
    assert (first.sent, second.sent) == (5, 3)
    assert (first.unexpected, second.unexpected, first.duplicates, second.duplicates) == (0, 0, 0, 0)
    assert session.windows[0][1].received >= 1  # the setup's own probes: the echo that ended it
    assert session.undecryptable == 0


def test_open_session_refuses_unknown_media_and_speech_without_the_sample(echo_server) -> None:
    with pytest.raises(PeerError, match=r"^unknown media 'video'; known: probe, speech$"):
        asyncio.run(open_session(echo_server.whip_url, 0, media="video"))
    with pytest.raises(PeerError, match=r"^media 'speech' needs the speech to send"):
        asyncio.run(open_session(echo_server.whip_url, 0, media="speech"))


def test_speech_to_a_voice_server_gets_an_rtcp_rtt_and_a_voice_to_voice_sample() -> None:
    server = start_server(media="voice")
    speech = speech_sample().cut(FIRST_SENTENCE_PACKETS)

    async def scenario() -> LoadSession:
        session = await open_session(server.whip_url, 0, media="speech", speech=speech)
        reports = 0

        def tick() -> None:
            nonlocal reports
            session.send()
            reports += 1
            if reports % 25 == 0:  # an SR every half second; the server reports once a second
                session.send_sender_report()

        views = lambda: [view for _, _, view in session.windows]  # noqa: E731
        try:
            # The reference server reports every 5 s (RFC 3550's minimum), so the RTT takes that long.
            await wait_until(lambda: any(v.rtts_ns for v in views()) and any(v.voice_to_voice_ns for v in views()),
                             limit=12.0, tick=tick)
        finally:
            await session.close()
        return session

    try:
        session = asyncio.run(scenario())
    finally:
        server.stop()
    views = [view for _, _, view in session.windows]
    assert len(views) == 1  # nobody began a window: everything lands in the first
    view = views[0]
    assert view.sent >= speech.end  # the whole utterance went out before the answer came
    assert all(v2v > 0 for v2v in view.voice_to_voice_ns)
    # LSR/DLSR arithmetic in the right units: a loopback RTT, not seconds (the server's DLSR has
    # its clock's granularity, so the sign of a sub-millisecond RTT is not asserted).
    assert all(abs(rtt) < 1_000_000_000 for rtt in view.rtts_ns)
    assert view.inbound_packets > 0
    assert session.undecryptable == 0
