"""The reference server's data-channel input path in memory, for the sctp_dcep fuzz target.

What the server runs on one received SCTP packet (the plaintext of a DTLS record) is
`DataChannelAssociation.receive`: its pre-checks, then, on the association's task, aiortc's
SCTP decoding, the association state machine and DCEP (RFC 8832), with the data-channel
echo (`shell.datachannel_echo`) answering messages as the server does by default. Here that association runs on an event loop of its
own whose clock only moves when an input says so, so aiortc's retransmission timers fire
when the fuzzer asks, not with the wall clock.

Two associations to fuzz: a fresh one per input (it has sent its INIT and waits for the
peer's), and an established one with the channel "oai-events" that an aiortc client opened
with DCEP, kept for `lifetime` inputs; before each input what it sent is acknowledged, as
the client would have, so retransmissions do not pile up from input to input. aiortc's
verification tags and initial TSNs come from a seeded generator, so seeds that carry them
stay valid.

The world judges, after every step: nothing escapes `receive` or the association's task
or any callback the loop runs; every packet the association sends decodes (aiortc's own
parser, checksum included) and fits one DTLS record (`MAX_SCTP_PACKET`; the real server's
DTLS layer would refuse it); messages reach the server's handler as str or bytes; what
aiortc buffers for reassembly stays within its receive window (else the adapter aborts);
no SACK reaches aiortc with gap blocks spanning more TSNs than are in flight (aiortc walks
each one); and the loop goes idle.
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import random
import struct

from aiortc import rtcsctptransport
from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport

from reference_server.shell import datachannel_echo
from reference_server.shell.datachannel import LOCAL_SCTP_PORT, MAX_SCTP_PACKET, DataChannelAssociation

from .world import InvariantViolation, violation

REMOTE_MAX_MESSAGE_SIZE = 262144  # what browsers and aiortc offer
CHANNEL_LABEL = "oai-events"
MAX_IDLE_TURNS = 20_000
"""Loop turns one step may take before the association counts as never going idle."""
PPIDS = (50, 51, 53, 56, 57, 52, 54, 0)
"""DATA-chunk payload protocols a step picks from: DCEP, string, binary, empty string, empty
binary, the deprecated partial-message ones, and one nobody defined."""
TIME_STEPS = (0.2, 1.0, 3.0, 10.0, 60.0, 400.0)
"""Seconds a timer step moves the clock: below, at and past aiortc's RTOs, and past the
point where it gives up (10 retransmissions, RTO at most 60 s)."""
STATE_COOKIE = 0x0007
TSN_MODULO = 1 << 32
RECEIVE_WINDOW = 1024 * 1024
"""aiortc's advertised receive window; the adapter aborts an association that overruns it."""
_DATA_HEADER = struct.Struct("!BBHIHHI")


class _FakeClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose time() is `clock`, which only the world moves."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 1000.0

    def time(self) -> float:
        return self.clock


@contextlib.contextmanager
def _seeded_tags(rng: random.Random):
    """aiortc draws verification tags and initial TSNs from os.urandom at construction."""
    original = rtcsctptransport.random32
    rtcsctptransport.random32 = lambda: rng.getrandbits(32)
    try:
        yield
    finally:
        rtcsctptransport.random32 = original


class _ClientLink:
    """The DTLS side of the aiortc client used to open the established association."""

    def __init__(self, deliver) -> None:
        self.state = "connected"
        self._role = "client"
        self.receiver: RTCSctpTransport | None = None
        self.deliver = deliver

    def _register_data_receiver(self, receiver: RTCSctpTransport) -> None:
        self.receiver = receiver

    def _unregister_data_receiver(self, receiver: RTCSctpTransport) -> None:
        self.receiver = None

    async def _send_data(self, data: bytes) -> None:
        if self.deliver is not None:
            self.deliver(data)


def seal(packet: bytes) -> bytes:
    """The packet with its CRC32c (RFC 9260 Appendix B) computed, as aiortc checks it."""
    packet = packet.ljust(12, b"\0")
    body = packet[:8] + b"\0\0\0\0" + packet[12:]
    return body[:8] + struct.pack("<L", rtcsctptransport.crc32c(body)) + body[12:]


