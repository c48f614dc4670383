"""Data channels (RFC 8831; DCEP, RFC 8832; SCTP over DTLS, RFC 8261) through aiortc's SCTP.

docs/architecture.md principle 6: aiortc's RTCSctpTransport does SCTP and DCEP, and this is the one module
that touches it. tests/reference_server/test_datachannel.py pins every part of aiortc used
here, private ones included, so an aiortc upgrade that changes them fails those tests rather
than a client. aiortc runs on asyncio, so this module belongs to the shell, not to the sans-IO
core: the shell feeds it the DTLS application data the core hands out (`DataChannelBytes`) and
gives it a `send_packet` that passes SCTP packets to `ServerCore.send_application_data`.

The rest of the server sees `DataChannelAssociation`, `Channel` and `DataChannelError` only.

The probe peer has an adapter of its own, much like this one (toolkit/peer/shell/datachannel.py).
The duplication is deliberate: the judge never imports the judged (docs/architecture.md
principle 3). tests/contract/test_datachannel_adapters.py drives both through the same table
of cases against aiortc, so a change to one that the other lacks fails there.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport

log = logging.getLogger("rtcgate.datachannel")

LOCAL_SCTP_PORT = 5000  # must equal the answer's a=sctp-port (sdp.AnswerParams.sctp_port)
REMOTE_DEFAULT_MAX_MESSAGE_SIZE = 65536  # RFC 8841 §6.1: an offer without a=max-message-size
MAX_SCTP_PACKET = 1189  # aiortc's largest packet; core.DATACHANNEL_DTLS_MTU is sized for it
# Chunk types whose value is a list of TLV parameters (or error causes), and where that list
# starts in the chunk value: INIT, INIT ACK (after the 16-byte fixed part), HEARTBEAT,
# HEARTBEAT ACK, ABORT, ERROR, RE-CONFIG (RFC 9260 §3.3, RFC 6525).
_PARAMETER_LISTS = {1: 16, 2: 16, 4: 0, 5: 0, 6: 0, 9: 0, 130: 0}
MAX_QUEUED_PACKETS = 1024  # received but not yet processed; beyond, drop (SCTP retransmits)
MAX_STREAM_ID = 65534  # RFC 8831 §6.6: stream 65535 is reserved
MAX_DCEP_STRING = 65535  # DCEP label and protocol lengths are 16-bit (RFC 8832 §5.1)
SACK = 3
TSN_MODULO = 1 << 32

Callback = Callable[..., None]


class DataChannelError(Exception):
    """A data-channel call the association refuses; the message says why."""


class Channel:
    """One data channel as the server sees it; aiortc's RTCDataChannel stays inside."""

    __slots__ = ("_rtc",)

    def __init__(self, rtc: RTCDataChannel) -> None:
        self._rtc = rtc

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
    def negotiated(self) -> bool:
        return self._rtc.negotiated

    @property
    def max_retransmits(self) -> int | None:
        return self._rtc.maxRetransmits

    @property
    def max_packet_life_time(self) -> int | None:
        """Milliseconds."""
        return self._rtc.maxPacketLifeTime

    @property
    def stream_id(self) -> int | None:
        """None until the association is up for a channel the server opened with DCEP."""
        return self._rtc.id

    @property
    def state(self) -> str:
        """connecting, open, closing or closed."""
        return self._rtc.readyState

    def __repr__(self) -> str:
        return f"Channel({self.label!r}, stream {self.stream_id}, {self.state})"


class _DtlsLink:
    """What RTCSctpTransport uses of aiortc's RTCDtlsTransport, backed by the server core.

    The slots make any other attribute an AttributeError, so a new demand of aiortc's on its
    DTLS transport fails the contract tests instead of misbehaving quietly."""

    __slots__ = ("state", "_role", "_data_receiver", "_send_packet")

    def __init__(self, send_packet: Callable[[bytes], bool], dtls_role: str) -> None:
        self.state = "connected"  # RTCSctpTransport refuses a "closed" transport
        self._role = dtls_role  # RFC 8832 §6: the DTLS server's channels take odd stream ids, the client's even
        self._data_receiver: RTCSctpTransport | None = None
        self._send_packet = send_packet

    def _register_data_receiver(self, receiver: RTCSctpTransport) -> None:
        self._data_receiver = receiver

    def _unregister_data_receiver(self, receiver: RTCSctpTransport) -> None:
        if self._data_receiver is receiver:
            self._data_receiver = None

    async def _send_data(self, data: bytes) -> None:
        if self.state == "connected" and not self._send_packet(data):
            self.state = "closed"  # the session is gone: later packets are lost like datagrams


