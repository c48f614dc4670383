"""Sine tones in and out of aiortc, and the FFT that tells which tone came back.

Tones are whole multiples of 50 Hz and the analysis window is a whole number of
20 ms frames, so every tone sits exactly on an FFT bin and a crossed stream shows
up as energy at another client's frequency rather than as leakage.
"""
from __future__ import annotations

import av
import numpy as np

from toolkit.interop.audio import FRAME_SAMPLES, SAMPLE_RATE
from toolkit.interop.clients.aiortc_client import PacedAudioTrack

AMPLITUDE = 0.3 * 32767

# 50 Hz times a prime: no tone is a harmonic of another, so codec distortion of
# one client's tone never lands on another client's frequency.
TONES_HZ = (350, 550, 650, 850, 950, 1150, 1450, 1550, 1850, 2050)


class ToneTrack(PacedAudioTrack):
    """An audio track that plays a continuous sine, paced in real time like a microphone."""

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency

    def samples(self, index: int) -> np.ndarray:
        n = np.arange(index * FRAME_SAMPLES, (index + 1) * FRAME_SAMPLES)
        return (AMPLITUDE * np.sin(2 * np.pi * self.frequency * n / SAMPLE_RATE)).astype(np.int16)


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