def packet_of(chunks: bytes, verification_tag: int) -> bytes:
    """Chunks behind the common header between the two ports 5000, checksummed."""
    return seal(struct.pack("!HHI", LOCAL_SCTP_PORT, LOCAL_SCTP_PORT, verification_tag) + b"\0\0\0\0" + chunks)


def data_chunk(tsn: int, stream_id: int, stream_seq: int, ppid: int, user_data: bytes, flags: int = 3) -> bytes:
    """One DATA chunk (RFC 9260 §3.3.1), padded; flags 3 = a whole message, ordered."""
    chunk = _DATA_HEADER.pack(0, flags, 16 + len(user_data), tsn, stream_id, stream_seq, ppid) + user_data
    return chunk + b"\0" * (-len(chunk) % 4)


def dcep_open(label: bytes, protocol: bytes = b"", channel_type: int = 0, reliability: int = 0) -> bytes:
    """DATA_CHANNEL_OPEN (RFC 8832 §5.1)."""
    return struct.pack("!BBHLHH", 3, channel_type, 0, reliability, len(label), len(protocol)) + label + protocol


class SctpWorld:
    """One association of the server's, driven step by step on a fake clock."""

    def __init__(self, *, lifetime: int) -> None:
        self.lifetime = lifetime
        self.rng = random.Random(5)
        self.loop: _FakeClockLoop | None = None
        self.established: DataChannelAssociation | None = None
        self.inputs = 0
        self.errors: list[BaseException | str] = []
        self.sent: list[bytes] = []
        self.cookie: bytes | None = None
        self.association: DataChannelAssociation | None = None
        self._to_client: list[bytes] | None = None  # while the client is joined
        self.client_packets: list[bytes] = []  # what the client sent while joined: real INIT, COOKIE ECHO, DCEP
        atexit.register(self.close)  # else the loop's tasks die noisily at interpreter exit

    # ---- lifecycle ------------------------------------------------------------------------------

    def reset(self) -> None:
        """A new loop and a new established association (about a millisecond)."""
        self.close()
        self.loop = _FakeClockLoop()
        self.loop.set_exception_handler(self._loop_error)
        self.rng = random.Random(5)
        self.inputs = 0
        self.established = self.loop.run_until_complete(self._establish())

    def run(self, established: bool, steps) -> None:
        """One input: `steps` yields (kind, payload); see toolkit.fuzz.targets.fuzz_sctp_dcep."""
        if (self.loop is None or self.inputs >= self.lifetime or self.established is None
                or self.established.state == "closed" or self.established._closing):
            self.reset()
        self.inputs += 1
        self.errors.clear()
        self.loop.run_until_complete(self._run(established, steps))

    async def _run(self, established: bool, steps) -> None:
        if established:
            self.association = self.established
            await self._acknowledge_all()
        else:
            self.association = self._new_association()
        self.sent.clear()
        self.cookie = None
        await self._settle()
        for kind, payload in steps:
            await self._step(kind, payload)
            await self._settle()
        if not established:  # after a finding, reset() closes it instead
            self.association.close()
            await self._settle()
            await self.association.wait_closed()
            self._check()

    def _new_association(self) -> DataChannelAssociation:
        with _seeded_tags(self.rng):
            association = DataChannelAssociation(self._server_sends, remote_port=LOCAL_SCTP_PORT,
                                                 remote_max_message_size=REMOTE_MAX_MESSAGE_SIZE)
        datachannel_echo.attach("fuzz", association)
        echo = association.on_message

        def on_message(channel, data) -> None:
            if not isinstance(data, (str, bytes)):
                self._judge("dc-message-type", f"a message reached the server as {type(data).__name__}")
            echo(channel, data)

        association.on_message = on_message
        sctp = association._sctp
        handle_sack = sctp._receive_sack_chunk

        async def judged_sack(chunk) -> None:
            # aiortc walks every TSN the gap blocks span: that work must stay within what is in flight.
            if not rtcsctptransport.uint32_gt(sctp._last_sacked_tsn, chunk.cumulative_tsn):
                distance = (sctp._local_tsn - 1 - chunk.cumulative_tsn) % TSN_MODULO
                in_flight = distance if distance < TSN_MODULO // 2 else 0
                span = sum(max(0, end - start + 1) for start, end in chunk.gaps)
                if span > in_flight:
                    self._judge("sctp-sack-amplification", f"a SACK whose gap blocks span {span} TSNs reached "
                                                           f"aiortc, which walks each of them; {in_flight} are in flight")
            await handle_sack(chunk)

        sctp._receive_sack_chunk = judged_sack
        return association

    async def _establish(self) -> DataChannelAssociation:
        """Server association plus an aiortc client, joined in memory until the client's
        DCEP-opened channel is open on both sides; then the client is cut off."""
        self.sent.clear()
        to_client: list[bytes] = []
        self._to_client = to_client
        association = self._new_association()
        self.client_packets = []

        def deliver(packet: bytes) -> None:
            self.client_packets.append(packet)
            association.receive(packet)

        link = _ClientLink(deliver)
        with _seeded_tags(self.rng):
            client = RTCSctpTransport(link)
        await client.start(RTCSctpCapabilities(maxMessageSize=REMOTE_MAX_MESSAGE_SIZE), LOCAL_SCTP_PORT)
        channel = RTCDataChannel(client, RTCDataChannelParameters(label=CHANNEL_LABEL))
        for _ in range(50):
            await self._settle()
            while to_client:
                await link.receiver._handle_data(to_client.pop(0))
            if channel.readyState == "open" and any(c.label == CHANNEL_LABEL for c in association.channels):
                break
        else:
            raise RuntimeError(f"sctp_dcep world: the association did not open ({association.state})")
        link.deliver = None
        for cancel in (client._t1_cancel, client._t2_cancel, client._t3_cancel, client._reconfig_timer_cancel):
            cancel()
        self._to_client = None
        await self._settle()
        self._check()
        return association

    def close(self) -> None:
        """Abort the associations and close the loop; reset() makes a new one."""
        loop = self.loop
        if loop is None:
            return
        for association in filter(None, (self.established, self.association)):
            association.close()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        self.loop = self.established = self.association = None

    # ---- steps -----------------------------------------------------------------------------------

    async def _step(self, kind: int, payload: bytes) -> None:
        sctp = self.association._sctp
        if kind == 0:  # the bytes as they are
            self.association.receive(payload)
        elif kind == 1:  # with the checksum fixed
            self.association.receive(seal(payload))
        elif kind == 2:  # chunks, behind the header the peer would write (tag 0 for an INIT)
            tag = 0 if payload[:1] == b"\x01" else sctp._local_verification_tag
            self.association.receive(packet_of(payload, tag))
        elif kind == 3:  # one DATA chunk at the next TSN: PPID, flags, stream, sequence offset, data
            head = payload[:6].ljust(6, b"\0")
            stream_id = int.from_bytes(head[2:4], "big")
            inbound = sctp._inbound_streams.get(stream_id)
            stream_seq = ((inbound.sequence_number if inbound else 0) + int.from_bytes(head[4:6], "big")) & 0xFFFF
            tsn = 0 if sctp._last_received_tsn is None else rtcsctptransport.tsn_plus_one(sctp._last_received_tsn)
            chunk = data_chunk(tsn, stream_id, stream_seq,
                               PPIDS[head[0] % len(PPIDS)], payload[6:], flags=(head[1] ^ 3) & 0x0F)
            self.association.receive(packet_of(chunk, sctp._local_verification_tag))
        elif kind == 4:  # COOKIE ECHO of the cookie in the last INIT ACK, then the payload's chunks
            if self.cookie is not None:
                echo = struct.pack("!BBH", 10, 0, 4 + len(self.cookie)) + self.cookie
                self.association.receive(packet_of(echo + payload, sctp._local_verification_tag))
        elif kind == 5:  # time passes: aiortc's timers that are due fire
            await self._advance(TIME_STEPS[payload[0] % len(TIME_STEPS)] if payload else TIME_STEPS[0])
        elif kind == 6:  # a SACK of everything sent so far, with the payload's a_rwnd and gap blocks
            gaps = payload[4:len(payload) // 4 * 4]
            self._sack_all(int.from_bytes(payload[:4].ljust(4, b"\xff"), "big"), gaps)

    def _sack_all(self, rwnd: int, gaps: bytes = b"") -> None:
        sctp = self.association._sctp
        sack = struct.pack("!BBHIIHH", 3, 0, 16 + len(gaps), rtcsctptransport.tsn_minus_one(sctp._local_tsn),
                           rwnd, len(gaps) // 4, 0) + gaps
        self.association.receive(packet_of(sack, sctp._local_verification_tag))

    async def _acknowledge_all(self) -> None:
        """What the client would have done since the last input: acknowledge every DATA chunk the
        server sent (echoes, DCEP ACKs), so no retransmission piles up from input to input."""
        sctp = self.association._sctp
        for _ in range(4):
            if not (sctp._sent_queue or sctp._outbound_queue) or sctp._association_state != sctp.State.ESTABLISHED:
                return
            self._sack_all(RECEIVE_WINDOW)
            await self._settle()

    async def _advance(self, seconds: float) -> None:
        """Move the clock from one due timer to the next, so each fires seeing the time it was
        due (and the ones it sets fire later in the same step if they fall within it)."""
        loop = self.loop
        end = loop.clock + seconds
        while loop._scheduled and loop._scheduled[0].when() <= end:
            loop.clock = max(loop.clock, loop._scheduled[0].when())
            await self._settle()
        loop.clock = end

    async def _settle(self) -> None:
        """Yield until nothing else is ready to run, then judge."""
        loop = self.loop
        for _ in range(MAX_IDLE_TURNS):
            await asyncio.sleep(0)
            if not loop._ready and not self._due(loop):
                break
        else:
            violation("sctp-never-idle", f"the association was still busy after {MAX_IDLE_TURNS} loop turns")
        self._check()

    @staticmethod
    def _due(loop: _FakeClockLoop) -> bool:
        return bool(loop._scheduled) and loop._scheduled[0].when() <= loop.clock

    # ---- judging ---------------------------------------------------------------------------------

    def _server_sends(self, packet: bytes) -> bool:
        if len(packet) > MAX_SCTP_PACKET:
            self._judge("sctp-oversize", f"the association sent a {len(packet)}-byte SCTP packet; one DTLS record "
                                         f"holds {MAX_SCTP_PACKET}")
        try:
            _, _, _, chunks = rtcsctptransport.parse_packet(packet)
        except ValueError as exc:
            self._judge("sctp-unparsable", f"the association sent a packet aiortc refuses: {exc}")
            chunks = []
        for chunk in chunks:
            if isinstance(chunk, rtcsctptransport.InitAckChunk):
                self.cookie = next((value for key, value in chunk.params if key == STATE_COOKIE), None)
        self.sent.append(packet)
        if self._to_client is not None:
            self._to_client.append(packet)
        return True

    def _judge(self, code: str, message: str) -> None:
        """A violation found inside a callback of aiortc's or the adapter's, which would
        swallow an exception: kept for _check to raise."""
        try:
            violation(code, message)
        except InvariantViolation as exc:
            self.errors.append(exc)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        self.errors.append(context.get("exception") or context.get("message", "unknown event loop error"))

    def _check(self) -> None:
        if self.errors:
            error = self.errors[0]
            self.errors.clear()
            if isinstance(error, BaseException):
                raise error
            violation("loop-error", str(error))
        association = self.association or self.established
        if association is None:
            return
        task = association._task
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
        if task.done() and not association._closing:
            violation("sctp-task-ended", "the association's task ended though nobody closed it")
        sctp = association._sctp
        buffered = sum(len(chunk.user_data) for stream in sctp._inbound_streams.values() for chunk in stream.reassembly)
        if buffered > RECEIVE_WINDOW + MAX_SCTP_PACKET and not association._closing:
            violation("sctp-unbounded-buffer", f"{buffered} bytes wait for reassembly, beyond the "
                                                f"{RECEIVE_WINDOW}-byte receive window")
