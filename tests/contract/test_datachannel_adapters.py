"""The two aiortc data-channel adapters against one contract: the probe's
(toolkit/peer/shell/datachannel.py) and the reference server's (reference_server/shell/datachannel.py).

They are written twice on purpose: the judge must not import the judged (docs/architecture.md
principle 3), so neither module imports the other. What they share is aiortc: the same
RTCSctpTransport, the same demands on a DTLS transport, the same channel objects, the same
faults to guard against. This file drives both sides with the same tables of cases against an
aiortc association as the far end, so when one adapter drifts from the other (or aiortc moves
under both) a case here fails for one side and not the other.

A known divergence is marked xfail(strict=True) with what to change: the mark must go when the
adapter is fixed, because the case then passes and strict turns that into a failure.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from collections import defaultdict
from dataclasses import dataclass

import pytest
from aiortc import rtcsctptransport
from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport

from reference_server.shell import datachannel as server_adapter  # the server's adapter: one line to fix if it moves
from tests.support.aiortc_link import MemoryLink, attribute_reads
from toolkit.crafters.sctp import DataChannelOpen
from toolkit.peer.shell import datachannel as probe_adapter

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
MAX_MESSAGE_SIZE = 262144  # what aiortc and browsers offer
DCEP_PPID = 50
DATA_CHANNEL_OPEN = 3


# -- the two sides, behind one interface ----------------------------------------------------


class ProbeSide:
    """The probe's Association, as the DTLS client (the probe's usual role)."""

    name = "probe"
    role = "client"
    link_class = probe_adapter._DtlsLink
    parameter_lists = probe_adapter.PARAMETER_CHUNKS

    @staticmethod
    def refuses(packet: bytes) -> bool:
        return probe_adapter.zero_length_parameter(packet) is not None

    def __init__(self, send_packet) -> None:
        loop = asyncio.get_running_loop()
        self.association = probe_adapter.Association(
            send_packet, now=loop.time, remote_max_message_size=MAX_MESSAGE_SIZE, dtls_role=self.role)
        self.association.start()

    def receive(self, packet: bytes) -> None:
        self.association.receive(packet, asyncio.get_running_loop().time())

    @property
    def state(self) -> str:
        return self.association.state

    def open_channel(self, case: ChannelCase):
        return self.association.open_channel(case.label, protocol=case.protocol, ordered=case.ordered,
                                             max_retransmits=case.max_retransmits,
                                             max_packet_life_time=case.max_packet_life_time)

    def adopted(self) -> list:
        return self.association.remote_channels

    def received(self, channel) -> list[str | bytes]:
        return [message.data for message in channel.messages]

    async def close(self) -> None:
        await self.association.close()


class ServerSide:
    """The reference server's DataChannelAssociation, as the DTLS server (its usual role)."""

    name = "server"
    role = "server"
    link_class = server_adapter._DtlsLink
    parameter_lists = server_adapter._PARAMETER_LISTS

    @staticmethod
    def refuses(packet: bytes) -> bool:
        return server_adapter._has_short_parameter(packet)

    def __init__(self, send_packet) -> None:
        def send(packet: bytes) -> bool:
            send_packet(packet)
            return True

        self.association = server_adapter.DataChannelAssociation(
            send, remote_max_message_size=MAX_MESSAGE_SIZE, dtls_role=self.role)
        self._created: list = []
        self._messages: dict[object, list[str | bytes]] = defaultdict(list)
        self.association.on_message = lambda channel, data: self._messages[channel].append(data)

    def receive(self, packet: bytes) -> None:
        self.association.receive(packet)

    @property
    def state(self) -> str:
        return self.association.state

    def open_channel(self, case: ChannelCase):
        channel = self.association.create_channel(case.label, protocol=case.protocol, ordered=case.ordered,
                                                  max_retransmits=case.max_retransmits,
                                                  max_packet_life_time=case.max_packet_life_time)
        self._created.append(channel)
        return channel

    def adopted(self) -> list:
        return [channel for channel in self.association.channels if channel not in self._created]

    def received(self, channel) -> list[str | bytes]:
        return self._messages[channel]

    async def close(self) -> None:
        self.association.close()
        await self.association.wait_closed()


