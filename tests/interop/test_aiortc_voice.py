"""aiortc holds a spoken conversation with the reference server in voice mode, over WHIP on loopback.

The client's microphone is a track that plays the shipped speech sample when told to, and
silence otherwise; the `oai-events` data channel is created before the offer. The script:
1. after session.created: 0.5 s of silence, the whole sample (≈ 4 s, long enough to earn a
   get_weather call), then silence: response 1 plays 1 burst of 440 Hz, calls the function,
   and plays its 660 Hz tail;
2. the call is answered (conversation.item.create function_call_output) the moment it arrives,
   while the tail is still playing, and response.create follows response 1's response.done:
   response 2 plays 2 bursts of 440 Hz, then 3 of 880 Hz (the output is 32 characters long);
3. once the client hears response 2's tail, it says "Hello there." over it (barge-in):
   response 2 ends cancelled, and response 3 answers the new turn with 3 bursts and a tail.

The client timestamps every received RTP packet (a tap on the receiver) and decodes its Opus
payload with PyAV itself, so "audio stopped" is measured on packets, not on aiortc's playout.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from tests.interop.tones import FRAME_SAMPLES, SAMPLE_RATE, first_channel
from tests.interop.voice_support import (
    BARGE_IN_STOP,
    EDGE_TOLERANCE_MS,
    EVENT_SLACK,
    FUNCTION_OUTPUT,
    TAIL_FRAMES,
    TAIL_HZ,
    burst_pattern,
    expected_pattern,
    first_sentence,
    frame_tone,
    histogram_counts,
    silence,
    speech,
    speech_edges,
    tone_runs,
    voice_server,  # noqa: F401  (a fixture)
)
from toolkit.interop.clients.aiortc_client import PacedAudioTrack
from toolkit.peer import whip_delete, whip_post

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("loopback_aiortc")]

FRAME_BYTES = 2 * FRAME_SAMPLES
LEAD_SECONDS = 0.5
CONNECT_TIMEOUT = 15.0
TURN_TIMEOUT = 15.0
BARGE_IN_AFTER_TAIL_FRAMES = 5  # say "Hello there." 100 ms into response 2's tail
LINGER = 0.3  # s after the last response.done, so a late packet of a cancelled response would show
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}


class Microphone(PacedAudioTrack):
    """Plays what it is given, in order, then silence; paced in real time like a capture device.

    Sample k of what it plays is sample k of the server's input timeline: aiortc starts pulling
    frames only once DTLS is up, and loopback loses nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []  # time.monotonic() when each 20 ms frame went to the sender
        self._queued = bytearray()

    def play(self, pcm: np.ndarray) -> int:
        """Queue `pcm`; returns the sample index at which it will start."""
        start = self.frames_sent * FRAME_SAMPLES + len(self._queued) // 2
        self._queued += pcm.astype("<i2").tobytes()
        return start

    def sent_time(self, sample: int) -> float:
        return self.sent_at[sample // FRAME_SAMPLES]

    def samples(self, index: int) -> np.ndarray:
        chunk = bytes(self._queued[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
        del self._queued[:FRAME_BYTES]
        self.sent_at.append(time.monotonic())
        return np.frombuffer(chunk, dtype="<i2")


@dataclass(slots=True, frozen=True)
class Heard:
    """One RTP packet from the server, as it arrived."""
    at: float  # time.monotonic()
    timestamp: int
    marker: bool
    tone: int | None


def talkspurts(heard: list[Heard]) -> list[list[Heard]]:
    """Packets split where the RTP timestamp stops advancing by one frame (or a marker says so)."""
    spurts: list[list[Heard]] = []
    for packet in heard:
        if spurts and not packet.marker and packet.timestamp == (spurts[-1][-1].timestamp + FRAME_SAMPLES) % 2 ** 32:
            spurts[-1].append(packet)
        else:
            spurts.append([packet])
    return spurts


@dataclass
class Conversation:
    """Everything the client saw, on its own monotonic clock."""
    mic: Microphone
    events: list[tuple[float, dict]] = field(default_factory=list)
    heard: list[Heard] = field(default_factory=list)
    sent: list[tuple[float, dict]] = field(default_factory=list)
    speech_at: int = 0  # sample index where the full sample starts
    barge_in_at: int | None = None  # sample index where "Hello there." starts
    frames_played: int = 0  # frames aiortc's own receive pipeline decoded
    metrics: str = ""
    delete_status: int | None = None

    def of_type(self, event_type: str) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in self.events if e["type"] == event_type]

    def timeline(self) -> str:
        """The events and talkspurts in arrival order, for failure messages."""
        origin = self.mic.sent_at[0] if self.mic.sent_at else 0.0
        lines = [f"{t - origin:7.3f}  <- {e['type']} {_brief(e)}" for t, e in self.events]
        lines += [f"{t - origin:7.3f}  -> {e['type']}" for t, e in self.sent]
        for spurt in talkspurts(self.heard):
            runs = tone_runs([p.tone for p in spurt])
            lines.append(f"{spurt[0].at - origin:7.3f}  audio {len(spurt)} packets until "
                         f"{spurt[-1].at - origin:.3f}: {runs}")
        for name, at in (("speech", self.speech_at), ("barge-in", self.barge_in_at)):
            if at is not None and at // FRAME_SAMPLES < len(self.mic.sent_at):
                lines.append(f"{self.mic.sent_time(at) - origin:7.3f}  mic starts {name} (sample {at})")
        return "\n".join(sorted(lines, key=lambda line: float(line.split()[0])))


def _brief(event: dict) -> str:
    keys = ("audio_start_ms", "audio_end_ms", "call_id", "arguments", "response_id", "error")
    shown = {k: event[k] for k in keys if k in event}
    if "response" in event:
        response = event["response"]
        shown["response"] = (response["id"], response["status"], response.get("status_details"))
    return json.dumps(shown) if shown else ""


class Client:
    """The aiortc side: the peer connection, the events channel, and what it hears."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.log = Conversation(Microphone())
        self.pc.addTrack(self.log.mic)
        self.channel = self.pc.createDataChannel("oai-events")
        self.channel.on("message", self._on_message)
        self.changed = asyncio.Event()
        self._decoder = av.CodecContext.create("libopus", "r")
        self._decoder.sample_rate = SAMPLE_RATE
        self._decoder.layout = "mono"
        receiver = self.pc.getTransceivers()[0].receiver
        self.pc.on("track", lambda track: asyncio.ensure_future(self._play(track)))
        # A tap in front of aiortc's receiver (aiortc 1.16): every packet, timed as it arrives.
        deliver = receiver._handle_rtp_packet

        async def tap(packet, arrival_time_ms: int) -> None:
            self._hear(packet)
            await deliver(packet, arrival_time_ms)

        receiver._handle_rtp_packet = tap

    def send(self, event: dict) -> None:
        self.log.sent.append((time.monotonic(), event))
        self.channel.send(json.dumps(event))

    async def until(self, condition, timeout: float, what: str):
        """Wait for `condition()` to turn truthy as events and packets arrive; returns its value."""
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            self.changed.clear()
            left = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self.changed.wait(), max(left, 0))
            except TimeoutError:
                raise AssertionError(f"no {what} within {timeout} s:\n{self.log.timeline()}") from None
        return value

    def _hear(self, packet) -> None:
        samples = np.concatenate([first_channel(frame) for frame in self._decoder.decode(av.Packet(packet.payload))])
        self.log.heard.append(Heard(time.monotonic(), packet.timestamp, bool(packet.marker), frame_tone(samples)))
        self.changed.set()

    async def _play(self, track) -> None:
        """Consume aiortc's own decoded playout, as an application would."""
        try:
            while True:
                await track.recv()
                self.log.frames_played += 1
        except MediaStreamError:
            pass

    def _on_message(self, text: str) -> None:
        event = json.loads(text)
        self.log.events.append((time.monotonic(), event))
        if event["type"] == "response.function_call_arguments.done":
            # Answer at once: response 1's tail is still playing.
            self.send({"type": "conversation.item.create",
                       "item": {"type": "function_call_output", "call_id": event["call_id"],
                                "output": FUNCTION_OUTPUT}})
        elif event["type"] == "response.done":
            response = event["response"]
            if response["status"] == "completed" and any(item["type"] == "function_call"
                                                         for item in response["output"]):
                self.send({"type": "response.create"})  # now that no response is active
        self.changed.set()


async def hold_conversation(server) -> Conversation:
    client = Client()
    log, mic = client.log, client.log.mic
    try:
        await client.pc.setLocalDescription(await client.pc.createOffer())
        answer, location = await whip_post(server.whip_url, client.pc.localDescription.sdp)
        await client.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await client.until(lambda: log.of_type("session.created"), CONNECT_TIMEOUT, "session.created")
        client.send({"type": "session.update",
                     "session": {"instructions": "Answer in tones.", "tools": [WEATHER_TOOL]}})
        await client.until(lambda: log.of_type("session.updated"), TURN_TIMEOUT, "session.updated")

        log.speech_at = mic.play(silence(LEAD_SECONDS)) + int(LEAD_SECONDS * SAMPLE_RATE)
        mic.play(speech())
        second = await client.until(lambda: log.of_type("response.created")[1:], 3 * TURN_TIMEOUT,
                                    "response 2 (after the function call was answered)")
        created_at = second[0][0]

        def tail_heard() -> bool:
            tones = [p.tone for p in log.heard if p.at > created_at]
            return any(tone == TAIL_HZ and length >= BARGE_IN_AFTER_TAIL_FRAMES
                       for tone, length in tone_runs(tones))

        await client.until(tail_heard, TURN_TIMEOUT, "660 Hz tail of response 2")
        log.barge_in_at = mic.play(first_sentence())
        await client.until(lambda: len(log.of_type("response.done")) >= 3, TURN_TIMEOUT, "response 3's end")
        await asyncio.sleep(LINGER)
        async with aiohttp.ClientSession() as http, http.get(server.metrics_url) as response:
            log.metrics = await response.text()
        log.delete_status = await whip_delete(location)
    finally:
        await client.pc.close()
    return log


def media_ms(sample: int) -> float:
    return sample * 1000 / SAMPLE_RATE


@pytest.mark.timeout(60)
def test_aiortc_talks_with_the_voice_server(voice_server):
    log = asyncio.run(hold_conversation(voice_server))
    context = "\n" + log.timeline()
    mic = log.mic
    errors = log.of_type("error")
    assert not errors, f"the server reported errors: {errors}{context}"
    session = log.of_type("session.created")[0][1]["session"]
    turn_detection = session["turn_detection"]
    prefix, hangover = turn_detection["prefix_padding_ms"], turn_detection["silence_duration_ms"]

    # Speech start/stop: exactly one pair per spoken turn, at the sample's known edges.
    started = log.of_type("input_audio_buffer.speech_started")
    stopped = log.of_type("input_audio_buffer.speech_stopped")
    assert len(started) == len(stopped) == 2, context
    spoken = [(log.speech_at, speech()), (log.barge_in_at, first_sentence())]
    for (start_t, start), (stop_t, stop), (at, pcm) in zip(started, stopped, spoken):
        onset, end = (at + edge for edge in speech_edges(pcm))
        # On the media timeline: the server's audio ms against the samples the mic sent.
        assert abs(start["audio_start_ms"] + prefix - media_ms(onset)) <= EDGE_TOLERANCE_MS, context
        assert abs(stop["audio_end_ms"] - hangover - media_ms(end)) <= EDGE_TOLERANCE_MS, context
        # On the client's clock: when the events arrived against when those samples left.
        edge = EDGE_TOLERANCE_MS / 1000
        assert -edge <= start_t - mic.sent_time(onset) <= edge + EVENT_SLACK, context
        assert -edge <= stop_t - mic.sent_time(end) - hangover / 1000 <= edge + EVENT_SLACK, context

    # Three responses: completed, cancelled by the barge-in, completed.
    done = [e["response"] for _, e in log.of_type("response.done")]
    assert [r["status"] for r in done] == ["completed", "cancelled", "completed"], context
    assert [r["turn_number"] for r in done] == [1, 2, 3], context

    # Response audio, decoded and read frame by frame: one talkspurt per response.
    spurts = talkspurts(log.heard)
    assert len(spurts) == 3, context
    runs = [tone_runs([p.tone for p in spurt]) for spurt in spurts]
    assert burst_pattern(runs[0]) == expected_pattern(1), context
    assert burst_pattern(runs[1]) == expected_pattern(2, FUNCTION_OUTPUT), context
    assert burst_pattern(runs[2]) == expected_pattern(3), context
    assert runs[0][-1][1] >= TAIL_FRAMES - 2 and runs[2][-1][1] >= TAIL_FRAMES - 2, context  # whole tails
    assert log.frames_played > 0, "aiortc's own playout decoded nothing"

    # The function call, answered while response 1's audio kept flowing.
    (call_t, call), = log.of_type("response.function_call_arguments.done")
    assert (call["name"], call["call_id"]) == ("get_weather", "call_1"), context
    assert json.loads(call["arguments"]) == {"location": "Paris", "turn": 1}, context
    assert call["response_id"] == done[0]["id"], context
    after_call = [p for p in spurts[0] if p.at > call_t]
    assert len(after_call) >= TAIL_FRAMES // 2, f"only {len(after_call)} packets after the call{context}"
    created = [(t, e["item"]) for t, e in log.of_type("conversation.item.created")
               if e["item"]["type"] == "function_call_output"]
    assert [item["output"] for _, item in created] == [FUNCTION_OUTPUT], context
    assert created[0][0] < spurts[0][-1].at, "the output was not taken while response 1 still played" + context

    # The barge-in: speech during response 2 cancels it, and its audio stops at once.
    barge_t, barge = started[1]
    created_2 = log.of_type("response.created")[1]
    cancelled_t, cancelled = log.of_type("response.done")[1]
    assert created_2[0] < barge_t <= cancelled_t, context
    assert cancelled["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}, context
    assert cancelled["server_timestamp"] == barge["server_timestamp"], context
    cleared = [e for _, e in log.of_type("output_audio_buffer.cleared")]
    assert [e["response_id"] for e in cleared] == [cancelled["response"]["id"]], context
    assert runs[1][-1][0] == TAIL_HZ and runs[1][-1][1] < TAIL_FRAMES, "response 2's tail was not cut" + context
    last_packet = spurts[1][-1].at
    assert last_packet - barge_t <= BARGE_IN_STOP, (
        f"response audio went on {1000 * (last_packet - barge_t):.0f} ms after speech_started{context}")

    # The server's own account of the turns.
    counts = histogram_counts(log.metrics, "rtcgate_voice_turn_seconds")
    assert all(counts.get(part, 0) > 0 for part in ("stop_to_first_audio", "model_think", "server_share")), counts
    assert counts["stop_to_first_audio"] == 2, counts  # responses 1 and 3 began at speech_stopped
    assert log.delete_status == 200
