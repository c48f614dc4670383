"""aiortc in the interop matrix: the same scenario as toolkit/interop/js/scenario.mjs, in asyncio.

Run in the project's venv: `python -m toolkit.interop.clients.aiortc_client CONFIG.json`; the
report goes to config["report"]. aioice leaves 127.0.0.1 out of its host addresses, so this
client gathers loopback only (everything stays on the machine). aiortc 1.16 cannot restart ICE
(no restartIce(), no iceRestart offer option): the restart step is reported as unsupported.
"""
from __future__ import annotations

import asyncio
import base64
import fractions
import json
import sys
import time
import traceback
from importlib import metadata
from urllib.parse import urljoin

import aiohttp
import aioice.ice
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from toolkit.interop.gst.scenario_record import (
    BINARY_MESSAGE,
    CONNECT_TIMEOUT,
    DATACHANNEL_MESSAGES,
    Deadline,
    describe_message,
    event_entry,
    now_ms,
)
from toolkit.peer.shell.whip import body_excerpt

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
RESTART_REASON = "aiortc 1.16 has no ICE restart (no restartIce(), no iceRestart offer option)"


async def until(seconds: float, what: str, predicate, every: float = 0.01):
    deadline = Deadline(seconds, what)
    while not (value := predicate()):
        deadline.check()
        await asyncio.sleep(every)
    return value


class PacedAudioTrack(MediaStreamTrack):
    """48 kHz mono 16-bit audio in 20 ms frames, paced in real time like a capture device: the
    first frame when aiortc first asks, then one every 20 ms. `samples(index)` is frame `index`'s
    960 samples; `frames_sent` counts the frames handed out."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.frames_sent = 0
        self._start: float | None = None

    def samples(self, index: int) -> np.ndarray:
        raise NotImplementedError

    async def recv(self) -> av.AudioFrame:
        index = self.frames_sent
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + index * FRAME_SAMPLES / SAMPLE_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        frame = av.AudioFrame.from_ndarray(np.asarray(self.samples(index), dtype=np.int16).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = index * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.frames_sent += 1
        return frame


class Microphone(PacedAudioTrack):
    """Silence until `playing` is set, then the driver's PCM."""

    def __init__(self, pcm: bytes) -> None:
        super().__init__()
        self.pcm = pcm
        self.playing = False
        self._offset = 0

    def samples(self, index: int) -> np.ndarray:
        chunk = bytes(2 * FRAME_SAMPLES)
        if self.playing and self._offset + len(chunk) <= len(self.pcm):
            chunk = self.pcm[self._offset:self._offset + len(chunk)]
            self._offset += len(chunk)
        return np.frombuffer(chunk, dtype="<i2")


