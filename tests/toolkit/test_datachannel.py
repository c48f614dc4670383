"""toolkit.peer.shell.datachannel against aiortc's own SCTP association as the far end, in one event loop.

Also the contract with aiortc: the version the adapter was written against, the private parts it
uses, and the two aiortc faults it works around (so a fixed aiortc tells us to drop the workaround).
"""

from __future__ import annotations

import asyncio
import struct

import aiortc
import pytest
from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport
from scapy.packet import Raw

from tests.support.aiortc_link import MemoryLink
from toolkit.crafters.sctp import DataChannelOpen, sctp_packet
from toolkit.peer.shell.datachannel import Association, DataChannelError, zero_length_parameter

pytestmark = pytest.mark.timeout(20)


class Pair:
    """The probe's Association and an aiortc association that echoes every message."""

    def __init__(self, max_message_size: int = 262144) -> None:
        loop = asyncio.get_running_loop()
        self.link = MemoryLink("server")
        self.far = RTCSctpTransport(self.link)
        self.far_channels: list[RTCDataChannel] = []
        self.far.on("datachannel", self._adopt)
        self.probe = Association(self._to_far, now=loop.time, remote_max_message_size=max_message_size)
        self.link.deliver = lambda data: self.probe.receive(data, loop.time())
        self._tasks: list[asyncio.Task] = []

    def _to_far(self, packet: bytes) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self.link.receiver._handle_data(packet)))

    def _adopt(self, channel: RTCDataChannel) -> None:
        self.far_channels.append(channel)
        channel.on("message", channel.send)

    async def __aenter__(self) -> Pair:
        await self.far.start(RTCSctpCapabilities(maxMessageSize=262144), 5000)
        self.probe.start()
        await self.probe.wait_connected(5.0)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.probe.close()
        await self.far.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_channel_opens_with_dcep_and_messages_come_back_as_they_went():
    async def scenario():
        async with Pair() as pair:
            channel = pair.probe.open_channel("chat", protocol="rtcgate.v1")
            await channel.wait_open(2.0)
            assert channel.stream_id % 2 == 0  # the DTLS client's parity (RFC 8832 §6)
            for message in ("text", b"binary", "", b""):
                channel.send(message)
            messages = await channel.wait_messages(4, 2.0)
            assert [m.data for m in messages] == ["text", b"binary", "", b""]
            assert all(m.time >= channel.opened_at for m in messages)
            (far,) = pair.far_channels
            assert (far.label, far.protocol, far.id) == ("chat", "rtcgate.v1", channel.stream_id)
            assert channel.stream_id in pair.probe.acknowledged_streams

    run(scenario())


def test_utf8_labels_and_protocols_arrive_whole():
    async def scenario():
        async with Pair() as pair:
            channel = pair.probe.open_channel("ünïcødé ✓", protocol="chat/π", ordered=False, max_retransmits=0)
            await channel.wait_open(2.0)
            (far,) = pair.far_channels
            assert (far.label, far.protocol, far.ordered, far.maxRetransmits) == ("ünïcødé ✓", "chat/π", False, 0)

    run(scenario())


def test_aiortc_still_counts_dcep_label_lengths_in_characters():
    """The fault `_ProbeSctp._data_channel_open` corrects. When this fails, aiortc counts bytes
    (RFC 8832 §5.1): remove the override."""

    async def scenario():
        sctp = RTCSctpTransport(MemoryLink("server"))
        RTCDataChannel(sctp, RTCDataChannelParameters(label="ü✓", protocol="π"))
        _, _, message = sctp._data_channel_queue[-1]
        assert struct.unpack("!HH", message[8:12]) == (2, 1)  # characters, not the 5 and 2 bytes
        assert message[12:] == "ü✓π".encode()

    run(scenario())


