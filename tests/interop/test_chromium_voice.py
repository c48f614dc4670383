"""Headless Chromium holds a spoken conversation with the reference server in voice mode.

Chromium's fake microphone plays a WAV the test writes (48 kHz mono 16-bit, played once): 0.5 s
of silence, the whole speech sample (≈ 4 s: it earns a get_weather call), silence, then
"Hello there." timed to land in the middle of response 2's 660 Hz tail (the barge-in), then
silence. The page (no driver; it POSTs its log to the test's loopback HTTP server) opens the
`oai-events` channel before the offer, starts the microphone once session.created arrives (so
the WAV and the server's audio timeline start together), answers the function call the moment
it arrives, sends response.create after response 1's response.done, polls inbound-rtp stats
every 20 ms, and records the remote audio as Chromium decoded it (MediaStreamTrackProcessor).
"""
from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from tests.interop.chromium import run_page
from tests.interop.tones import FRAME_SAMPLES, SAMPLE_RATE
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
    silence,
    speech,
    speech_edges,
    tone_runs,
    voice_server,  # noqa: F401  (a fixture)
    write_wav,
)

pytestmark = pytest.mark.interop

PAGE = Path(__file__).with_name("chromium_voice_page.html")
SESSION_TIMEOUT = 50.0  # the page bounds its own steps inside this
REPORT_MAX_BYTES = 32 * 1024 * 1024  # the remote audio comes back as base64 PCM
RESPONSES = 3

# The schedule the WAV is cut to, from the server's defaults (checked against session.created)
# and the ToneModel's documented timing: think 0.2 s, bursts 80 ms on / 80 ms off, 1 s tail.
LEAD = 0.5
PREFIX_PADDING_MS, SILENCE_DURATION_MS = 300, 500
VAD_FRAME = 0.020
THINK = 0.2
BURST = 0.160
TAIL = 1.0
AFTER = 4.0  # silence after the barge-in, longer than response 3


def script() -> tuple[np.ndarray, int, int]:
    """The WAV's samples, and where the full sample and "Hello there." start in it."""
    full, short = speech(), first_sentence()
    full_at = int(LEAD * SAMPLE_RATE)
    stopped = LEAD + speech_edges(full)[1] / SAMPLE_RATE + VAD_FRAME + SILENCE_DURATION_MS / 1000
    response_1 = 1 * BURST + TAIL  # one 440 Hz burst and the tail; the call itself takes no time
    response_2_tail = stopped + THINK + response_1 + THINK + (2 + len(FUNCTION_OUTPUT) % 10 + 1) * BURST
    barge_onset = response_2_tail + TAIL / 2  # the middle of the tail: ±0.5 s of slack
    short_at = int(barge_onset * SAMPLE_RATE) - speech_edges(short)[0]
    pcm = np.concatenate([silence(LEAD), full, silence(short_at / SAMPLE_RATE - LEAD - len(full) / SAMPLE_RATE),
                          short, silence(AFTER)])
    return pcm, full_at, short_at


async def chromium_conversation(chromium: Path, whip_url: str, wav: Path, profile: Path) -> dict:
    query = {"whip": whip_url, "output": FUNCTION_OUTPUT, "responses": RESPONSES}
    return await run_page(chromium, PAGE, query, profile, timeout=SESSION_TIMEOUT, max_report_bytes=REPORT_MAX_BYTES,
                          flags=(f"--use-file-for-fake-audio-capture={wav}%noloop",))


class Report:
    """The page's log, read in seconds on the page's clock (performance.now() / 1000)."""

    def __init__(self, raw: dict) -> None:
        self.raw = raw
        self.events = [(e["t"] / 1000, e["event"]) for e in raw.get("events", [])]
        self.marks = raw.get("marks", {})

    def of_type(self, event_type: str) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in self.events if e["type"] == event_type]

    def packets_at(self, name: str) -> int:
        return self.marks[name]["packetsReceived"]

    def tones(self) -> list[int | None]:
        """The dominant model tone of each 20 ms frame of the audio Chromium decoded."""
        audio = self.raw["audio"]
        pcm = np.frombuffer(base64.b64decode(audio["pcm"]), dtype="<i2")
        usable = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
        return [frame_tone(frame) for frame in pcm[:usable].reshape(-1, FRAME_SAMPLES)]

    def timeline(self) -> str:
        origin = self.raw.get("micStartedAt", 0) / 1000
        lines = [f"{t - origin:7.3f}  <- {e['type']} " + json.dumps(
            {k: e[k] for k in ("audio_start_ms", "audio_end_ms", "call_id", "response", "error") if k in e})[:200]
            for t, e in self.events]
        lines += [f"{s['t'] / 1000 - origin:7.3f}  -> {s['event']['type']}" for s in self.raw.get("sent", [])]
        lines += [f"{m['t'] / 1000 - origin:7.3f}  mark {name}: packetsReceived={m.get('packetsReceived')}"
                  for name, m in self.marks.items()]
        lines.sort(key=lambda line: float(line.split()[0]))
        summary = {k: v for k, v in self.raw.items() if k not in ("events", "sent", "stats", "marks", "audio")}
        return json.dumps(summary) + "\n" + "\n".join(lines)


