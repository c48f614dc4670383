"""Sine tones in and out of aiortc, and the FFT that tells which tone came back.

Tones are whole multiples of 50 Hz and the analysis window is a whole number of
20 ms frames, so every tone sits exactly on an FFT bin and a crossed stream shows
up as energy at another client's frequency rather than as leakage.
"""
from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
AMPLITUDE = 0.3 * 32767

# 50 Hz times a prime: no tone is a harmonic of another, so codec distortion of
# one client's tone never lands on another client's frequency.
TONES_HZ = (350, 550, 650, 850, 950, 1150, 1450, 1550, 1850, 2050)


class ToneTrack(MediaStreamTrack):
    """An audio track that plays a continuous sine, paced in real time like a microphone."""

    kind = "audio"

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + self._pts / SAMPLE_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        n = np.arange(self._pts, self._pts + FRAME_SAMPLES)
        samples = (AMPLITUDE * np.sin(2 * np.pi * self.frequency * n / SAMPLE_RATE)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        return frame


def first_channel(frame: av.AudioFrame) -> np.ndarray:
    """The first channel of a decoded frame as float samples, whatever its layout."""
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    if frame.format.is_planar:
        return data[0].astype(np.float64)
    return data.reshape(-1)[::channels].astype(np.float64)


def spectrum(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and magnitudes of a Hann-windowed real FFT."""
    magnitudes = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    frequencies = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    return frequencies, magnitudes


def dominant_frequency(samples: np.ndarray) -> float:
    frequencies, magnitudes = spectrum(samples)
    magnitudes[frequencies < 20] = 0  # ignore DC
    return float(frequencies[int(np.argmax(magnitudes))])


def level_at(samples: np.ndarray, frequency: float) -> float:
    """Peak magnitude within ±3 Hz of `frequency` (the Hann main lobe at 1 s windows)."""
    frequencies, magnitudes = spectrum(samples)
    near = np.abs(frequencies - frequency) <= 3
    return float(magnitudes[near].max())
