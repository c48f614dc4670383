"""Opus decode and encode through PyAV (libopus): 48 kHz mono signed 16-bit PCM on our side."""
from __future__ import annotations

import av
import av.error
import numpy as np

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
MAX_PACKET_SAMPLES = 5_760  # RFC 6716: a packet carries at most 120 ms


class OpusError(Exception):
    """A payload the decoder could not turn into audio, or PCM the encoder cannot take."""


class OpusDecoder:
    """Decodes one RTP payload at a time; a bad payload raises OpusError and leaves the decoder usable."""

    def __init__(self) -> None:
        self._context = av.CodecContext.create("libopus", "r")
        self._context.sample_rate = SAMPLE_RATE
        self._context.layout = "mono"  # libopus downmixes stereo packets
        # A no-op when libopus already hands back s16 mono; a safety net if FFmpeg picks otherwise.
        self._to_s16_mono = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self.frames_decoded = 0

    def decode(self, payload: bytes) -> bytes:
        """PCM for one Opus packet (10 to 120 ms of audio)."""
        if not payload:
            # An empty packet would put FFmpeg's decoder into its end-of-stream state for good.
            raise OpusError("empty Opus payload")
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.error.FFmpegError as exc:
            raise OpusError(f"undecodable Opus payload of {len(payload)} bytes (TOC 0x{payload[0]:02x}): "
                            f"{exc.strerror}") from None
        pcm = b"".join(out.to_ndarray().tobytes() for frame in frames for out in self._to_s16_mono.resample(frame))
        if not pcm:
            raise OpusError(f"Opus payload of {len(payload)} bytes decoded to no audio")
        self.frames_decoded += 1
        return pcm

    @staticmethod
    def conceal(samples: int = FRAME_SAMPLES) -> bytes:
        """Silence in place of a lost packet: enough for the VAD, which is all that listens."""
        return bytes(2 * samples)


class OpusEncoder:
    """Encodes exactly one 20 ms frame per call into one Opus packet (VoIP mode, mono)."""

    def __init__(self, bitrate: int = 32_000) -> None:
        context = av.CodecContext.create("libopus", "w")
        context.sample_rate = SAMPLE_RATE
        context.layout = "mono"
        context.format = "s16"
        context.bit_rate = bitrate
        context.options = {"frame_duration": "20", "application": "voip"}
        context.open()
        self._context = context
        self._pts = 0

    def encode(self, pcm: bytes) -> bytes:
        if len(pcm) != FRAME_BYTES:
            raise OpusError(f"the encoder takes 20 ms frames of {FRAME_BYTES} bytes, got {len(pcm)} bytes")
        frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, dtype="<i2").reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        packets = self._context.encode(frame)
        if len(packets) != 1:
            raise OpusError(f"libopus returned {len(packets)} packets for one 20 ms frame")
        return bytes(packets[0])
