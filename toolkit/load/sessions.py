"""Legit load sessions: a probe-peer connection (real WHIP, ICE, DTLS) whose media then runs on
a lean SRTP path, timed per setup phase and accounted per packet.

Two kinds of media, for the two kinds of target:
- `probe` (echo targets): each RTP payload carries the session, a sequence number and its send
  time (accounting.encode_probe); the echo brings it back, so every packet gives an RTT and
  loss and reordering are exact.
- `speech` (voice targets, which answer speech with speech instead of echoing): the shipped
  speech sample as its Opus packets, then `turn_silence` seconds of silence, over and over. RTT comes
  from RTCP (our sender report, the server's receiver report: RFC 3550 §6.4.1, LSR/DLSR);
  loss of our stream from the server's own report, loss of the server's stream from the gaps
  in its sequence numbers; voice-to-voice latency per turn from the last loud packet we sent
  to the first packet of the next talkspurt the target sends (PERF-04).

STUN (consent), DTLS and anything the lean path cannot open go to the probe peer as before.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

import pylibsrtp

from toolkit.load.accounting import StreamStats, decode_probe, encode_probe
from toolkit.peer.audio import SAMPLE_RATE, SILENCE_PACKET, Speech
from toolkit.peer.core import ProbePeer
from toolkit.peer.offer import PeerError
from toolkit.peer.shell.udp import PeerConnection, connect_whip

MEDIA_KINDS = ("probe", "speech")
RTP_HEADER = struct.Struct("!BBHII")
SENDER_REPORT = struct.Struct("!BBHIIIIII")
"""V/P/RC, PT=200, length, SSRC, NTP seconds, NTP fraction, RTP timestamp, packets, octets."""
REPORT_BLOCK = struct.Struct("!IIIIII")
"""SSRC, fraction+cumulative lost, extended highest sequence, jitter, LSR, DLSR."""
SAMPLES_PER_PACKET = 960
NTP_UNIX_OFFSET = 2_208_988_800
FIRST_SRTP_TIMEOUT = 5.0
TALKSPURT_GAP_NS = 100_000_000
"""A packet from the target after this long without one starts a talkspurt (a response)."""


@dataclass(slots=True)
class SetupTimes:
    """Seconds per setup phase, as PERF-01 names them; `first_srtp` ends at the first SRTP
    packet from the target (the echo, or the first response audio)."""

    signaling: float
    first_stun: float
    ice: float
    dtls: float
    first_srtp: float

    @property
    def total(self) -> float:
        return self.signaling + self.first_stun + self.ice + self.dtls + self.first_srtp

    def as_dict(self) -> dict[str, float]:
        return {"signaling": self.signaling, "first_stun": self.first_stun, "ice": self.ice,
                "dtls": self.dtls, "first_srtp": self.first_srtp, "total": self.total}


@dataclass(slots=True)
class SpeechView:
    """What a speech session learns from RTCP, the server's stream and its talkspurts."""

    rtts_ns: list[int] = field(default_factory=list)
    sent: int = 0
    server_reported_lost: int = 0
    """Cumulative packets of ours the server says it lost (its latest receiver report)..."""
    reported_lost_base: int = 0
    """...and what it said when this window began."""
    voice_to_voice_ns: list[int] = field(default_factory=list)
    """Per turn: our last loud packet sent → first packet of the target's next talkspurt."""
    inbound_packets: int = 0
    inbound_gaps: int = 0
    """Packets of the server's stream missing between the ones that arrived."""
    _last_inbound_sequence: int | None = None

    def on_inbound_sequence(self, sequence: int) -> None:
        """A packet ahead of the highest seen opens a gap for each number skipped; a late one
        (behind it) fills one of those gaps: `inbound_gaps` ends as the packets never seen."""
        self.inbound_packets += 1
        last = self._last_inbound_sequence
        if last is None:
            self._last_inbound_sequence = sequence
            return
        step = (sequence - last) & 0xFFFF
        if 0 < step < 0x8000:
            self.inbound_gaps += step - 1
            self._last_inbound_sequence = sequence
        elif step and self.inbound_gaps:
            self.inbound_gaps -= 1


