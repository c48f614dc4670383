"""The data-channel adapter: contract tests pinning the aiortc surface it relies on, then the
adapter itself against an aiortc SCTP transport in the client role, joined in memory."""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import struct

import aiortc
import pytest
from aiortc import rtcsctptransport
from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport

from reference_server.sdp import AnswerParams
from reference_server.shell import datachannel_echo
from reference_server.shell.datachannel import (
    LOCAL_SCTP_PORT,
    MAX_QUEUED_PACKETS,
    MAX_SCTP_PACKET,
    REMOTE_DEFAULT_MAX_MESSAGE_SIZE,
    Channel,
    DataChannelAssociation,
    DataChannelError,
    _DtlsLink,
)
from tests.support.aiortc_link import MemoryLink, attribute_reads

WAIT = 5.0
LARGE = 100_000
DCEP, STRING, BINARY = 50, 51, 53


def run(test):
    """Run an async test in its own event loop (aiortc's timers need a real one)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(asyncio.wait_for(test(*args, **kwargs), 20))
    return wrapper


def with_peers(test):
    """Run an async test (as `run` does) with connected Peers as its first argument; they are
    closed after it, however it ends."""
    async def scenario(*args, **kwargs):
        peers = Peers()
        await peers.connect()
        try:
            await test(peers, *args, **kwargs)
        finally:
            await peers.close()

    wrapper = run(functools.wraps(test)(scenario))
    wrapper.__signature__ = inspect.Signature(list(inspect.signature(test).parameters.values())[1:])
    return wrapper


async def until(predicate, what: str) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.001)
    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Peers:
    """Our association (the DTLS server's side) and aiortc's RTCSctpTransport as the client."""

    def __init__(self, **kwargs) -> None:
        self.server_packets: list[bytes] = []
        self.session_alive = True
        self.opened: list[Channel] = []
        self.closed: list[Channel] = []
        self.received: list[tuple[Channel, str | bytes]] = []
        kwargs.setdefault("remote_max_message_size", 262144)  # what aiortc and browsers offer
        self.server = DataChannelAssociation(self._server_sends, **kwargs)
        self.server.on_open = self.opened.append
        self.server.on_close = self.closed.append
        self.server.on_message = lambda channel, data: self.received.append((channel, data))
        self.client_link = MemoryLink("client", self.server.receive)
        self.client = RTCSctpTransport(self.client_link)
        self.client_channels: list[RTCDataChannel] = []
        self.client.on("datachannel", self.client_channels.append)
        self._client_inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._pump: asyncio.Task | None = None

    def _server_sends(self, packet: bytes) -> bool:
        self.server_packets.append(packet)
        if self.session_alive:
            self._client_inbox.put_nowait(packet)
        return self.session_alive

    async def _pump_client(self) -> None:
        while True:
            packet = await self._client_inbox.get()
            if self.client_link.receiver is not None:
                try:
                    await self.client_link.receiver._handle_data(packet)
                except AssertionError:  # the DCEP ack for a channel a test opened behind aiortc's back
                    pass

    async def connect(self) -> None:
        self._pump = asyncio.get_running_loop().create_task(self._pump_client())
        await self.client.start(RTCSctpCapabilities(maxMessageSize=262144), LOCAL_SCTP_PORT)
        await until(lambda: self.client.state == self.server.state == "connected", "the association")

    async def client_channel(self, label: str, **parameters) -> RTCDataChannel:
        channel = RTCDataChannel(self.client, RTCDataChannelParameters(label=label, **parameters))
        await until(lambda: channel.readyState == "open", f"channel {label!r} to open")
        await until(lambda: any(c.label == label for c in self.opened), f"the server to see {label!r}")
        return channel

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        await self.client.stop()
        self._pump.cancel()


def collect(channel: RTCDataChannel) -> list[str | bytes]:
    messages: list[str | bytes] = []
    channel.on("message", messages.append)
    return messages


def dcep_open(label: bytes, protocol: bytes = b"", channel_type: int = 0, *, label_length: int | None = None) -> bytes:
    """A DATA_CHANNEL_OPEN message (RFC 8832 §5.1)."""
    length = len(label) if label_length is None else label_length
    return struct.pack("!BBHLHH", 3, channel_type, 0, 0, length, len(protocol)) + label + protocol


def chunk_types(packet: bytes) -> list[int]:
    return [chunk.type for chunk in rtcsctptransport.parse_packet(packet)[3]]


# --- contract: the aiortc surface the adapter relies on -------------------------------------


def parameters(function) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


def test_aiortc_is_the_pinned_version():
    assert aiortc.__version__.split(".")[:2] == ["1", "16"], (
        f"aiortc {aiortc.__version__}: the adapter is pinned to 1.16; re-check this file's contract tests, "
        "then move the pin in pyproject.toml")


def test_sctp_transport_methods_the_adapter_calls():
    empty = inspect.Parameter.empty
    assert parameters(RTCSctpTransport.__init__) == [("self", empty), ("transport", empty), ("port", 5000)]
    assert parameters(RTCSctpTransport.start) == [("self", empty), ("remoteCaps", empty), ("remotePort", empty)]
    assert parameters(RTCSctpTransport.stop) == [("self", empty)]
    assert parameters(RTCSctpTransport._handle_data) == [("self", empty), ("data", empty)]
    for coroutine in (RTCSctpTransport.start, RTCSctpTransport.stop, RTCSctpTransport._handle_data):
        assert inspect.iscoroutinefunction(coroutine), coroutine
    assert isinstance(inspect.getattr_static(RTCSctpTransport, "state"), property)
    # The receive window the adapter watches: bytes aiortc may still buffer, never enforced by it.
    # The next TSN to assign, which bounds what a SACK may acknowledge (the adapter's pre-check).
    async def fresh_transport() -> RTCSctpTransport:  # aiortc binds the running loop at construction
        return RTCSctpTransport(_DtlsLink(lambda packet: True, "server"))

    transport = asyncio.run(fresh_transport())
    assert transport._advertised_rwnd == 1024 * 1024
    assert isinstance(transport._local_tsn, int) and transport._local_tsn < 1 << 32
    assert callable(RTCSctpTransport.on)  # pyee: the "datachannel" event


def test_data_channel_surface_the_adapter_uses():
    empty = inspect.Parameter.empty
    assert parameters(RTCDataChannel.__init__) == [
        ("self", empty), ("transport", empty), ("parameters", empty), ("send_open", True)]
    assert parameters(RTCDataChannel.send) == [("self", empty), ("data", empty)]
    assert parameters(RTCDataChannel.close) == [("self", empty)]
    for name in ("label", "protocol", "ordered", "negotiated", "id", "readyState", "maxRetransmits",
                 "maxPacketLifeTime", "transport"):
        assert isinstance(inspect.getattr_static(RTCDataChannel, name), property), name
    fields = {f.name for f in dataclasses.fields(RTCDataChannelParameters)}
    assert {"label", "protocol", "ordered", "maxRetransmits", "maxPacketLifeTime", "negotiated", "id"} <= fields
    assert [f.name for f in dataclasses.fields(RTCSctpCapabilities)] == ["maxMessageSize"]


def test_packet_size_and_the_answers_sctp_parameters_match_aiortc():
    # core.DATACHANNEL_DTLS_MTU is sized for this (tests/reference_server/test_core_datachannel.py).
    assert rtcsctptransport.SCTP_MAX_PACKET_LENGTH == MAX_SCTP_PACKET
    assert rtcsctptransport.REMOTE_DEFAULT_MAX_MESSAGE_SIZE == REMOTE_DEFAULT_MAX_MESSAGE_SIZE
    answer = AnswerParams(ice_ufrag="", ice_pwd="", fingerprint="", address="", port=0, session_id=0)
    assert answer.sctp_port == LOCAL_SCTP_PORT
    assert answer.max_message_size == RTCSctpTransport.getCapabilities().maxMessageSize


def test_aiortc_asks_its_dtls_transport_for_exactly_what_the_link_provides():
    """Wrap the link so every attribute aiortc reads is recorded, and run a whole association."""
    async def scenario():
        peers = Peers()
        await peers.connect()
        datachannel_echo.attach("s", peers.server)
        channel = await peers.client_channel("oai-events")
        echoed = collect(channel)
        channel.send(b"x" * LARGE)
        await until(lambda: echoed, "the echo")
        peers.server.close_channel(peers.server.channels[0])
        await until(lambda: channel.readyState == "closed", "the stream reset")
        await peers.close()

    with attribute_reads(_DtlsLink) as touched:
        asyncio.run(asyncio.wait_for(scenario(), 20))
    aiortc_reads = touched - {"_send_packet", "_data_receiver"}  # the adapter's own reads
    assert aiortc_reads == {"state", "_role", "_register_data_receiver", "_unregister_data_receiver", "_send_data"}
    with pytest.raises(AttributeError):
        _DtlsLink(lambda packet: True, "server").transport  # slots: nothing else exists to be read


# --- the adapter -------------------------------------------------------------------------


@with_peers
async def test_client_opened_channel_reaches_the_server_with_label_and_protocol(peers):
    channel = await peers.client_channel("oai-events", protocol="realtime-json")
    [server_side] = peers.opened
    assert (server_side.label, server_side.protocol, server_side.ordered, server_side.negotiated) == (
        "oai-events", "realtime-json", True, False)
    assert server_side.stream_id == channel.id and channel.id % 2 == 0  # the DTLS client's ids are even
    assert server_side.state == "open" and peers.server.channels == [server_side]


@with_peers
async def test_echo_keeps_type_order_and_size_on_an_ordered_channel(peers):
    datachannel_echo.attach("session", peers.server)
    channel = await peers.client_channel("oai-events")
    echoed = collect(channel)
    sent = ["text", b"\x00binary", "", b"", "é€😀", b"y" * LARGE, "z" * LARGE]
    for message in sent:
        channel.send(message)
    await until(lambda: len(echoed) == len(sent), "all echoes")
    assert [(type(m), m) for m in echoed] == [(type(m), m) for m in sent]
    assert max(map(len, peers.server_packets)) <= MAX_SCTP_PACKET


@with_peers
async def test_unordered_and_partially_reliable_channels_keep_their_parameters(peers):
    datachannel_echo.attach("session", peers.server)
    unordered = await peers.client_channel("fast", ordered=False, maxRetransmits=0)
    await peers.client_channel("timed", maxPacketLifeTime=150)
    fast, lifetime = peers.opened
    assert (fast.ordered, fast.max_retransmits, fast.max_packet_life_time) == (False, 0, None)
    assert (lifetime.ordered, lifetime.max_retransmits, lifetime.max_packet_life_time) == (True, None, 150)
    echoed = collect(unordered)
    for i in range(20):
        unordered.send(f"m{i}")
    await until(lambda: len(echoed) == 20, "unordered echoes")
    assert sorted(echoed) == sorted(f"m{i}" for i in range(20))


@with_peers
async def test_server_opens_a_channel_with_dcep_on_an_odd_stream(peers):
    channel = peers.server.create_channel("server-events", protocol="p1", ordered=False)
    assert channel.state == "connecting"
    await until(lambda: channel.state == "open", "the DCEP ack")
    assert peers.opened == [channel] and channel.stream_id % 2 == 1
    [client_side] = peers.client_channels
    assert (client_side.label, client_side.protocol, client_side.ordered) == ("server-events", "p1", False)
    got = collect(client_side)
    peers.server.send("server-events", "by label")
    peers.server.send(channel, b"by handle")
    await until(lambda: len(got) == 2, "server messages")
    assert sorted(got, key=repr) == sorted(["by label", b"by handle"], key=repr)


@with_peers
async def test_negotiated_channel_works_without_dcep(peers):
    server_side = peers.server.create_channel("oai-events", negotiated_id=4)
    assert server_side.negotiated and server_side.stream_id == 4 and peers.opened == [server_side]
    client_side = RTCDataChannel(peers.client, RTCDataChannelParameters(label="oai-events", negotiated=True, id=4))
    got = collect(client_side)
    client_side.send("up")
    peers.server.send(server_side, "down")
    await until(lambda: got and peers.received, "both directions")
    assert got == ["down"] and peers.received == [(server_side, "up")]
    assert not peers.client_channels  # no DCEP open went out


@run
async def test_refused_calls_say_why():
    peers = Peers(remote_max_message_size=1000)
    await peers.connect()
    channel = await peers.client_channel("oai-events")
    server_side = peers.opened[0]
    server = peers.server
    cases = [
        (lambda: server.send("nope", "x"), "no open data channel labelled 'nope'"),
        (lambda: server.send(server_side, 42), "a data channel message is str or bytes, not int"),
        (lambda: server.send(server_side, "é" * 501),
         "message of 1002 bytes is larger than the peer's a=max-message-size of 1000 bytes"),
        (lambda: server.create_channel("x", max_retransmits=1, max_packet_life_time=1),
         "a data channel has max_retransmits or max_packet_life_time, not both"),
        (lambda: server.create_channel("x", negotiated_id=65535),
         "negotiated_id 65535 is not a stream id from 0 to 65534"),
        (lambda: server.create_channel("x", negotiated_id=channel.id),
         f"stream {channel.id} already carries a data channel"),
        (lambda: server.create_channel("x" * 65536), "data channel label is longer than 65535 bytes"),
    ]
    for call, message in cases:
        with pytest.raises(DataChannelError) as caught:
            call()
        assert str(caught.value) == message
    server.send(server_side, "é" * 500)  # exactly the limit
    await peers.close()
    with pytest.raises(DataChannelError, match="^data channel 'oai-events' is closed or not this association's$"):
        server.send(server_side, "late")
    with pytest.raises(DataChannelError, match="^cannot open data channel 'x': the association is closed$"):
        server.create_channel("x")


@run
async def test_offers_without_max_message_size_get_the_rfc_default():
    assert DataChannelAssociation(lambda p: True).remote_max_message_size == 65536
    association = DataChannelAssociation(lambda p: True, remote_max_message_size=0)
    association.close()
    await association.wait_closed()


@with_peers
async def test_closing_a_channel_from_either_side_reaches_on_close(peers):
    by_client = await peers.client_channel("a")
    by_server = await peers.client_channel("b")
    first, second = peers.opened
    by_client.close()
    await until(lambda: peers.closed == [first], "the client's close")
    assert peers.server.channels == [second]
    peers.server.close_channel(second)
    assert second.state == "closing"
    await until(lambda: peers.closed == [first, second], "the server's close")
    await until(lambda: by_server.readyState == "closed", "the client to see the server's close")
    assert peers.server.channels == []
    with pytest.raises(DataChannelError, match="^data channel 'b' is closed or not this association's$"):
        peers.server.close_channel(second)


@with_peers
async def test_closing_the_association_aborts_it_and_closes_every_channel(peers):
    channel = await peers.client_channel("oai-events")
    peers.server.close()
    peers.server.close()  # idempotent
    await peers.server.wait_closed()
    assert peers.server.state == "closed"
    assert chunk_types(peers.server_packets[-1]) == [6]  # ABORT
    assert peers.closed == peers.opened and peers.server.channels == []
    await until(lambda: channel.readyState == "closed", "the client to see the abort")
    peers.server.receive(b"ignored after close")


@with_peers
async def test_a_gone_session_stops_the_sending(peers):
    peers.session_alive = False
    sent = len(peers.server_packets)
    peers.server.create_channel("late")
    await asyncio.sleep(0.05)
    assert len(peers.server_packets) == sent + 1  # the DCEP open went to a dead session, then nothing
    peers.server.close()
    await peers.server.wait_closed()
    assert len(peers.server_packets) == sent + 1  # not even the ABORT


@with_peers
async def test_malformed_packets_and_dcep_are_counted_and_the_association_carries_on(peers):
    datachannel_echo.attach("session", peers.server)
    channel = await peers.client_channel("oai-events")
    echoed = collect(channel)
    client = peers.client
    peers.server.receive(b"\x13" * 40)  # bad checksum: aiortc ignores it
    await client._send(channel.id, DCEP, dcep_open(b"oai-events"))  # open on an open stream
    await client._send(10, DCEP, dcep_open(b"\xff\xfe"))  # label not UTF-8
    await client._send(12, DCEP, struct.pack("!B", 2))  # ACK for a stream never opened
    await client._send(14, DCEP, dcep_open(b"short", label_length=4000))  # label length past the payload
    await client._send(16, DCEP, dcep_open(b"odd-type", channel_type=0x7F))  # unknown channel type
    await client._send(18, DCEP, b"\x03")  # truncated open: ignored
    await client._send(20, BINARY, b"no channel on stream 20")  # ignored
    await until(lambda: peers.server.malformed_packets >= 3, "malformed packets to be counted")
    channel.send("still here")
    await until(lambda: echoed, "an echo after the bad input")
    assert echoed == ["still here"]
    assert peers.server.malformed_packets == 3
    assert {c.label for c in peers.server.channels} >= {"oai-events", "short", "odd-type"}


@with_peers
async def test_a_raising_callback_is_logged_and_the_next_message_still_arrives(peers, caplog):
    calls: list[str | bytes] = []

    def flaky(channel, data):
        calls.append(data)
        if data == "boom":
            raise RuntimeError("handler bug")

    peers.server.on_message = flaky
    channel = await peers.client_channel("oai-events")
    channel.send("boom")
    channel.send("fine")
    await until(lambda: len(calls) == 2, "both messages")
    assert calls == ["boom", "fine"]
    assert "data channel callback" in caplog.text and "handler bug" in caplog.text


@run
async def test_a_flood_beyond_the_queue_is_dropped_not_buffered():
    association = DataChannelAssociation(lambda packet: True)
    for _ in range(MAX_QUEUED_PACKETS + 5):
        association.receive(b"\0" * 20)  # no await: the association has not run yet
    assert association.dropped_packets == 5
    association.close()
    await association.wait_closed()


@with_peers
async def test_a_message_that_never_ends_overruns_the_window_and_aborts_the_association(peers):
    channel = await peers.client_channel("oai-events")
    client = peers.client
    window = peers.server._sctp._advertised_rwnd  # aiortc's receive window: 1 MiB
    for i in range(window // 1000 + 2):  # fragments of one message, the last never sent
        chunk = rtcsctptransport.DataChunk()
        chunk.flags = rtcsctptransport.SCTP_DATA_FIRST_FRAG if i == 0 else 0
        chunk.tsn, chunk.stream_id, chunk.stream_seq, chunk.protocol = client._local_tsn, channel.id, 0, BINARY
        chunk.user_data = bytes(1000)
        client._local_tsn = rtcsctptransport.tsn_plus_one(client._local_tsn)
        await client._send_chunk(chunk)
        if i % 100 == 0:  # let the server keep up: a flood past its queue would only be dropped
            await until(lambda: peers.server._inbox.empty(), "the server to take in the flood")
    await peers.server.wait_closed()
    assert peers.server.overrun and peers.server.state == "closed"
    assert chunk_types(peers.server_packets[-1]) == [6]  # ABORT
    assert peers.received == []


@pytest.mark.parametrize("chunk", [
    bytes([4, 0, 0, 8]) + bytes([0, 1, 0, 0]),  # HEARTBEAT with a zero-length parameter
    bytes([9, 0, 0, 8]) + bytes([0, 1, 0, 0]),  # ERROR with a zero-length cause
    bytes([1, 0, 0, 24]) + bytes(16) + bytes([0, 5, 0, 0]),  # INIT with a zero-length parameter
])
def test_zero_length_parameters_are_dropped_before_aiortc_loops_on_them(chunk):
    """aiortc 1.16's decode_params never advances past a length-0 parameter: the server would hang."""
    from reference_server.shell.datachannel import _has_short_parameter

    packet = bytes(12) + chunk
    assert _has_short_parameter(packet)
    assert not _has_short_parameter(bytes(12) + bytes([4, 0, 0, 12]) + bytes([0, 1, 0, 8]) + b"beat")

    async def scenario():
        association = DataChannelAssociation(lambda p: True)
        association.receive(packet)
        assert association.malformed_packets == 1
        association.close()
        await asyncio.wait_for(association.wait_closed(), 5)

    asyncio.run(scenario())


def sack_packet(cumulative_tsn: int, gaps: list[tuple[int, int]], *, block_count: int | None = None) -> bytes:
    """Common header (checksum not needed by the pre-check) and one SACK chunk (RFC 9260 §3.3.4)."""
    blocks = b"".join(struct.pack("!HH", start, end) for start, end in gaps)
    count = len(gaps) if block_count is None else block_count
    return bytes(12) + struct.pack("!BBHIIHH", 3, 0, 16 + len(blocks), cumulative_tsn, 65536, count, 0) + blocks


@pytest.mark.parametrize("packet, overreaches", [
    (sack_packet(99, []), False),  # everything up to TSN 99 acknowledged, 100 comes next
    (sack_packet(89, [(2, 3), (5, 10)]), False),  # 90..99 in flight, blocks inside, ascending
    (sack_packet(100, []), True),  # acknowledges TSN 100, never sent
    (sack_packet(89, [(0, 3)]), True),  # a block starting at the cumulative ack itself
    (sack_packet(89, [(5, 3)]), True),  # start after end
    (sack_packet(89, [(5, 6), (2, 3)]), True),  # descending
    (sack_packet(89, [(2, 5), (5, 6)]), True),  # overlapping
    (sack_packet(89, [(2, 11)]), True),  # reaches TSN 100
    (sack_packet(89, [(1, 65535)] * 2), True),  # the amplifier: 131070 TSNs walked per packet
    (sack_packet(89, [(1, 2)], block_count=40), False),  # count past the chunk: aiortc refuses the chunk
    (bytes(12) + bytes([4, 0, 0, 8]) + struct.pack("!HH", 0, 4), False),  # not a SACK
])
def test_sacks_that_acknowledge_unsent_tsns_or_misorder_their_gap_blocks_are_caught(packet, overreaches):
    from reference_server.shell.datachannel import _sack_overreaches

    assert _sack_overreaches(packet, 100) is overreaches


@with_peers
async def test_a_sack_whose_gap_blocks_span_unsent_tsns_never_reaches_aiortc(peers):
    """Fuzzing regression (sctp_dcep, corpora/regressions/sctp_dcep/): aiortc 1.16 walks every TSN
    a gap block spans before checking it; 290 blocks of 1..65535 held the event loop over a second."""
    channel = await peers.client_channel("oai-events")
    echoed = collect(channel)
    datachannel_echo.attach("session", peers.server)
    sctp = peers.server._sctp
    walked: list[object] = []
    handle_sack = sctp._receive_sack_chunk

    async def spy(chunk) -> None:
        walked.append(chunk)
        await handle_sack(chunk)

    sctp._receive_sack_chunk = spy
    sack = rtcsctptransport.SackChunk()
    sack.cumulative_tsn = rtcsctptransport.tsn_minus_one(sctp._local_tsn)
    sack.advertised_rwnd = 65536
    sack.gaps = [(1, 65535)] * 290
    packet = rtcsctptransport.serialize_packet(LOCAL_SCTP_PORT, LOCAL_SCTP_PORT, sctp._local_verification_tag, sack)
    peers.server.receive(packet)
    await until(lambda: peers.server.malformed_packets == 1, "the SACK to be refused")
    assert walked == []
    channel.send("still here")
    await until(lambda: echoed, "an echo after the SACK")
    assert echoed == ["still here"] and walked  # the client's own SACKs still reach aiortc