@pytest.mark.timeout(60)
def test_chromium_talks_with_the_voice_server(chromium, voice_server, tmp_path):
    pcm, full_at, short_at = script()
    wav = tmp_path / "microphone.wav"
    write_wav(wav, pcm)
    report = Report(asyncio.run(chromium_conversation(chromium, voice_server.whip_url, wav, tmp_path / "profile")))
    context = "\n" + report.timeline()
    assert "error" not in report.raw, context
    assert not report.of_type("error"), context
    turn_detection = report.of_type("session.created")[0][1]["session"]["turn_detection"]
    assert (turn_detection["prefix_padding_ms"], turn_detection["silence_duration_ms"]) == (
        PREFIX_PADDING_MS, SILENCE_DURATION_MS), "the WAV's schedule assumes the server's defaults" + context

    # Speech start/stop, one pair per spoken turn. The WAV started a little before the first packet
    # left, by an amount the page cannot see, so the media-timeline checks are offset-free:
    # each turn's length, and the distance between the two turns' starts.
    started = report.of_type("input_audio_buffer.speech_started")
    stopped = report.of_type("input_audio_buffer.speech_stopped")
    assert len(started) == len(stopped) == 2, context
    edges = [tuple(at + edge for edge in speech_edges(said)) for at, said in ((full_at, speech()),
                                                                          (short_at, first_sentence()))]
    for (start_t, start), (stop_t, stop), (onset, end) in zip(started, stopped, edges):
        heard_ms = (stop["audio_end_ms"] - SILENCE_DURATION_MS) - (start["audio_start_ms"] + PREFIX_PADDING_MS)
        assert abs(heard_ms - (end - onset) * 1000 / SAMPLE_RATE) <= EDGE_TOLERANCE_MS, context
        # On the page's clock: speech_stopped follows speech_started by the speech and the hangover.
        between = stop_t - start_t - SILENCE_DURATION_MS / 1000
        assert abs(between - (end - onset) / SAMPLE_RATE) <= EDGE_TOLERANCE_MS / 1000 + EVENT_SLACK, context
    gap_ms = started[1][1]["audio_start_ms"] - started[0][1]["audio_start_ms"]
    assert abs(gap_ms - (edges[1][0] - edges[0][0]) * 1000 / SAMPLE_RATE) <= EDGE_TOLERANCE_MS, context
    # The WAV's position when the server's timeline began: how much the first packet lagged getUserMedia.
    lag_ms = edges[0][0] * 1000 / SAMPLE_RATE - (started[0][1]["audio_start_ms"] + PREFIX_PADDING_MS)
    assert -EDGE_TOLERANCE_MS <= lag_ms <= 1000 * EVENT_SLACK + EDGE_TOLERANCE_MS, f"lag {lag_ms} ms{context}"
    # …and the page heard speech_started when the WAV reached the speech, give or take that lag.
    mic_at = report.raw["micStartedAt"] / 1000
    onset_delay = started[0][0] - (mic_at + edges[0][0] / SAMPLE_RATE)
    assert -EDGE_TOLERANCE_MS / 1000 <= onset_delay <= EVENT_SLACK + lag_ms / 1000, context

    done = [e["response"] for _, e in report.of_type("response.done")]
    assert [r["status"] for r in done] == ["completed", "cancelled", "completed"], context
    assert [r["turn_number"] for r in done] == [1, 2, 3], context

    # The function call, answered while response 1's audio kept arriving.
    (call_t, call), = report.of_type("response.function_call_arguments.done")
    assert (call["name"], call["call_id"]) == ("get_weather", "call_1"), context
    assert json.loads(call["arguments"]) == {"location": "Paris", "turn": 1}, context
    outputs = [(t, e["item"]) for t, e in report.of_type("conversation.item.created")
               if e["item"]["type"] == "function_call_output"]
    assert [item["output"] for _, item in outputs] == [FUNCTION_OUTPUT], context
    done_1_t = report.of_type("response.done")[0][0]
    assert call_t <= outputs[0][0] < done_1_t, context
    flowing = report.packets_at("response.done#1") - report.packets_at("function_call")
    assert flowing >= TAIL_FRAMES // 2, f"{flowing} packets after the call{context}"

    # The barge-in: "Hello there." during response 2 cancels it, and its packets stop at once.
    (barge_t, barge), (cancel_t, cancelled) = started[1], report.of_type("response.done")[1]
    assert report.of_type("response.created")[1][0] < barge_t <= cancel_t, context
    assert cancelled["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}, context
    assert cancelled["server_timestamp"] == barge["server_timestamp"], context
    # Nothing arrives between the barge-in and the next turn's end (response 3 starts after it):
    # the last packet seen by then is response 2's last.
    quiet = report.marks["input_audio_buffer.speech_stopped#2"]
    last_packet = quiet["lastPacketReceivedTimestamp"] / 1000 - report.raw["timeOrigin"] / 1000
    assert last_packet - barge_t <= BARGE_IN_STOP, (
        f"response audio went on {1000 * (last_packet - barge_t):.0f} ms after speech_started{context}")
    late = quiet["packetsReceived"] - report.packets_at("input_audio_buffer.speech_started#2")
    assert late <= BARGE_IN_STOP / 0.02, f"{late} packets after speech_started{context}"

    # Response audio as Chromium decoded it: bursts, the function output's bursts, tails.
    assert report.raw["audio"]["sampleRate"] == SAMPLE_RATE, context
    runs = tone_runs(report.tones())
    response_2 = expected_pattern(2, FUNCTION_OUTPUT)
    assert burst_pattern(runs) == expected_pattern(1) + response_2 + expected_pattern(3), f"{runs}{context}"
    tails = [length for tone, length in runs if tone == TAIL_HZ]
    assert tails[0] >= TAIL_FRAMES - 2 and tails[2] >= TAIL_FRAMES - 2, f"{runs}{context}"
    # Playout conceals a few frames past every tail's end; the cut one stays well short of the others.
    assert tails[1] < min(tails[0], tails[2]) - 10, f"response 2's tail was not cut: {runs}{context}"
    assert report.raw["final"]["totalAudioEnergy"] > 0, context
    assert report.raw["deleteStatus"] == 200, context