class LoadSession:
    """One legit session after setup; `send()` is called by the runner's 20 ms ticker."""

    def __init__(self, index: int, connection: PeerConnection, media: str, speech: Speech | None,
                 payload_bytes: int, loss_timeout_ns: int, turn_silence: float = 2.0,
                 turn_phase: float = 0.0) -> None:
        self.index = index
        self.connection = connection
        self.media = media
        self._loss_timeout_ns = loss_timeout_ns
        self.windows: list[tuple[int, StreamStats, SpeechView]] = []
        """(first probe number, its stats, its speech view) per measured window, oldest first."""
        self.setup: SetupTimes | None = None
        self.first_srtp = asyncio.get_running_loop().create_future()
        self.undecryptable = 0
        peer = connection.peer
        self._tx = peer.srtp_keys.outbound()
        self._rx = peer.srtp_keys.inbound()
        self.ssrc = peer.ssrc
        self.sequence = 0
        self._timestamp = 0
        self._seq = 0
        self._payload_bytes = payload_bytes
        if speech is not None:
            silence = round(turn_silence * SAMPLE_RATE / SAMPLES_PER_PACKET)
            self._speech = speech.packets + (SILENCE_PACKET,) * silence
            self._speech_last_loud = speech.end - 1
            self._speech_offset = int(turn_phase % 1.0 * len(self._speech))
        self._turn_end_ns: int | None = None
        self._last_inbound_ns = 0
        self._sendto = connection.transport.sendto
        self._remote = peer.remote
        self._octets = 0
        self._sr_sent: dict[int, int] = {}
        """NTP middle 32 bits of our sender reports → perf_counter_ns at sending."""
        self.begin_window()
        connection.media_handler = self._on_media

    @property
    def server_ufrag(self) -> str:
        return self.connection.peer.answer.ice_ufrag

    @property
    def client_ufrag(self) -> str:
        return self.connection.peer.local_ufrag

    @property
    def turn_seconds(self) -> float:
        """How long one utterance and its silence take (0 for probe media)."""
        return len(self._speech) * SAMPLES_PER_PACKET / SAMPLE_RATE if self.media == "speech" else 0.0

    @property
    def stats(self) -> StreamStats:
        return self.windows[-1][1]

    @property
    def speech_view(self) -> SpeechView:
        return self.windows[-1][2]

    def begin_window(self) -> tuple[StreamStats, SpeechView]:
        """Start accounting afresh (a scenario); echoes of earlier packets still land in the
        window they were sent in."""
        reported = self.windows[-1][2].server_reported_lost if self.windows else 0
        view = SpeechView(server_reported_lost=reported, reported_lost_base=reported)
        window = (self._seq + 1, StreamStats(loss_timeout_ns=self._loss_timeout_ns), view)
        self.windows.append(window)
        return window[1], window[2]

    def next_sequence(self) -> int:
        """The RTP sequence number our stream is at (attacks forge packets near it)."""
        return self.sequence

    def send_raw(self, datagram: bytes) -> None:
        """Send from this session's bound 5-tuple (attack traffic on bound tuples)."""
        self._sendto(datagram, self._remote)

    def send(self) -> None:
        self.sequence = sequence = (self.sequence + 1) & 0xFFFF
        self._timestamp = timestamp = (self._timestamp + SAMPLES_PER_PACKET) & 0xFFFFFFFF
        if self.media == "probe":
            self._seq = seq = self._seq + 1
            now = time.perf_counter_ns()
            payload = encode_probe(self.index, seq, now, self._payload_bytes)
            self.stats.on_sent(seq, now)
        else:
            self.speech_view.sent += 1
            index = (self._seq + self._speech_offset) % len(self._speech)
            payload = self._speech[index]
            self._seq += 1
            if index == self._speech_last_loud:
                self._turn_end_ns = time.perf_counter_ns()
        self._octets += len(payload)
        header = RTP_HEADER.pack(0x80, 111, sequence, timestamp, self.ssrc)
        self._sendto(self._tx.protect(header + payload), self._remote)

    def send_sender_report(self) -> None:
        """An RTCP SR; the server's next receiver report answers it with LSR/DLSR."""
        now_ns = time.perf_counter_ns()
        unix = time.time()
        ntp = int((unix + NTP_UNIX_OFFSET) * (1 << 32))
        middle = (ntp >> 16) & 0xFFFFFFFF
        self._sr_sent[middle] = now_ns
        if len(self._sr_sent) > 16:
            del self._sr_sent[next(iter(self._sr_sent))]
        report = SENDER_REPORT.pack(0x80, 200, 6, self.ssrc, ntp >> 32, ntp & 0xFFFFFFFF,
                                    self._timestamp, self._seq, self._octets)
        self._sendto(self._tx.protect_rtcp(report), self._remote)

    async def close(self) -> None:
        self.connection.media_handler = None
        try:
            await self.connection.close()
        except PeerError:
            pass  # the target already forgot the session: nothing left to end

    # -- receiving --------------------------------------------------------------------------

    def _on_media(self, data: bytes, addr: tuple) -> None:
        now = time.perf_counter_ns()
        if len(data) > 1 and 191 < data[1] < 224:
            try:
                self._on_rtcp(self._rx.unprotect_rtcp(data), now)
            except pylibsrtp.Error:
                self.undecryptable += 1
            return
        try:
            plain = self._rx.unprotect(data)
        except pylibsrtp.Error:
            self.undecryptable += 1
            return
        if not self.first_srtp.done():
            self.first_srtp.set_result(time.perf_counter())
        if now - self._last_inbound_ns > TALKSPURT_GAP_NS and self._turn_end_ns is not None:
            self.speech_view.voice_to_voice_ns.append(now - self._turn_end_ns)
            self._turn_end_ns = None
        self._last_inbound_ns = now
        self.speech_view.on_inbound_sequence((plain[2] << 8) | plain[3])
        if self.media == "probe":
            offset = 12 + 4 * (plain[0] & 0x0F)
            probe = decode_probe(plain[offset:])
            if probe is not None and probe.session == self.index:
                for first, stats, _ in reversed(self.windows):
                    if probe.seq >= first:
                        stats.on_received(probe.seq, probe.sent_ns, now)
                        break

    def _on_rtcp(self, packet: bytes, now_ns: int) -> None:
        """Walk a compound packet for report blocks about our SSRC (in SRs and RRs alike)."""
        offset = 0
        while offset + 8 <= len(packet):
            count, packet_type = packet[offset] & 0x1F, packet[offset + 1]
            length = (struct.unpack_from("!H", packet, offset + 2)[0] + 1) * 4
            blocks = offset + (28 if packet_type == 200 else 8 if packet_type == 201 else length)
            for index in range(count if packet_type in (200, 201) else 0):
                start = blocks + index * REPORT_BLOCK.size
                if start + REPORT_BLOCK.size > offset + length:
                    break
                ssrc, lost, _, _, lsr, dlsr = REPORT_BLOCK.unpack_from(packet, start)
                if ssrc != self.ssrc:
                    continue
                cumulative = lost & 0xFFFFFF
                self.speech_view.server_reported_lost = cumulative - (1 << 24) if cumulative & 0x800000 else cumulative
                sent_ns = self._sr_sent.pop(lsr, None)
                if sent_ns is not None:
                    self.speech_view.rtts_ns.append(now_ns - sent_ns - dlsr * 1_000_000_000 // 65536)
            offset += length


async def open_session(whip_url: str, index: int, *, media: str = "probe", speech: Speech | None = None,
                       payload_bytes: int = 160, local_host: str = "127.0.0.1", timeout: float = 10.0,
                       loss_timeout_ns: int = 1_000_000_000, consent_interval: float = 5.0,
                       remote: tuple[str, int] | None = None, turn_silence: float = 2.0,
                       turn_phase: float = 0.0, headers: dict[str, str] | None = None) -> LoadSession:
    """Offer, connect, then send media until the target's first SRTP packet arrives; the
    session's `setup` holds the phase times. `remote` overrides the answer's candidates;
    `turn_phase` (0..1) is where in its turn a speech session starts.
    PeerError when any step fails or times out."""
    if media not in MEDIA_KINDS:
        raise PeerError(f"unknown media {media!r}; known: {', '.join(MEDIA_KINDS)}")
    if media == "speech" and speech is None:
        raise PeerError("media 'speech' needs the speech to send (toolkit.peer.audio.speech_sample())")
    peer = ProbePeer(consent_interval=consent_interval)
    connection = await connect_whip(whip_url, peer=peer, local_host=local_host, remote=remote, headers=headers,
                                    timeout=timeout)
    session = LoadSession(index, connection, media, speech, payload_bytes, loss_timeout_ns, turn_silence,
                          turn_phase)
    loop = asyncio.get_running_loop()
    wait = FIRST_SRTP_TIMEOUT + session.turn_seconds  # a speech session may start in its silence
    deadline = loop.time() + wait
    try:
        while not session.first_srtp.done():
            if loop.time() > deadline:
                raise PeerError(f"no SRTP from the target within {wait:g} s of DTLS completing")
            session.send()
            await asyncio.wait([session.first_srtp], timeout=0.02)
    except BaseException:
        await session.close()
        raise
    times = connection.phase_times
    session.setup = SetupTimes(
        signaling=times["answer"] - times["offer_sent"],
        first_stun=times["first_stun"] - times["answer"],
        ice=times["ice_completed"] - times["first_stun"],
        dtls=times["dtls_connected"] - times["ice_completed"],
        first_srtp=session.first_srtp.result() - times["dtls_connected"],
    )
    return session