class DataChannelAssociation:
    """One session's SCTP association and its data channels.

    Create it inside the running event loop once the session's DTLS is connected: it sends its
    INIT at once (both ends initiate). `send_packet(packet) -> bool` takes each outgoing SCTP
    packet (False: the session is gone). Feed every received SCTP packet to `receive`.

    Callbacks, set before feeding data: `on_open(channel)`; `on_message(channel, data)`, data
    being str for a text message and bytes for a binary one; `on_close(channel)`. A channel the
    client opens with DCEP (any label and protocol) is open when `on_open` runs. A callback that
    raises is logged and the association carries on.
    """

    def __init__(self, send_packet: Callable[[bytes], bool], *, remote_port: int = LOCAL_SCTP_PORT,
                 remote_max_message_size: int | None = None, dtls_role: str = "server") -> None:
        self.on_open: Callback | None = None
        self.on_message: Callback | None = None
        self.on_close: Callback | None = None
        self.remote_max_message_size = (REMOTE_DEFAULT_MAX_MESSAGE_SIZE if remote_max_message_size is None
                                        else remote_max_message_size)  # 0: any size (RFC 8841 §6.1)
        self.malformed_packets = 0  # packets aiortc failed on (counted, skipped)
        self.dropped_packets = 0  # packets beyond MAX_QUEUED_PACKETS
        self.overrun = False  # the peer sent past our receive window, so we aborted
        self._channels: list[Channel] = []
        self._closing = False
        self._link = _DtlsLink(send_packet, dtls_role)
        self._sctp = RTCSctpTransport(self._link, port=LOCAL_SCTP_PORT)
        self._sctp.on("datachannel", self._adopt)
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(remote_port))

    # ---- the shell's side -------------------------------------------------------------------

    def receive(self, packet: bytes) -> None:
        """One SCTP packet from the peer (the plaintext of one DTLS record)."""
        if self._closing:
            return
        if self._inbox.qsize() >= MAX_QUEUED_PACKETS:
            self.dropped_packets += 1
            return
        if _has_short_parameter(packet):
            self.malformed_packets += 1
            return
        self._inbox.put_nowait(packet)

    def close(self) -> None:
        """Abort the association once the packets already received are processed; idempotent."""
        if not self._closing:
            self._closing = True
            self._inbox.put_nowait(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._task)

    @property
    def state(self) -> str:
        """connecting, connected or closed."""
        state = self._sctp.state
        return "connecting" if state == "new" else state

    # ---- channels -----------------------------------------------------------------------------

    @property
    def channels(self) -> list[Channel]:
        """The channels not closed yet, oldest first."""
        return list(self._channels)

    def create_channel(self, label: str, *, protocol: str = "", ordered: bool = True,
                       max_retransmits: int | None = None, max_packet_life_time: int | None = None,
                       negotiated_id: int | None = None) -> Channel:
        """Open a channel from the server: with DCEP (RFC 8832), or, given `negotiated_id`, on
        the stream both ends agreed out of band (the client creates it with negotiated: true)."""
        if self._closing or self._sctp.state == "closed":
            raise DataChannelError(f"cannot open data channel {label!r}: the association is closed")
        if max_retransmits is not None and max_packet_life_time is not None:
            raise DataChannelError("a data channel has max_retransmits or max_packet_life_time, not both")
        for name, value in (("label", label), ("protocol", protocol)):
            if len(value.encode("utf-8")) > MAX_DCEP_STRING:
                raise DataChannelError(f"data channel {name} is longer than {MAX_DCEP_STRING} bytes")
        if negotiated_id is not None and not 0 <= negotiated_id <= MAX_STREAM_ID:
            raise DataChannelError(f"negotiated_id {negotiated_id} is not a stream id from 0 to {MAX_STREAM_ID}")
        if negotiated_id is not None and any(c.stream_id == negotiated_id for c in self._channels):
            raise DataChannelError(f"stream {negotiated_id} already carries a data channel")
        parameters = RTCDataChannelParameters(
            label=label, protocol=protocol, ordered=ordered, maxRetransmits=max_retransmits,
            maxPacketLifeTime=max_packet_life_time, negotiated=negotiated_id is not None, id=negotiated_id,
        )
        return self._track(RTCDataChannel(self._sctp, parameters))

    def send(self, channel: Channel | str, data: str | bytes) -> None:
        """Queue one message: str goes as text, bytes as binary. A label names the newest open
        channel with that label."""
        target = self._open_channel(channel)
        if not isinstance(data, (str, bytes)):
            raise DataChannelError(f"a data channel message is str or bytes, not {type(data).__name__}")
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        limit = self.remote_max_message_size
        if limit and size > limit:
            raise DataChannelError(f"message of {size} bytes is larger than the peer's a=max-message-size "
                                   f"of {limit} bytes")
        target._rtc.send(data)

    def close_channel(self, channel: Channel) -> None:
        """Close one channel (SCTP stream reset, RFC 8831 §6.7); `on_close` follows."""
        self._own(channel)._rtc.close()

    # ---- inside -------------------------------------------------------------------------------

    async def _run(self, remote_port: int) -> None:
        sctp = self._sctp
        try:
            await sctp.start(RTCSctpCapabilities(maxMessageSize=self.remote_max_message_size), remote_port)
            while (packet := await self._inbox.get()) is not None:
                receiver = self._link._data_receiver
                if receiver is None:
                    continue
                if _sack_overreaches(packet, sctp._local_tsn):
                    self.malformed_packets += 1
                    continue
                try:
                    await receiver._handle_data(packet)
                except Exception as exc:  # aiortc asserts or raises on some malformed input
                    self.malformed_packets += 1
                    log.debug("SCTP packet of %d bytes failed in aiortc: %r", len(packet), exc)
                if sctp._advertised_rwnd < 0:
                    # aiortc buffers whatever arrives; a peer that ignores our window (say, a
                    # message that never ends) would grow that buffer without bound.
                    self.overrun = True
                    self._closing = True
                    log.info("data channel peer overran the receive window; aborting the association")
                    break
        finally:
            await sctp.stop()

    def _adopt(self, rtc: RTCDataChannel) -> None:
        """A channel the client opened with DCEP: aiortc has opened and acknowledged it."""
        self._track(rtc)

    def _track(self, rtc: RTCDataChannel) -> Channel:
        channel = Channel(rtc)
        self._channels.append(channel)
        rtc.on("open", lambda: self._call(self.on_open, channel))
        rtc.on("message", lambda data: self._call(self.on_message, channel, data))
        rtc.on("close", lambda: self._closed(channel))
        if rtc.readyState == "open":  # opened before we could listen
            self._call(self.on_open, channel)
        return channel

    def _closed(self, channel: Channel) -> None:
        if channel in self._channels:
            self._channels.remove(channel)
        self._call(self.on_close, channel)

    def _own(self, channel: Channel) -> Channel:
        if channel not in self._channels:
            raise DataChannelError(f"data channel {channel.label!r} is {channel.state} or not this association's")
        return channel

    def _open_channel(self, channel: Channel | str) -> Channel:
        if isinstance(channel, str):
            found = next((c for c in reversed(self._channels) if c.label == channel and c.state == "open"), None)
            if found is None:
                raise DataChannelError(f"no open data channel labelled {channel!r}")
            return found
        if self._own(channel).state != "open":
            raise DataChannelError(f"data channel {channel.label!r} is {channel.state}, not open")
        return channel

    @staticmethod
    def _call(callback: Callback | None, *args: object) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("data channel callback %r failed", callback)


