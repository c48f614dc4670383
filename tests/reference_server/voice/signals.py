"""Test audio: the shipped speech sample, a synthetic vowel, and a tone-burst reader."""
from __future__ import annotations

from functools import lru_cache

import av
import numpy as np

from toolkit import resources

RATE = 48_000
FRAME_BYTES = 1920
SPEECH_SAMPLE = resources.speech_sample()


@lru_cache(maxsize=1)
def speech_pcm() -> bytes:
    """The espeak-ng sample ("Hello there. What is the weather like in Paris today?"), 48 kHz mono s16."""
    container = av.open(str(SPEECH_SAMPLE))
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    pcm = b"".join(out.to_ndarray().tobytes() for frame in container.decode(audio=0)
                   for out in resampler.resample(frame))
    container.close()
    return pcm


@lru_cache(maxsize=1)
def speech_packets() -> list[bytes]:
    """The sample's Opus packets as they would arrive in RTP payloads."""
    container = av.open(str(SPEECH_SAMPLE))
    packets = [bytes(p) for p in container.demux(audio=0) if p.size]
    container.close()
    return packets


def vowel(seconds: float, f0: float = 120.0) -> bytes:
    """A voiced 'ah': harmonics of a slightly wavering f0 shaped by three formants."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    signal = np.zeros(n)
    formants = ((700, 110), (1220, 120), (2600, 160))  # (centre Hz, width Hz) of an 'ah'
    for k in range(1, 40):
        gain = sum(1 / (1 + ((k * f0 - centre) / width) ** 2) for centre, width in formants)
        signal += gain * np.sin(k * phase)
    return (signal * 8000 / np.max(np.abs(signal))).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * RATE))


def frames(pcm: bytes) -> list[bytes]:
    pcm = pcm + bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def frame_tones(pcm_frames: list[bytes]) -> list[int | None]:
    """The dominant frequency of each 20 ms frame (50 Hz resolution), None for near-silence."""
    out = []
    for frame in pcm_frames:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        if np.sqrt(np.mean(samples ** 2)) < 1000:
            out.append(None)
            continue
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        out.append(int(round(np.argmax(spectrum) * RATE / len(samples))))
    return out


def bursts(tones: list[int | None], frequency: int) -> int:
    """How many separate runs of `frequency` the frame sequence holds."""
    runs, inside = 0, False
    for f in tones:
        hit = f is not None and abs(f - frequency) <= 50
        if hit and not inside:
            runs += 1
        inside = hit
    return runs
