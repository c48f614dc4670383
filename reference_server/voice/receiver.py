"""RTP Opus payloads in, 48 kHz PCM out, in sequence order: the jitter buffer, then the decoder.

Lost packets become silence of the last packet's duration; undecodable payloads are counted and
skipped (they would only be noise to the VAD).
"""
from __future__ import annotations

from .jitter import JitterBuffer
from .opus import FRAME_SAMPLES, OpusDecoder, OpusError


class AudioReceiver:
    def __init__(self, jitter: JitterBuffer | None = None, decoder: OpusDecoder | None = None) -> None:
        self.jitter = jitter or JitterBuffer()
        self.decoder = decoder or OpusDecoder()
        self.undecodable = 0
        self.concealed = 0
        self.last_error: str | None = None
        self._last_samples = FRAME_SAMPLES
        self._pcm: list[bytes] = []

    def receive(self, sequence: int, payload: bytes, now: float) -> None:
        self.jitter.push(sequence, payload, now)
        self._decode_released()

    def handle_timer(self, now: float) -> None:
        self.jitter.handle_timer(now)
        self._decode_released()

    def get_timer(self) -> float | None:
        return self.jitter.get_timer()

    def pcm_ready(self) -> list[bytes]:
        out, self._pcm = self._pcm, []
        return out

    def _decode_released(self) -> None:
        for slot in self.jitter.pop():
            if slot.payload is None:
                self.concealed += 1
                self._pcm.append(self.decoder.conceal(self._last_samples))
                continue
            try:
                pcm = self.decoder.decode(slot.payload)
            except OpusError as exc:
                self.undecodable += 1
                self.last_error = str(exc)
                continue
            self._last_samples = len(pcm) // 2
            self._pcm.append(pcm)
