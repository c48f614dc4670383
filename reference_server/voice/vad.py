"""Voice activity detection: 48 kHz PCM in, one speech probability per VAD frame out.

Two backends behind one shape (`sample_rate`, `frame_ms`, `speech_probability`, `set_threshold`):
- webrtcvad (default): a yes/no per 10/20/30 ms frame, reported as 1.0 or 0.0; the session's
  threshold picks its aggressiveness (0–0.25 → mode 0, … 0.75–1 → mode 3); frames below an
  energy floor (−60 dBFS) are silence whatever webrtcvad says.
- Silero (optional): a probability per 32 ms frame from its ONNX model through onnxruntime, no
  torch. Needs `onnxruntime` and the model file: pass its path, or install the `silero-vad`
  wheel with `--no-deps` (its own dependency list pulls torch) and the file is found in it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .resample import Decimator

INPUT_RATE = 48_000


class VadError(Exception):
    pass


class VadBackend(Protocol):
    sample_rate: int
    frame_ms: int

    def speech_probability(self, pcm: bytes) -> float: ...

    def set_threshold(self, threshold: float) -> None: ...


class WebRtcVad:
    def __init__(self, frame_ms: int = 20, sample_rate: int = 16_000, threshold: float = 0.5,
                 floor_dbfs: float = -60.0) -> None:
        import webrtcvad

        if frame_ms not in (10, 20, 30):
            raise VadError(f"webrtcvad takes 10, 20 or 30 ms frames, not {frame_ms} ms")
        if sample_rate not in (8_000, 16_000):
            raise VadError(f"webrtcvad runs here at 8000 or 16000 Hz, not {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self._vad = webrtcvad.Vad()
        # webrtcvad keeps saying "speech" for 3-5 frames after a long voiced run (its own hangover);
        # frames quieter than the floor are silence outright, so clean silence ends speech on time.
        self._floor_rms = 32768.0 * 10 ** (floor_dbfs / 20)
        self.mode = 0
        self.set_threshold(threshold)

    def set_threshold(self, threshold: float) -> None:
        self.mode = min(3, int(threshold * 4))
        self._vad.set_mode(self.mode)

    def speech_probability(self, pcm: bytes) -> float:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        if np.sqrt(np.mean(samples * samples)) < self._floor_rms:
            return 0.0
        return 1.0 if self._vad.is_speech(pcm, self.sample_rate) else 0.0


SILERO_CONTEXT = 64  # samples of the previous frame the model sees in front of each 512-sample frame


class SileroVad:
    sample_rate = 16_000
    frame_ms = 32

    def __init__(self, model_path: str | Path | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise VadError("Silero VAD needs onnxruntime: pip install onnxruntime") from None
        path = Path(model_path) if model_path is not None else _installed_silero_model()
        if not path.is_file():
            raise VadError(f"Silero VAD model file {path} does not exist")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._rate = np.array(self.sample_rate, dtype=np.int64)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(SILERO_CONTEXT, dtype=np.float32)

    def set_threshold(self, threshold: float) -> None:
        """Nothing to change: the turn detector compares Silero's probability with the threshold."""

    def speech_probability(self, pcm: bytes) -> float:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        model_input = np.concatenate((self._context, samples))[np.newaxis, :]
        output, self._state = self._session.run(None, {"input": model_input, "state": self._state, "sr": self._rate})
        self._context = samples[-SILERO_CONTEXT:]
        return float(output[0][0])


def _installed_silero_model() -> Path:
    # find_spec locates the package without importing it (its __init__ imports torch).
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VadError("Silero VAD needs its ONNX model: pass the path of silero_vad.onnx, or "
                       "pip install --no-deps silero-vad (without --no-deps it pulls torch)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"


def create_backend(name: str = "webrtcvad", **options: Any) -> VadBackend:
    if name == "webrtcvad":
        return WebRtcVad(**options)
    if name == "silero":
        return SileroVad(**options)
    raise VadError(f"unknown VAD {name!r}: choose webrtcvad or silero")


class VoiceActivityDetector:
    """Resamples 48 kHz PCM of any length to the backend's rate and cuts it into the backend's frames."""

    def __init__(self, backend: VadBackend) -> None:
        self.backend = backend
        self.frame_ms = backend.frame_ms
        self._decimator = Decimator(INPUT_RATE, backend.sample_rate)
        self._frame_bytes = 2 * backend.sample_rate * backend.frame_ms // 1000
        self._pending = b""

    def process(self, pcm: bytes) -> list[float]:
        """One speech probability for each VAD frame completed by `pcm`."""
        self._pending += self._decimator.process(pcm)
        count = len(self._pending) // self._frame_bytes
        size = self._frame_bytes
        probabilities = [self.backend.speech_probability(self._pending[i * size:(i + 1) * size]) for i in range(count)]
        self._pending = self._pending[count * self._frame_bytes:]
        return probabilities

    def set_threshold(self, threshold: float) -> None:
        self.backend.set_threshold(threshold)
