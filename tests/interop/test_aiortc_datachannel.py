"""aiortc's data channels against the reference server over WHIP: SCTP over DTLS with DCEP.

Until the voice loop lands, the server echoes every data-channel message on the channel it
came on, with its type, so a client that gets its own messages back proves the DCEP open,
SCTP over the shared port's DTLS, fragmentation and reassembly, and both delivery modes.
"""
from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from toolkit.peer import whip_delete, whip_post

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("loopback_aiortc")]

TIMEOUT = 15.0
LARGE = 100_000  # > 64 KiB: about 85 SCTP fragments each way


def messages(label: str) -> list[str | bytes]:
    return [
        f"{label}: hello",
        b"\x00\x01binary\xff" + label.encode(),
        "",
        b"",
        "é€😀" * 30,
        bytes(range(256)) * (LARGE // 256 + 1),
        "x" * LARGE,
    ]


async def wait_open(channel: RTCDataChannel) -> None:
    opened = asyncio.Event()
    channel.on("open", opened.set)
    if channel.readyState != "open":
        await opened.wait()


async def echo_round(whip_url: str) -> dict[str, list[str | bytes]]:
    """Open two channels, send each its messages, and collect what comes back on each."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    channels = [pc.createDataChannel("oai-events"), pc.createDataChannel("unordered", ordered=False)]
    received: dict[str, list[str | bytes]] = {channel.label: [] for channel in channels}
    done = asyncio.Event()
    expected = sum(len(messages(channel.label)) for channel in channels)

    def collector(label: str):
        def on_message(data: str | bytes) -> None:
            received[label].append(data)
            if sum(map(len, received.values())) == expected:
                done.set()
        return on_message

    for channel in channels:
        channel.on("message", collector(channel.label))
    try:
        await pc.setLocalDescription(await pc.createOffer())
        answer, location = await whip_post(whip_url, pc.localDescription.sdp)
        assert "m=application 0 " not in answer, "the server rejected the data channel"
        assert "a=sctp-port:5000" in answer and "a=max-message-size:262144" in answer
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        try:
            await asyncio.wait_for(asyncio.gather(*(wait_open(c) for c in channels)), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"channels not open after {TIMEOUT} s: "
                                 f"{[(c.label, c.readyState) for c in channels]}, "
                                 f"SCTP {pc.sctp.state}, connection {pc.connectionState}") from None
        for channel in channels:
            for message in messages(channel.label):
                channel.send(message)
        try:
            await asyncio.wait_for(done.wait(), TIMEOUT)
        except TimeoutError:
            got = {label: len(items) for label, items in received.items()}
            raise AssertionError(f"{got} of {expected} messages echoed after {TIMEOUT} s") from None
        assert await whip_delete(location) == 200
    finally:
        await pc.close()
    return received


def typed(items: list[str | bytes]) -> list[tuple[type, str | bytes]]:
    return [(type(item), item) for item in items]


@pytest.mark.timeout(120)
def test_messages_come_back_on_their_channel_with_their_type_three_times_in_a_row(rtcgate_server):
    for _ in range(3):
        received = asyncio.run(echo_round(rtcgate_server.whip_url))
        # Ordered: the same messages, same types, same order.
        assert typed(received["oai-events"]) == typed(messages("oai-events"))
        # Unordered: the same messages and types, in any order.
        sent = typed(messages("unordered"))
        assert sorted(typed(received["unordered"]), key=repr) == sorted(sent, key=repr)