class Ear:
    """Pulls the remote track (aiortc decodes only what is pulled) and keeps it while listening."""

    def __init__(self) -> None:
        self.listening = False
        self.chunks: list[bytes] = []
        self.task: asyncio.Task | None = None

    def attach(self, track) -> None:
        self.task = asyncio.ensure_future(self._pull(track))

    async def _pull(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                if self.listening:
                    data = frame.to_ndarray()
                    channels = len(frame.layout.channels)
                    first = data[0] if frame.format.is_planar else data.reshape(-1)[::channels]
                    self.chunks.append(first.astype("<i2").tobytes())
        except MediaStreamError:
            return

    def result(self) -> dict:
        return {"pcm": base64.b64encode(b"".join(self.chunks)).decode(), "sampleRate": SAMPLE_RATE, "channels": 1,
                "heardTrack": self.task is not None}


async def rtp_stats(pc: RTCPeerConnection) -> dict:
    out = {"packetsSent": 0, "packetsReceived": 0}
    for stats in (await pc.getStats()).values():
        if stats.type == "inbound-rtp" and stats.kind == "audio":
            out["packetsReceived"] = stats.packetsReceived
        if stats.type == "outbound-rtp" and stats.kind == "audio":
            out["packetsSent"] = stats.packetsSent
    return out


def watch_states(pc: RTCPeerConnection, record: dict) -> asyncio.Task:
    record["states"] = {"ice": [], "connection": []}

    async def run() -> None:
        while True:
            for name, value in (("ice", pc.iceConnectionState), ("connection", pc.connectionState)):
                entries = record["states"][name]
                if not entries or entries[-1]["state"] != value:
                    entries.append({"state": value, "t": now_ms()})
            await asyncio.sleep(0.01)

    return asyncio.ensure_future(run())


async def connect(pc: RTCPeerConnection, http: aiohttp.ClientSession, url: str, record: dict) -> str:
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers before it returns
    record["offerReady"] = now_ms()
    record["offer"] = pc.localDescription.sdp
    record["posted"] = now_ms()
    async with http.post(url, data=record["offer"], headers={"Content-Type": "application/sdp"}) as response:
        body = await response.text()
        record["answered"] = now_ms()
        record["whipStatus"] = response.status
        if response.status != 201:
            raise RuntimeError(f"WHIP POST answered {response.status}: {body_excerpt(body)}")
        resource = urljoin(url, response.headers["Location"])
    record["answer"] = body
    await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
    record["answerApplied"] = now_ms()
    await until(CONNECT_TIMEOUT, "ICE connected", lambda: pc.iceConnectionState in ("connected", "completed"))
    record["iceConnected"] = now_ms()
    await until(CONNECT_TIMEOUT, "DTLS connected (connectionState connected)", lambda: pc.connectionState == "connected")
    record["dtlsConnected"] = now_ms()
    return resource


async def delete(http: aiohttp.ClientSession, resource: str | None, record: dict) -> None:
    if resource is None:
        return
    try:
        async with http.delete(resource) as response:
            record["deleteStatus"] = response.status
    except aiohttp.ClientError as exc:
        record["deleteError"] = str(exc)


async def echo_phase(config: dict, http: aiohttp.ClientSession) -> dict:
    record: dict = {"t0": now_ms()}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    watcher = watch_states(pc, record)
    resource = None
    try:
        with open(config["pcm"]["echo"], "rb") as source:
            mic = Microphone(source.read())
        sender = pc.addTrack(mic)
        channel = pc.createDataChannel("rtcgate-echo")
        received: list[tuple[int, str | bytes]] = []
        channel.on("message", lambda data: received.append((now_ms(), data)))
        opened: list[int] = []
        channel.on("open", lambda: opened.append(now_ms()))
        ear = Ear()
        pc.on("track", ear.attach)
        resource = await connect(pc, http, config["echoUrl"], record)
        mic.playing = True
        record["micStarted"] = now_ms()
        await until(10, "data channel open", lambda: opened or channel.readyState == "open")
        record["dcOpen"] = opened[0] if opened else now_ms()
        sent = [*DATACHANNEL_MESSAGES, BINARY_MESSAGE]
        record["datachannel"] = {"sent": [describe_message(m) for m in sent], "received": []}
        for message in sent:
            channel.send(message)
        try:
            await until(5, "data channel echo", lambda: len(received) >= len(sent))
        except TimeoutError as exc:
            record["datachannel"]["error"] = str(exc)
        record["datachannel"]["received"] = [describe_message(m) for _, m in received]
        if received:
            record["dcFirstEcho"] = received[0][0]
        first_packet = time.monotonic() + 5
        while (await rtp_stats(pc))["packetsReceived"] == 0 and time.monotonic() < first_packet:
            await asyncio.sleep(0.01)
        if (await rtp_stats(pc))["packetsReceived"]:
            record["firstAudio"] = now_ms()
        else:
            record["audioError"] = "first audio packet back: not within 5000 ms"
        await asyncio.sleep(config["warmupMs"] / 1000)
        ear.listening = True
        await asyncio.sleep(config["listenMs"] / 1000)
        ear.listening = False
        record["audio"] = {**ear.result(), **await rtp_stats(pc)}
        record["transport"] = {"dtlsState": sender.transport.state, "iceState": pc.iceConnectionState}
        record["restart"] = {"supported": False, "reason": RESTART_REASON}
    except Exception:  # noqa: BLE001 — every failure goes into the report
        record["error"] = traceback.format_exc()
    finally:
        watcher.cancel()
        record["finalStates"] = {"ice": pc.iceConnectionState, "connection": pc.connectionState}
        await delete(http, resource, record)
        await pc.close()
    return record


async def voice_phase(config: dict, http: aiohttp.ClientSession) -> dict:
    record: dict = {"t0": now_ms(), "events": []}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    watcher = watch_states(pc, record)
    resource = None
    ear = Ear()

    def on_event(text: str | bytes) -> None:
        entry = event_entry(text)
        record["events"].append(entry)
        if entry["type"] == "response.created":
            ear.listening = True

    def seen(kind: str) -> bool:
        return any(event["type"] == kind for event in record["events"])

    try:
        with open(config["pcm"]["voice"], "rb") as source:
            mic = Microphone(source.read())
        pc.addTrack(mic)
        channel = pc.createDataChannel("oai-events")
        channel.on("message", on_event)
        pc.on("track", ear.attach)
        resource = await connect(pc, http, config["voiceUrl"], record)
        await until(10, "session.created", lambda: seen("session.created"))
        mic.playing = True
        record["micStarted"] = now_ms()
        await until(config["voiceTurnMs"] / 1000, "response.done", lambda: seen("response.done"), 0.02)
        await asyncio.sleep(config["lingerMs"] / 1000)
        ear.listening = False
        record["responseAudio"] = {**ear.result(), **await rtp_stats(pc)}
    except Exception:  # noqa: BLE001
        record["error"] = traceback.format_exc()
    finally:
        watcher.cancel()
        await delete(http, resource, record)
        await pc.close()
    return record


async def scenario(config: dict) -> dict:
    report = {"client": f"aiortc {metadata.version('aiortc')}", "started": now_ms()}
    async with aiohttp.ClientSession() as http:
        if config.get("echoUrl"):
            report["echo"] = await echo_phase(config, http)
        if config.get("voiceUrl"):
            report["voice"] = await voice_phase(config, http)
    report["ended"] = now_ms()
    return report


def main() -> int:
    with open(sys.argv[1]) as source:
        config = json.load(source)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    report = asyncio.run(scenario(config))
    with open(config["report"], "w") as out:
        json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
