"""Audio for the probe peer's voice conversations: real speech to send, Opus to decode, and what
a check measures on 20 ms frames (level, dominant tone). PyAV does the Opus (docs/architecture.md principle 6).

The speech is the shipped sample (corpora/audio/speech_en.ogg, "Hello there. What is the weather
like in Paris today?"), sent as the Opus packets it holds, 20 ms each. Its speech edges are found
here, by energy, on the same packets decoded as a receiver decodes RTP payloads (no Ogg pre-skip),
so packet k of the sample is samples [960·k, 960·(k+1)) of the target's input timeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import av
import numpy as np

from toolkit import resources

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
FRAME = 0.020
SILENCE_PACKET = b"\xf8\xff\xfe"
"""One 20 ms Opus frame (CELT fullband, mono) that decodes to digital silence."""
SPEECH_FLOOR_DBFS = -45.0
"""A 20 ms frame louder than this is speech, for the sample's edges."""
FIRST_SENTENCE_PACKETS = 43
"""Packets 0–42 of the sample: "Hello there." and its fade-out."""
QUESTION_START = 60
"""The packet before "What is the weather like in Paris today?" begins (at packet 61)."""


class AudioError(Exception):
    """The speech sample is missing or unreadable."""


@dataclass(frozen=True, slots=True)
class Speech:
    """Opus packets to send one per 20 ms, and where the speech in them begins and ends."""

    packets: tuple[bytes, ...]
    onset: int
    """Index of the first packet louder than the floor."""
    end: int
    """Index just past the last packet louder than the floor (where speech ends)."""

    def cut(self, packets: int) -> Speech:
        """The first `packets` packets; the edges are found again within them."""
        return speech_from(self.packets[:packets])


def speech_from(packets: tuple[bytes, ...]) -> Speech:
    decoder = OpusDecoder()
    loud = [index for index, packet in enumerate(packets) if level_dbfs(decoder.decode(packet)) > SPEECH_FLOOR_DBFS]
    if not loud:
        raise AudioError(f"none of the {len(packets)} packets is louder than {SPEECH_FLOOR_DBFS} dBFS")
    return Speech(packets, loud[0], loud[-1] + 1)


@lru_cache(maxsize=1)
def speech_sample() -> Speech:
    """The whole shipped sample, up to the end of its speech."""
    try:
        sample = resources.speech_sample()
    except resources.MissingResource as exc:
        raise AudioError(str(exc)) from None
    try:
        with av.open(str(sample)) as container:
            packets = tuple(bytes(packet) for packet in container.demux(audio=0) if packet.size)
    except av.FFmpegError as exc:
        raise AudioError(f"cannot read {sample.name}: {exc}") from None
    whole = speech_from(packets)
    return whole.cut(whole.end)


def first_sentence() -> Speech:
    """ "Hello there." alone (0.86 s)."""
    return speech_sample().cut(FIRST_SENTENCE_PACKETS)


def question() -> Speech:
    """ "What is the weather like in Paris today?" alone (2.38 s)."""
    return speech_from(speech_sample().packets[QUESTION_START:])


class OpusDecoder:
    """RTP Opus payloads to 48 kHz mono float samples (full scale 1.0); one per stream."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "r")
        self._codec.sample_rate = SAMPLE_RATE
        self._codec.layout = "mono"

    def decode(self, payload: bytes) -> np.ndarray:
        """The payload's samples; empty when it does not decode."""
        try:
            frames = self._codec.decode(av.Packet(payload))
        except av.FFmpegError:
            return np.zeros(0)
        return np.concatenate([_mono(frame) for frame in frames]) if frames else np.zeros(0)


def _mono(frame: av.AudioFrame) -> np.ndarray:
    data = frame.to_ndarray()
    samples = data[0] if frame.format.is_planar else data.reshape(-1)[::len(frame.layout.channels)]
    scale = 32768.0 if np.issubdtype(samples.dtype, np.integer) else 1.0
    return samples.astype(np.float64) / scale


def level_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(samples ** 2)))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def dominant_frequency(samples: np.ndarray) -> float:
    """The strongest frequency of a frame, to 5 Hz (the frame zero-padded to 0.2 s)."""
    size = 10 * FRAME_SAMPLES
    magnitudes = np.abs(np.fft.rfft(samples * np.hanning(samples.size), n=size))
    return float(np.argmax(magnitudes[1:]) + 1) * SAMPLE_RATE / size
