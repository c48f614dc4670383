"""48 kHz → the VAD's rate (16 or 8 kHz) by an integer factor: low-pass FIR, then keep every Nth sample.

Stateful across calls, so a stream cut into 20 ms frames resamples exactly as one long buffer
would; every 960-sample frame gives exactly 960 / factor samples.
"""
from __future__ import annotations

import numpy as np

TAPS_PER_FACTOR = 16


class ResampleError(Exception):
    pass


class Decimator:
    def __init__(self, in_rate: int = 48_000, out_rate: int = 16_000) -> None:
        if out_rate <= 0 or in_rate % out_rate:
            raise ResampleError(f"cannot decimate {in_rate} Hz to {out_rate} Hz by an integer factor")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.factor = in_rate // out_rate
        taps = TAPS_PER_FACTOR * self.factor + 1
        # Windowed sinc with its cutoff at 90 % of the output Nyquist frequency, unit gain at DC.
        n = np.arange(taps) - (taps - 1) / 2
        cutoff = 0.9 / self.factor
        kernel = cutoff * np.sinc(cutoff * n) * np.hamming(taps)
        self._kernel = (kernel / kernel.sum()).astype(np.float64)
        self._history = np.zeros(taps - 1)
        self._phase = 0  # input samples to skip before the next kept one

    def process(self, pcm: bytes) -> bytes:
        """Signed 16-bit little-endian mono in, the same at the output rate out."""
        if len(pcm) % 2:
            raise ResampleError(f"PCM of {len(pcm)} bytes is not whole 16-bit samples")
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        padded = np.concatenate((self._history, samples))
        filtered = np.convolve(padded, self._kernel, mode="valid")  # one value per input sample
        self._history = padded[len(padded) - len(self._history):]
        kept = filtered[self._phase::self.factor]
        self._phase = (self._phase - len(samples)) % self.factor
        return np.clip(np.rint(kept), -32768, 32767).astype("<i2").tobytes()