SIDES = [ProbeSide, ServerSide]
SIDE_IDS = [side.name for side in SIDES]


# -- the far end: aiortc itself --------------------------------------------------------------


class Pair:
    """One side's adapter joined in memory to an aiortc association; `wire` keeps every packet
    the adapter sent."""

    def __init__(self, side_class) -> None:
        self.link = MemoryLink("server" if side_class.role == "client" else "client")
        self.far = RTCSctpTransport(self.link)
        self.far_channels: list[RTCDataChannel] = []
        self.far.on("datachannel", self.far_channels.append)
        self.wire: list[bytes] = []
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.side = side_class(self._send)
        self.link.deliver = self.side.receive
        self._pump: asyncio.Task | None = None

    def _send(self, packet: bytes) -> None:
        self.wire.append(packet)
        self._inbox.put_nowait(packet)

    async def _pump_to_far(self) -> None:
        while True:
            packet = await self._inbox.get()
            if self.link.receiver is not None:
                try:
                    await self.link.receiver._handle_data(packet)
                except Exception:  # noqa: BLE001 - what aiortc fails on shows up as a missing channel
                    pass

    async def __aenter__(self) -> Pair:
        self._pump = asyncio.get_running_loop().create_task(self._pump_to_far())
        await self.far.start(RTCSctpCapabilities(maxMessageSize=MAX_MESSAGE_SIZE), 5000)
        await until(lambda: self.far.state == self.side.state == "connected", "the association")
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.side.close()
        await self.far.stop()
        self._pump.cancel()

    def dcep_opens(self) -> list[tuple[bytes, bytes]]:
        """(label, protocol) of every DATA_CHANNEL_OPEN the adapter sent, read by the toolkit's
        crafter with the byte lengths RFC 8832 §5.1 puts in its header."""
        opens = []
        for packet in self.wire:
            for chunk in rtcsctptransport.parse_packet(packet)[3]:
                if isinstance(chunk, rtcsctptransport.DataChunk) and chunk.protocol == DCEP_PPID \
                        and chunk.user_data[:1] == bytes([DATA_CHANNEL_OPEN]):
                    message = DataChannelOpen(chunk.user_data)
                    opens.append((message.label, message.protocol))
        return opens


async def until(predicate, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


def run(coroutine) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 20))


# -- the tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelCase:
    label: str
    protocol: str = ""
    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_life_time: int | None = None

    def parameters(self) -> RTCDataChannelParameters:
        return RTCDataChannelParameters(label=self.label, protocol=self.protocol, ordered=self.ordered,
                                        maxRetransmits=self.max_retransmits,
                                        maxPacketLifeTime=self.max_packet_life_time)


CHANNELS = {
    "reliable": ChannelCase("chat"),
    "protocol": ChannelCase("oai-events", "realtime-json"),
    "unordered-no-retransmits": ChannelCase("fast", ordered=False, max_retransmits=0),
    "lifetime": ChannelCase("timed", max_packet_life_time=150),
    "utf8": ChannelCase("ünïcødé ✓", "chat/π"),  # RFC 8832 §5.1 counts label and protocol in bytes
}
ADOPTED_CHANNELS = {name: case for name, case in CHANNELS.items() if (case.label + case.protocol).isascii()}
"""The cases an aiortc far end can open: aiortc 1.16 itself miscounts a non-ASCII label (see
KNOWN_DIVERGENCES), so the UTF-8 case comes from a crafted DATA_CHANNEL_OPEN instead."""
MESSAGES = ["text", b"\x00binary", "", b"", "é€😀", b"y" * 5000]
"""Text goes as str (PPID 51/56), binary as bytes (PPID 53/57), the empty ones included."""

