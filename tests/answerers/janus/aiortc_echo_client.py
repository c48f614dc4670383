"""A real WebRTC offerer (aiortc, full ICE) against a WHIP echo endpoint: proof that it echoes.

It POSTs an aiortc offer (audio sendrecv and a data channel), plays a 440 Hz tone for
`--seconds`, sends a data-channel message, then DELETEs the resource and prints one JSON line:
the connection state reached, how many audio frames came back and their loudness (EchoTest
has no audio of its own, so loud frames back are our tone), and the data-channel echo.
Exit 0 once it printed, 2 on a signaling error (one line on stderr).

Run inside the namespace the server's candidate lives in:
`ip netns exec NAME python tests/answerers/janus/aiortc_echo_client.py http://127.0.0.2:PORT/whip`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time

import aioice.ice
import numpy
from aiortc import MediaStreamError, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from toolkit.interop.audio import FRAME_SAMPLES, SAMPLE_RATE
from toolkit.interop.clients.aiortc_client import PacedAudioTrack
from toolkit.peer import PeerError, whip_delete, whip_post

TONE_HZ = 440
TONE_AMPLITUDE = 8000
PING = "rtcgate-janus-echo"
CONNECT_TIMEOUT = 15.0
WHIP_TIMEOUT = 30.0
"""The shim may take its own 15 s to get Janus's answer."""


class ToneTrack(PacedAudioTrack):
    """A paced 440 Hz mono tone, 20 ms frames."""

    def samples(self, index: int) -> numpy.ndarray:
        t = (numpy.arange(FRAME_SAMPLES) + index * FRAME_SAMPLES) / SAMPLE_RATE
        return (TONE_AMPLITUDE * numpy.sin(2 * math.pi * TONE_HZ * t)).astype(numpy.int16)


async def run(url: str, seconds: float) -> dict:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tone = ToneTrack()
    pc.addTrack(tone)
    channel = pc.createDataChannel("echo")
    echoed_message = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: channel.send(PING))
    channel.on("message", lambda message: echoed_message.done() or echoed_message.set_result(message))
    received = {"frames": 0, "loud": 0}

    @pc.on("track")
    def on_track(track) -> None:
        async def drain() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                samples = frame.to_ndarray().astype(numpy.float64)
                received["frames"] += 1
                received["loud"] += float(numpy.sqrt(numpy.mean(samples ** 2))) > TONE_AMPLITUDE / 10
        asyncio.ensure_future(drain())

    await pc.setLocalDescription(await pc.createOffer())
    answer, location = await whip_post(url, pc.localDescription.sdp, timeout=WHIP_TIMEOUT)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while pc.connectionState not in ("connected", "failed") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    state = pc.connectionState
    await asyncio.sleep(seconds)
    try:
        message = await asyncio.wait_for(asyncio.shield(echoed_message), 2.0)
    except TimeoutError:
        message = None
    channel_state = channel.readyState
    deleted = await whip_delete(location, timeout=WHIP_TIMEOUT)
    await pc.close()
    return {"connection": state, "sent_frames": tone.frames_sent, "received_frames": received["frames"],
            "loud_frames": received["loud"], "datachannel_state": channel_state, "datachannel_echo": message, "delete_status": deleted,
            "answer_setup": sorted({line.split(":", 1)[1] for line in answer.splitlines() if line.startswith("a=setup:")})}


def main() -> None:
    parser = argparse.ArgumentParser(description="aiortc offerer: does the WHIP endpoint echo audio and data?")
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to play the tone once connected")
    parser.add_argument("--host", default="127.0.0.1", help="the only ICE host candidate to gather")
    args = parser.parse_args()
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.host]
    try:
        result = asyncio.run(run(args.url, args.seconds))
    except (PeerError, RuntimeError, KeyError, ValueError) as exc:
        print(f"aiortc-echo-client: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
