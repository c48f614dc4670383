"""The probe peer's data channels: SCTP over DTLS (RFC 8261) and DCEP (RFC 8832), by aiortc.

docs/architecture.md principle 6: aiortc's RTCSctpTransport does SCTP and DCEP, and this is the one toolkit
module that touches it; tests/toolkit/test_datachannel.py pins every part of aiortc used here,
private ones included, so an aiortc upgrade that changes them fails there first. It is the
toolkit's own adapter, written for the offering side (in either DTLS role: the client's channels
take even stream ids, the server's odd, RFC 8832 §6).

The reference server has an adapter of its own, much like this one (the link that stands in for
aiortc's DTLS transport, the channel wrapper, the guard against parameters aiortc loops on).
The duplication is deliberate: the judge never imports the judged (docs/architecture.md
principle 3). tests/contract/test_datachannel_adapters.py drives both through the same table
of cases against aiortc, so a change to one that the other lacks fails there.

The probe peer stays sans-IO; this adapter runs on asyncio because aiortc does. Feed it every
SCTP packet the peer's DTLS delivers (`DtlsData.data`) with the time it arrived; it sends its
packets through `send_packet`, which should hand them to `ProbePeer.send_dtls`.

For hostile checks it also sends what aiortc never would: any message on any stream with any
payload protocol id, in the association's own TSN sequence (`send_message`), and the tag and
ports a hand-crafted SCTP packet needs to be taken for part of this association.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport

WEBRTC_SCTP_PORT = 5000
DEFAULT_MAX_MESSAGE_SIZE = 65536
"""RFC 8841 §6.1: what the far end takes when its SDP has no a=max-message-size."""
DATA_CHUNK = 0
HEARTBEAT_ACK_CHUNK = 5
ABORT_CHUNK = 6
DCEP_ACK = b"\x00\x00\x00\x32\x02"
"""The tail of a DATA chunk carrying a DATA_CHANNEL_ACK: PPID 50, then message type 2."""
PARAMETER_CHUNKS = {1: 16, 2: 16, 4: 0, 5: 0, 6: 0, 9: 0, 130: 0}
"""Chunk types whose body is (after a fixed part of this many bytes) a list of TLV parameters or
error causes: INIT, INIT ACK, HEARTBEAT, HEARTBEAT ACK, ABORT, ERROR, RE-CONFIG."""


def zero_length_parameter(packet: bytes) -> str | None:
    """Why aiortc must not see this packet, or None.

    aiortc 1.16 decodes parameter lists (`decode_params`) without checking that a parameter's
    length covers its own 4-byte header: length 0 never advances, and the event loop spins for
    ever. A hostile target could hang the probe with one packet, so such packets never reach it."""
    position = 12
    while position + 4 <= len(packet):
        kind = packet[position]
        length = int.from_bytes(packet[position + 2:position + 4], "big")
        if length < 4:
            return None  # aiortc's own packet parser refuses it
        fixed = PARAMETER_CHUNKS.get(kind)
        if fixed is not None:
            body = packet[position + 4 + fixed:position + length]
            offset = 0
            while offset + 4 <= len(body):
                parameter_length = int.from_bytes(body[offset + 2:offset + 4], "big")
                if parameter_length < 4:
                    return f"chunk type {kind} holds a parameter of length {parameter_length}"
                offset += (parameter_length + 3) & ~3
        position += (length + 3) & ~3
    return None


class DataChannelError(Exception):
    """A data-channel call the association cannot carry out; the message says why."""


@dataclass(slots=True)
class Message:
    """One message as it arrived: `data` is str for a text message, bytes for a binary one."""

    time: float
    data: str | bytes


@dataclass(eq=False)
class DataChannel:
    """One channel as the probe sees it; aiortc's RTCDataChannel stays inside."""

    _rtc: RTCDataChannel = field(repr=False)
    _association: Association = field(repr=False)
    messages: list[Message] = field(default_factory=list)
    opened_at: float | None = None

    @property
    def label(self) -> str:
        return self._rtc.label

    @property
    def protocol(self) -> str:
        return self._rtc.protocol

    @property
    def ordered(self) -> bool:
        return self._rtc.ordered

    @property
    def stream_id(self) -> int | None:
        """None until the association is up and the channel has announced itself."""
        return self._rtc.id

    @property
    def state(self) -> str:
        """connecting, open, closing or closed."""
        return self._rtc.readyState

    def send(self, data: str | bytes) -> None:
        """Queue one message: str as text (PPID 51), bytes as binary (PPID 53)."""
        if self.state != "open":
            raise DataChannelError(f"data channel {self.label!r} is {self.state}, not open")
        try:
            self._rtc.send(data)
        except ValueError as exc:  # aiortc: larger than the far end's max-message-size
            raise DataChannelError(str(exc)) from None

    async def wait_open(self, timeout: float) -> None:
        """Until the far end acknowledged the channel (DATA_CHANNEL_ACK); DataChannelError otherwise."""
        await self._association.wait_for(lambda: self.state != "connecting", timeout)
        if self.state != "open":
            raise DataChannelError(f"data channel {self.label!r} is {self.state}, not open, "
                                   f"after {timeout:g} s")

    async def wait_messages(self, count: int, timeout: float) -> list[Message]:
        """Until `count` messages have arrived in all (or the timeout); returns what arrived."""
        await self._association.wait_for(lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    def close(self) -> None:
        """Reset the channel's stream (RFC 8831 §6.7)."""
        self._rtc.close()


class _DtlsLink:
    """What RTCSctpTransport uses of aiortc's RTCDtlsTransport, backed by the probe peer.

    The slots make any other attribute an AttributeError, so a new demand of aiortc's on its
    DTLS transport fails the contract tests instead of misbehaving quietly."""

    __slots__ = ("state", "_role", "_data_receiver", "_send_packet")

    def __init__(self, send_packet: Callable[[bytes], None], dtls_role: str) -> None:
        self.state = "connected"  # RTCSctpTransport refuses a "closed" transport
        self._role = dtls_role  # RFC 8832 §6: the DTLS client's channels take even stream ids, the server's odd
        self._data_receiver: RTCSctpTransport | None = None
        self._send_packet = send_packet

    def _register_data_receiver(self, receiver: RTCSctpTransport) -> None:
        self._data_receiver = receiver

    def _unregister_data_receiver(self, receiver: RTCSctpTransport) -> None:
        if self._data_receiver is receiver:
            self._data_receiver = None

    async def _send_data(self, data: bytes) -> None:
        if self.state == "connected":
            self._send_packet(data)


class _ProbeSctp(RTCSctpTransport):
    def _data_channel_open(self, channel: RTCDataChannel) -> None:
        """aiortc 1.16 writes the label and protocol lengths of its DATA_CHANNEL_OPEN in
        characters; RFC 8832 §5.1 counts bytes. Rewrite the queued message with byte counts
        (it is sent later, from a task), so UTF-8 labels reach the far end whole."""
        super()._data_channel_open(channel)
        queued, protocol_id, message = self._data_channel_queue[-1]
        label, protocol = channel.label.encode(), channel.protocol.encode()
        fixed = message[:8] + struct.pack("!HH", len(label), len(protocol)) + label + protocol
        self._data_channel_queue[-1] = (queued, protocol_id, fixed)


class Association:
    """One SCTP association over the probe peer's DTLS connection, and its data channels.

    Create it inside the running loop once DTLS is connected; `start()` sends the INIT (both
    ends initiate, RFC 8841 §9.3). `now()` stamps what arrives (use the caller's clock).
    """

    def __init__(self, send_packet: Callable[[bytes], None], *, now: Callable[[], float],
                 remote_port: int = WEBRTC_SCTP_PORT, remote_max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 local_port: int = WEBRTC_SCTP_PORT, dtls_role: str = "client") -> None:
        self.now = now
        self.remote_port = remote_port
        self.remote_max_message_size = remote_max_message_size
        """0 means any size (RFC 8841 §6.1)."""
        self.channels: list[DataChannel] = []
        self.remote_channels: list[DataChannel] = []
        """Channels the far end opened with its own DATA_CHANNEL_OPEN."""
        self.failures: list[str] = []
        """Packets from the far end that aiortc failed on, described."""
        self.chunks_received: Counter[int] = Counter()
        """Chunk types seen in the far end's packets (6 is ABORT)."""
        self.acknowledged_streams: set[int] = set()
        """Streams on which the far end sent a DATA_CHANNEL_ACK (whichever OPEN it answers)."""
        self.heartbeat_acks: list[bytes] = []
        """Bodies of the far end's HEARTBEAT ACK chunks (aiortc itself ignores them)."""
        self.connected_at: float | None = None
        self._changed = asyncio.Event()
        self._link = _DtlsLink(send_packet, dtls_role)
        self._sctp = _ProbeSctp(self._link, port=local_port)
        self._sctp.on("datachannel", self._adopt)
        self._inbox: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._arrival: float | None = None

    # -- the caller's side -------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def receive(self, packet: bytes, at: float) -> None:
        """One SCTP packet from the far end (the plaintext of one DTLS record), arrived at `at`."""
        self._inbox.put_nowait((at, packet))

    async def close(self) -> None:
        """ABORT the association (if it got anywhere) and stop; idempotent."""
        if self._task is None:
            return
        self._inbox.put_nowait(None)
        try:
            await asyncio.shield(self._task)
        finally:
            self._link.state = "closed"

    @property
    def state(self) -> str:
        """connecting, connected or closed."""
        state = self._sctp.state
        return "connecting" if state == "new" else state

    @property
    def aborted(self) -> bool:
        """The far end sent an ABORT."""
        return self.chunks_received[ABORT_CHUNK] > 0

    async def wait_connected(self, timeout: float) -> None:
        await self.wait_for(lambda: self.state != "connecting", timeout)
        if self.state != "connected":
            raise DataChannelError(f"the SCTP association is {self.state}, not connected, after {timeout:g} s")

    async def wait_for(self, condition: Callable[[], object], timeout: float) -> bool:
        """Until `condition()` is true, re-checked whenever something arrives; False at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                async with asyncio.timeout(left):  # not wait_for: on 3.11 it can swallow a cancellation
                    await self._changed.wait()
            except TimeoutError:
                return bool(condition())
        return True

    # -- channels ------------------------------------------------------------------------------

    def open_channel(self, label: str, *, protocol: str = "", ordered: bool = True,
                     max_retransmits: int | None = None, max_packet_life_time: int | None = None,
                     negotiated_id: int | None = None) -> DataChannel:
        """Open a channel with DCEP (sent once the association is up), or, given
        `negotiated_id`, on a stream both ends agreed out of band."""
        parameters = RTCDataChannelParameters(
            label=label, protocol=protocol, ordered=ordered, maxRetransmits=max_retransmits,
            maxPacketLifeTime=max_packet_life_time, negotiated=negotiated_id is not None, id=negotiated_id,
        )
        return self._track(RTCDataChannel(self._sctp, parameters), self.channels)

    async def send_message(self, stream_id: int, ppid: int, data: bytes, *, ordered: bool = True) -> None:
        """Send `data` as one user message on `stream_id` with payload protocol id `ppid`, in the
        association's own TSN and stream-sequence order, whatever it holds (a crafted DCEP
        message, say). Only once the association is connected."""
        if self.state != "connected":
            raise DataChannelError(f"the SCTP association is {self.state}: nothing can be sent on it")
        await self._sctp._send(stream_id, ppid, data, ordered=ordered)

    @property
    def verification_tag(self) -> int:
        """The tag a packet to the far end must carry (the far end's Initiate Tag)."""
        return self._sctp._remote_verification_tag

    @property
    def local_port(self) -> int:
        return self._sctp.port

    @property
    def next_tsn(self) -> int:
        """The TSN the association will give its next DATA chunk."""
        return self._sctp._local_tsn

    # -- inside --------------------------------------------------------------------------------

    async def _run(self) -> None:
        sctp = self._sctp
        try:
            await sctp.start(RTCSctpCapabilities(maxMessageSize=self.remote_max_message_size), self.remote_port)
            while (item := await self._inbox.get()) is not None:
                at, packet = item
                self._count_chunks(packet)
                problem = zero_length_parameter(packet)
                if problem is not None:
                    self.failures.append(f"{len(packet)}-byte packet dropped unparsed: {problem}")
                    continue
                receiver = self._link._data_receiver
                if receiver is not None:
                    self._arrival = at
                    try:
                        await receiver._handle_data(packet)
                    except Exception as exc:  # aiortc asserts or raises on some input
                        self.failures.append(f"{len(packet)}-byte packet: {type(exc).__name__}: {exc}")
                    finally:
                        self._arrival = None
                if self.connected_at is None and sctp.state == "connected":
                    self.connected_at = at
                self._changed.set()
        finally:
            await sctp.stop()
            self._changed.set()

    def _count_chunks(self, packet: bytes) -> None:
        position = 12
        while position + 4 <= len(packet):
            kind = packet[position]
            self.chunks_received[kind] += 1
            length = int.from_bytes(packet[position + 2:position + 4], "big")
            if kind == DATA_CHUNK and length == 17 and packet[position + 12:position + 17] == DCEP_ACK:
                self.acknowledged_streams.add(int.from_bytes(packet[position + 8:position + 10], "big"))
            elif kind == HEARTBEAT_ACK_CHUNK:
                self.heartbeat_acks.append(packet[position + 4:position + length])
            if length < 4:
                break
            position += (length + 3) & ~3

    def _adopt(self, rtc: RTCDataChannel) -> None:
        self._track(rtc, self.remote_channels)

    def _track(self, rtc: RTCDataChannel, into: list[DataChannel]) -> DataChannel:
        channel = DataChannel(rtc, self)
        into.append(channel)

        def opened() -> None:
            channel.opened_at = self._stamp()
            self._changed.set()

        def message(data: str | bytes) -> None:
            channel.messages.append(Message(self._stamp(), data))
            self._changed.set()

        rtc.on("open", opened)
        rtc.on("message", message)
        rtc.on("close", self._changed.set)
        if rtc.readyState == "open":
            channel.opened_at = self._stamp()
        return channel

    def _stamp(self) -> float:
        """The arrival time of the packet being handled (or now, between packets)."""
        return self._arrival if self._arrival is not None else self.now()