KNOWN_DIVERGENCES = {
    ("server", "opens", "utf8"): (
        "aiortc 1.16 writes DCEP label/protocol lengths in characters; the probe's adapter rewrites "
        "them in bytes (_ProbeSctp._data_channel_open), the server's does not yet, so a channel it "
        "opens with a non-ASCII label never reaches the client"),
}


def cases(direction: str, channels: dict[str, ChannelCase]):
    """Every side × every channel case, with the known divergences marked."""
    for side in SIDES:
        for name, case in channels.items():
            reason = KNOWN_DIVERGENCES.get((side.name, direction, name))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(side, case, id=f"{side.name}-{name}", marks=marks)


def parameter_chunks() -> dict[int, int]:
    """aiortc's own answer to "which chunks hold a parameter list, and where does it start": every
    chunk class that runs decode_params over (part of) its body."""
    found = {}
    for chunk_class in rtcsctptransport.CHUNK_CLASSES:
        if issubclass(chunk_class, rtcsctptransport.BaseInitChunk):
            found[chunk_class.type] = 16  # initiate tag, a_rwnd, streams, initial TSN
        elif issubclass(chunk_class, rtcsctptransport.BaseParamsChunk):
            found[chunk_class.type] = 0
    return found


def sctp_packet(chunk_type: int, body: bytes) -> bytes:
    """One chunk in a packet with a correct CRC32c, so aiortc's parser gets as far as the chunk."""
    chunk = struct.pack("!BBH", chunk_type, 0, 4 + len(body)) + body + bytes(-len(body) % 4)
    header = struct.pack("!HHL", 5000, 5000, 7)
    checksum = rtcsctptransport.crc32c(header + bytes(4) + chunk)
    return header + struct.pack("<L", checksum) + chunk


def with_parameter(chunk_type: int, fixed: int, parameter_length: int) -> bytes:
    value = b"rtcg" if parameter_length == 8 else b""
    return sctp_packet(chunk_type, bytes(fixed) + struct.pack("!HH", 1, parameter_length) + value)


GUARD_CASES = [
    pytest.param(with_parameter(kind, fixed, length), length < 4, length == 0, id=f"chunk{kind}-parameter-length-{length}")
    for kind, fixed in sorted(parameter_chunks().items())
    for length in (0, 3, 8)
] + [
    pytest.param(sctp_packet(0, struct.pack("!IHHI", 1, 0, 0, DCEP_PPID) + b"\x02"), False, False,
                 id="data-chunk-dcep-ack"),
]
"""(packet, both adapters refuse it, aiortc's parser would spin on it for ever)."""


class _Spinning(Exception):
    pass