def test_aiortc_version_is_the_one_the_adapter_was_checked_against():
    """The adapter uses aiortc internals (_send, _handle_data, _data_channel_queue, the transport
    slots): re-read it against a new aiortc before raising this pin (pyproject: <1.17)."""
    assert aiortc.__version__.startswith("1.16.")


def test_crafted_messages_go_out_in_the_associations_own_sequence():
    async def scenario():
        async with Pair() as pair:
            keep = pair.probe.open_channel("keep")
            await keep.wait_open(2.0)
            before = pair.probe.next_tsn
            await pair.probe.send_message(40, 50, bytes(DataChannelOpen(label=b"crafted", protocol=b"p")))
            assert pair.probe.next_tsn == (before + 1) & 0xFFFFFFFF
            await pair.probe.wait_for(lambda: 40 in pair.probe.acknowledged_streams, 2.0)
            assert [c.label for c in pair.far_channels] == ["keep", "crafted"]
            keep.send("still in order")
            assert [m.data for m in await keep.wait_messages(1, 2.0)] == ["still in order"]
            assert pair.probe.verification_tag == pair.far._local_verification_tag

    run(scenario())


def test_channels_the_far_end_opens_are_listed():
    async def scenario():
        async with Pair() as pair:
            RTCDataChannel(pair.far, RTCDataChannelParameters(label="from-far", protocol="x"))
            await pair.probe.wait_for(lambda: pair.probe.remote_channels, 2.0)
            (channel,) = pair.probe.remote_channels
            assert (channel.label, channel.protocol, channel.stream_id % 2) == ("from-far", "x", 1)

    run(scenario())


def test_a_message_over_the_far_ends_max_message_size_is_refused():
    async def scenario():
        async with Pair(max_message_size=1000) as pair:
            channel = pair.probe.open_channel("small")
            await channel.wait_open(2.0)
            with pytest.raises(DataChannelError, match="1001 bytes"):
                channel.send(bytes(1001))

    run(scenario())


def test_an_abort_from_the_far_end_closes_the_association():
    async def scenario():
        async with Pair() as pair:
            await pair.far.stop()
            await pair.probe.wait_for(lambda: pair.probe.state == "closed", 2.0)
            assert pair.probe.aborted

    run(scenario())


def heartbeat_with_parameter_length(length: int, tag: int = 7) -> bytes:
    body = struct.pack("!HH", 1, length) + b"rtcg"
    return bytes(sctp_packet(Raw(struct.pack("!BBH", 4, 0, 4 + len(body)) + body), verification_tag=tag))


@pytest.mark.parametrize(("packet", "problem"), [
    (heartbeat_with_parameter_length(0), "chunk type 4 holds a parameter of length 0"),
    (heartbeat_with_parameter_length(3), "chunk type 4 holds a parameter of length 3"),
    (heartbeat_with_parameter_length(8), None),
    (bytes(sctp_packet(Raw(struct.pack("!BBHIIHHI", 1, 0, 24, 1, 65536, 8, 8, 1) + struct.pack("!HH", 0x8000, 0)))),
     "chunk type 1 holds a parameter of length 0"),
    (bytes(sctp_packet(Raw(struct.pack("!BBHIHHI", 0, 3, 17, 1, 0, 0, 50) + b"\x02"))), None),
])
def test_packets_that_would_hang_aiortc_are_recognised(packet, problem):
    assert zero_length_parameter(packet) == problem


def test_a_packet_that_would_hang_aiortc_is_dropped_and_the_association_goes_on():
    async def scenario():
        async with Pair() as pair:
            channel = pair.probe.open_channel("after")
            await channel.wait_open(2.0)
            pair.probe.receive(heartbeat_with_parameter_length(0, pair.probe._sctp._local_verification_tag), 0.0)
            channel.send("alive")
            assert [m.data for m in await channel.wait_messages(1, 2.0)] == ["alive"]
            assert pair.probe.failures == ["24-byte packet dropped unparsed: chunk type 4 holds a parameter of length 0"]

    run(scenario())