def _has_short_parameter(packet: bytes) -> bool:
    """Whether a chunk carries a parameter whose length is below its own 4-byte header.

    RFC 9260 §3.2.1 makes such a packet malformed; aiortc 1.16's parameter decoder loops for
    ever on a length of 0, so one such packet would hang the whole server. Checked before
    aiortc sees the packet."""
    position = 12  # SCTP common header
    while position + 4 <= len(packet):
        chunk_type = packet[position]
        chunk_length = int.from_bytes(packet[position + 2:position + 4], "big")
        if chunk_length < 4:
            return False  # aiortc refuses the chunk itself
        end = min(position + chunk_length, len(packet))
        start = _PARAMETER_LISTS.get(chunk_type)
        if start is not None:
            offset = position + 4 + start
            while offset + 4 <= end:
                length = int.from_bytes(packet[offset + 2:offset + 4], "big")
                if length < 4:
                    return True
                offset += (length + 3) & ~3
        position += (chunk_length + 3) & ~3
    return False


def _sack_overreaches(packet: bytes, next_tsn: int) -> bool:
    """Whether a SACK chunk in the packet acknowledges TSNs this end has not sent, or has gap
    ack blocks out of order.

    RFC 9260 §3.3.4: a gap ack block covers the TSNs from cumulative TSN ack + start to
    cumulative TSN ack + end, which only a start of 1 or more, no later than its end, and
    blocks in ascending order that do not overlap describe. aiortc 1.16 walks every TSN each
    block spans (up to 65535 per block, hundreds of blocks per packet) before comparing
    them with what it sent: one 1200-byte SACK held the event loop, every session of the
    server, for over a second. A SACK whose cumulative TSN ack or last gap block reaches
    `next_tsn` (the TSN this end assigns next) acknowledges data never sent; Linux drops
    those too. So the work a SACK causes is bounded by the TSNs actually in flight."""
    position = 12  # SCTP common header
    while position + 4 <= len(packet):
        chunk_length = int.from_bytes(packet[position + 2:position + 4], "big")
        if chunk_length < 4:
            return False  # aiortc refuses the chunk itself
        if packet[position] == SACK and chunk_length >= 16 and position + chunk_length <= len(packet):
            cumulative = int.from_bytes(packet[position + 4:position + 8], "big")
            in_flight = (next_tsn - 1 - cumulative) % TSN_MODULO  # TSNs sent after the cumulative ack
            if in_flight >= TSN_MODULO // 2:
                return True  # the cumulative ack is at or past next_tsn
            blocks = int.from_bytes(packet[position + 12:position + 14], "big")
            end_of_previous = 0
            for offset in range(position + 16, min(position + 16 + 4 * blocks, position + chunk_length - 3), 4):
                start = int.from_bytes(packet[offset:offset + 2], "big")
                end = int.from_bytes(packet[offset + 2:offset + 4], "big")
                if not end_of_previous < start <= end <= in_flight:
                    return True
                end_of_previous = end
        position += (chunk_length + 3) & ~3
    return False