def spins(function, *args, budget: int = 20_000) -> bool:
    """Whether `function(*args)` runs more than `budget` lines of Python: how a test sees an
    endless loop without hanging (the trace function stops it)."""
    lines = 0

    def tracer(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
            if lines > budget:
                raise _Spinning
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        function(*args)
    except _Spinning:
        return True
    except ValueError:
        return False  # refused, which is fine
    finally:
        sys.settrace(previous)
    return False


# -- the contract ------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "case"), list(cases("adopts", ADOPTED_CHANNELS)))
def test_a_channel_the_far_end_opens_looks_the_same_through_either_adapter(side, case):
    async def scenario():
        async with Pair(side) as pair:
            far = RTCDataChannel(pair.far, case.parameters())
            await until(lambda: far.readyState == "open" and pair.side.adopted(), "the adapter to adopt the channel")
            (channel,) = pair.side.adopted()
            assert (channel.label, channel.protocol, channel.ordered, channel.stream_id, channel.state) == (
                case.label, case.protocol, case.ordered, far.id, "open")
            for message in MESSAGES:
                far.send(message)
            await until(lambda: len(pair.side.received(channel)) == len(MESSAGES), "every message")
            received = pair.side.received(channel)
            if not case.ordered:
                received, expected = sorted(received, key=repr), sorted(MESSAGES, key=repr)
            else:
                expected = MESSAGES
            assert [(type(m), m) for m in received] == [(type(m), m) for m in expected]

    run(scenario())


@pytest.mark.parametrize("side", SIDES, ids=SIDE_IDS)
def test_a_utf8_channel_opened_as_browsers_open_it_is_adopted_whole_by_either_adapter(side):
    case = CHANNELS["utf8"]
    open_message = bytes(DataChannelOpen(label=case.label.encode(), protocol=case.protocol.encode()))

    async def scenario():
        async with Pair(side) as pair:
            stream_id = 40 if side.role == "server" else 41  # the far end's parity (RFC 8832 §6)
            await pair.far._send(stream_id, DCEP_PPID, open_message)
            await until(pair.side.adopted, "the adapter to adopt the channel")
            (channel,) = pair.side.adopted()
            assert (channel.label, channel.protocol, channel.stream_id, channel.state) == (
                case.label, case.protocol, stream_id, "open")

    run(scenario())


@pytest.mark.parametrize(("side", "case"), list(cases("opens", CHANNELS)))
def test_a_channel_either_adapter_opens_reaches_aiortc_as_opened(side, case):
    async def scenario():
        async with Pair(side) as pair:
            channel = pair.side.open_channel(case)
            await until(pair.dcep_opens, "the DATA_CHANNEL_OPEN")
            assert pair.dcep_opens() == [(case.label.encode(), case.protocol.encode())]
            await until(lambda: pair.far_channels and channel.state == "open", "the channel to open at both ends")
            (far,) = pair.far_channels
            assert (far.label, far.protocol, far.ordered, far.maxRetransmits, far.maxPacketLifeTime) == (
                case.label, case.protocol, case.ordered, case.max_retransmits, case.max_packet_life_time)
            assert channel.stream_id == far.id
            assert channel.stream_id % 2 == (0 if side.role == "client" else 1)  # RFC 8832 §6

    run(scenario())


@pytest.mark.parametrize("side", SIDES, ids=SIDE_IDS)
def test_both_links_are_exactly_what_aiortc_asks_of_its_dtls_transport(side):
    """Record every attribute aiortc reads off the adapter's link through a whole association,
    channels both ways included; the slots leave nothing else to read."""
    async def scenario():
        async with Pair(side) as pair:
            far = RTCDataChannel(pair.far, CHANNELS["reliable"].parameters())
            ours = pair.side.open_channel(CHANNELS["protocol"])
            await until(lambda: pair.side.adopted() and ours.state == "open", "channels both ways")
            far.send("hello")
            await until(lambda: pair.side.received(pair.side.adopted()[0]), "a message")

    with attribute_reads(side.link_class) as touched:
        run(scenario())
    own_reads = {"_send_packet", "_data_receiver"}  # the adapters' own, not aiortc's
    assert touched - own_reads == {"state", "_role", "_register_data_receiver", "_unregister_data_receiver",
                                   "_send_data"}
    assert side.link_class.__slots__ == ("state", "_role", "_data_receiver", "_send_packet")


@pytest.mark.parametrize("side", SIDES, ids=SIDE_IDS)
def test_both_guards_know_every_chunk_whose_parameters_aiortc_decodes(side):
    """Where each adapter looks for parameters is where aiortc 1.16 decodes them: a new chunk type
    in aiortc, or a guard that forgot one, fails here."""
    assert dict(side.parameter_lists) == parameter_chunks()


@pytest.mark.parametrize(("packet", "refused", "aiortc_spins"), GUARD_CASES)
def test_both_guards_refuse_the_same_packets_and_aiortc_parses_the_rest(packet, refused, aiortc_spins):
    """Both adapters refuse a parameter shorter than its own header (RFC 9260 §3.2.1) before aiortc
    sees it: aiortc 1.16's decode_params never advances past a length of 0. When aiortc stops
    spinning on those, both guards can go."""
    assert [side.refuses(packet) for side in SIDES] == [refused] * len(SIDES)
    assert spins(rtcsctptransport.parse_packet, packet) is aiortc_spins
