"""The audio every client plays into the matrix, and the analysis of what comes back.

Each client gets the same material in the form it can send: 48 kHz mono 16-bit PCM (raw or WAV)
for stacks with an encoder, 20 ms Opus packets for werift, which has none. What a client
hears comes back as PCM or as Opus payloads; both are judged here by frequency and level, so a
cell says "heard our 550 Hz tone" rather than "packets arrived".
"""
from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from toolkit import resources

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
ECHO_TONE_HZ = 550  # 50 Hz × 11: sits on an FFT bin of any whole number of 20 ms frames
TONE_AMPLITUDE = 0.3 * 32767
FIRST_SENTENCE_SECONDS = 1.0  # "Hello there." ends by 0.86 s: one short turn, no function call
VOICE_LEAD_SECONDS = 0.3
VOICE_TRAIL_SECONDS = 6.0  # silence after the sentence: the client stops sending before it runs out
AUDIBLE_DBFS = -40.0
TONE_TOLERANCE_HZ = 20


class AudioError(ValueError):
    """Material cannot be made (speech sample missing) or a recording cannot be decoded."""


def tone(frequency: float, seconds: float) -> np.ndarray:
    n = np.arange(int(round(seconds * SAMPLE_RATE)))
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * frequency * n / SAMPLE_RATE)).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.int16)


@lru_cache(maxsize=1)
def speech() -> np.ndarray:
    """The shipped sample ("Hello there. What is the weather like in Paris today?"), 48 kHz mono s16."""
    try:
        sample = resources.speech_sample()
    except resources.MissingResource as exc:
        raise AudioError(str(exc)) from None
    with av.open(str(sample)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        pcm = [out.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
               for out in resampler.resample(frame)]
    return np.concatenate(pcm).astype(np.int16)


def first_sentence() -> np.ndarray:
    """ "Hello there." alone: short enough (< 2.5 s with padding) that its turn gets no function call."""
    return speech()[:int(FIRST_SENTENCE_SECONDS * SAMPLE_RATE)]


def voice_script() -> np.ndarray:
    """What a client says in its voice turn, from the moment session.created arrives: a short
    lead, "Hello there.", then silence long enough for the turn to end and the answer to play."""
    return np.concatenate([silence(VOICE_LEAD_SECONDS), first_sentence(), silence(VOICE_TRAIL_SECONDS)])


def echo_script(seconds: float) -> np.ndarray:
    return tone(ECHO_TONE_HZ, seconds)


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.astype("<i2").tobytes())
    return path


def write_raw(path: Path, pcm: np.ndarray) -> Path:
    path.write_bytes(pcm.astype("<i2").tobytes())
    return path


def opus_packets(pcm: np.ndarray) -> list[bytes]:
    """`pcm` encoded as 20 ms Opus packets (libopus through PyAV), one per RTP payload."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = SAMPLE_RATE
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = 32000
    encoder.options = {"frame_duration": "20", "application": "voip"}
    encoder.open()
    packets: list[bytes] = []
    usable = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
    for index, start in enumerate(range(0, usable, FRAME_SAMPLES)):
        frame = av.AudioFrame.from_ndarray(pcm[start:start + FRAME_SAMPLES].reshape(1, -1).astype(np.int16),
                                           format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = index * FRAME_SAMPLES
        packets.extend(bytes(p) for p in encoder.encode(frame))
    packets.extend(bytes(p) for p in encoder.encode(None))
    return packets


def decode_opus(payloads: list[bytes]) -> np.ndarray:
    """Opus RTP payloads, in arrival order, as 48 kHz mono s16 (first channel when stereo)."""
    decoder = av.CodecContext.create("opus", "r")
    decoder.sample_rate = SAMPLE_RATE
    decoder.layout = "stereo"
    chunks: list[np.ndarray] = []
    for payload in payloads:
        try:
            frames = decoder.decode(av.Packet(payload))
        except av.error.FFmpegError as exc:
            raise AudioError(f"an Opus payload of {len(payload)} bytes does not decode: {exc}") from None
        for frame in frames:
            data = frame.to_ndarray()
            channels = len(frame.layout.channels)
            first = data[0] if frame.format.is_planar else data.reshape(-1)[::channels]
            if first.dtype.kind == "f":
                first = np.clip(first * 32768, -32768, 32767)
            chunks.append(first.astype(np.int16))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def pcm_from_bytes(data: bytes, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    """Little-endian s16 PCM as a client recorded it, reduced to its first channel at 48 kHz."""
    samples = np.frombuffer(data[:len(data) // 2 * 2], dtype="<i2")
    if channels > 1:
        samples = samples[:len(samples) // channels * channels].reshape(-1, channels)[:, 0]
    if sample_rate != SAMPLE_RATE and len(samples):
        positions = np.arange(0, len(samples), sample_rate / SAMPLE_RATE)
        samples = np.interp(positions, np.arange(len(samples)), samples.astype(np.float64))
    return np.asarray(samples, dtype=np.int16)


def level_dbfs(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-3) / 32768)


def dominant_frequency(pcm: np.ndarray) -> float:
    """The strongest frequency of a Hann-windowed FFT of all of `pcm` (DC ignored)."""
    if pcm.size < FRAME_SAMPLES:
        return 0.0
    samples = pcm.astype(np.float64)
    magnitudes = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    frequencies = np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)
    magnitudes[frequencies < 20] = 0
    return float(frequencies[int(np.argmax(magnitudes))])


def audible_frames(pcm: np.ndarray) -> list[np.ndarray]:
    """The 20 ms frames of `pcm` louder than AUDIBLE_DBFS."""
    usable = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
    frames = pcm[:usable].reshape(-1, FRAME_SAMPLES) if usable else np.zeros((0, FRAME_SAMPLES), np.int16)
    return [frame for frame in frames if level_dbfs(frame) > AUDIBLE_DBFS]


def frame_tones(pcm: np.ndarray) -> dict[int, int]:
    """{dominant frequency rounded to 10 Hz: number of audible 20 ms frames with it}.

    Each frame is zero-padded to 9600 points (5 Hz bins), enough to tell 440/660/880 Hz apart."""
    counts: dict[int, int] = {}
    for frame in audible_frames(pcm):
        magnitudes = np.abs(np.fft.rfft(frame.astype(np.float64) * np.hanning(FRAME_SAMPLES), n=10 * FRAME_SAMPLES))
        peak = int(round((np.argmax(magnitudes[1:]) + 1) * SAMPLE_RATE / (10 * FRAME_SAMPLES) / 10) * 10)
        counts[peak] = counts.get(peak, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))
