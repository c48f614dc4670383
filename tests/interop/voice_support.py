"""What the voice interop tests share: the speech they say (the interop matrix's material, from
toolkit.interop.audio), the tones they listen for, and the voice-mode server they talk to.

The reference server's embedded ToneModel answers response n with ((n − 1) mod 10) + 1 bursts of
440 Hz, then (len(function output) mod 10) + 1 bursts of 880 Hz when a function output came
before it, then a 1 s 660 Hz tail; bursts are 80 ms on, 80 ms off. A client finds those by the
dominant frequency of each 20 ms frame it decodes.
"""
from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server_process import ServerProcess, start_server
from toolkit.interop.audio import FRAME_SAMPLES, SAMPLE_RATE, first_sentence, silence, speech, write_wav  # noqa: F401

SPEECH_FLOOR_DBFS = -45.0  # a 20 ms frame louder than this is speech, for the sample's edges

MARKER_HZ, OUTPUT_HZ, TAIL_HZ = 440, 880, 660
TONES_HZ = (MARKER_HZ, TAIL_HZ, OUTPUT_HZ)
TONE_TOLERANCE_HZ = 20
TONE_FLOOR_DBFS = -30.0  # the model's tones are at −13.5 dBFS RMS
TAIL_FRAMES = 50  # the 1 s tail
FUNCTION_OUTPUT = '{"sky": "sunny", "temp_c": 21.5}'  # 32 characters: 3 bursts of 880 Hz

# Tolerances, stated once for both clients.
EDGE_TOLERANCE_MS = 60  # three 20 ms VAD frames, on the media timeline (server audio ms vs sent samples)
EVENT_SLACK = 0.25  # s, on the client's clock: VAD frame, packetisation, loopback, SCTP and scheduling
BARGE_IN_STOP = 0.100  # s from speech_started (as the client receives it) to the last response packet


def speech_edges(pcm: np.ndarray) -> tuple[int, int]:
    """Sample offsets of the start of the first and the end of the last 20 ms frame above the floor."""
    frames = pcm[:len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES).astype(np.float64)
    level = 20 * np.log10(np.maximum(np.sqrt(np.mean(frames ** 2, axis=1)), 1e-9) / 32768)
    loud = np.flatnonzero(level > SPEECH_FLOOR_DBFS)
    return int(loud[0]) * FRAME_SAMPLES, (int(loud[-1]) + 1) * FRAME_SAMPLES


def frame_tone(samples: np.ndarray) -> int | None:
    """Which model tone a 20 ms frame holds: 440, 660, 880, or None (quiet, or something else).

    Zero-padded to 9600 points (5 Hz bins) so 440/660/880 Hz resolve in one frame."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0 or np.sqrt(np.mean(samples ** 2)) < 32768 * 10 ** (TONE_FLOOR_DBFS / 20):
        return None
    magnitudes = np.abs(np.fft.rfft(samples * np.hanning(samples.size), n=10 * FRAME_SAMPLES))
    peak = float(np.argmax(magnitudes[1:]) + 1) * SAMPLE_RATE / (10 * FRAME_SAMPLES)
    for tone in TONES_HZ:
        if abs(peak - tone) <= TONE_TOLERANCE_HZ:
            return tone
    return None


def tone_runs(tones: list[int | None]) -> list[tuple[int, int]]:
    """(tone, frames) for each run of one tone. A single unrecognised frame inside a run does not
    split it (an 80 ms gap between bursts is at least two clean frames)."""
    runs: list[list[int]] = []
    gap = 0
    for tone in tones:
        if tone is None:
            gap += 1
            continue
        if runs and runs[-1][0] == tone and gap <= 1:
            runs[-1][1] += 1 + gap
        else:
            runs.append([tone, 1])
        gap = 0
    return [(tone, length) for tone, length in runs]


def burst_pattern(runs: list[tuple[int, int]]) -> list[int]:
    """The tones of the runs, in order: what a response 'says'."""
    return [tone for tone, _ in runs]


def expected_pattern(response_number: int, function_output: str | None = None) -> list[int]:
    """What the ToneModel plays for response n (the tail included)."""
    pattern = [MARKER_HZ] * ((response_number - 1) % 10 + 1)
    if function_output is not None:
        pattern += [OUTPUT_HZ] * (len(function_output) % 10 + 1)
    return pattern + [TAIL_HZ]


def histogram_counts(metrics_text: str, name: str) -> dict[str, int]:
    """`{label value: count}` of a Prometheus histogram family with one label."""
    return {next(iter(sample.labels.values())): int(sample.value)
            for family in text_string_to_metric_families(metrics_text) if family.name == name
            for sample in family.samples if sample.name == name + "_count" and len(sample.labels) == 1}


@pytest.fixture
def voice_server() -> ServerProcess:
    """The reference server in voice mode (the embedded ToneModel, webrtcvad) on free loopback ports."""
    server = start_server(media="voice")
    yield server
    server.stop()
