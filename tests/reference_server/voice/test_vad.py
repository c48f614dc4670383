from __future__ import annotations

import importlib.util
import os

import pytest

from reference_server.voice.vad import SileroVad, VadError, VoiceActivityDetector, WebRtcVad, create_backend

from .signals import frames, silence, speech_pcm, vowel

has_silero = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("silero_vad") is not None


def decisions(detector: VoiceActivityDetector, pcm: bytes, threshold: float = 0.5) -> str:
    probabilities = [p for frame in frames(pcm) for p in detector.process(frame)]
    return "".join("#" if p >= threshold else "." for p in probabilities)


def test_webrtcvad_marks_the_voiced_frames_of_a_vowel_to_one_frame():
    marks = decisions(VoiceActivityDetector(WebRtcVad()), silence(0.5) + vowel(1.0) + silence(1.0))
    assert marks.index("#") == 25  # the vowel starts at 0.5 s
    assert marks.rindex("#") in (74, 75)  # and ends at 1.5 s; the resampler's filter may spill into the next frame
    assert marks.count("#") == marks.rindex("#") - 24


def test_webrtcvad_finds_speech_in_the_speech_sample_and_none_in_its_silences():
    marks = decisions(VoiceActivityDetector(WebRtcVad()), silence(1.0) + speech_pcm() + silence(1.0))
    first, last = marks.index("#"), marks.rindex("#")
    assert marks[:50] == "." * 50 and marks[-50:] == "." * 50
    assert 50 <= first <= 60 and last - first > 100  # about 2.7 s of speech
    assert marks[first:last].count("#") > 0.7 * (last - first)


@pytest.mark.parametrize("threshold, mode", [(0.0, 0), (0.3, 1), (0.5, 2), (0.8, 3), (1.0, 3)])
def test_threshold_picks_webrtcvad_aggressiveness(threshold, mode):
    vad = WebRtcVad(threshold=threshold)
    assert vad.mode == mode


@pytest.mark.parametrize("frame_ms, rate", [(10, 8_000), (30, 16_000)])
def test_other_webrtcvad_frames_and_rates(frame_ms, rate):
    detector = VoiceActivityDetector(WebRtcVad(frame_ms=frame_ms, sample_rate=rate))
    marks = decisions(detector, silence(0.3) + vowel(0.6) + silence(0.3))
    assert len(marks) == 1200 // frame_ms
    assert marks.index("#") == 300 // frame_ms and marks.count("#") >= 600 // frame_ms - 1


@pytest.mark.parametrize("kwargs, message", [
    ({"frame_ms": 25}, "webrtcvad takes 10, 20 or 30 ms frames, not 25 ms"),
    ({"sample_rate": 48_000}, "webrtcvad runs here at 8000 or 16000 Hz, not 48000 Hz"),
])
def test_webrtcvad_refuses_what_it_cannot_do(kwargs, message):
    with pytest.raises(VadError) as info:
        WebRtcVad(**kwargs)
    assert str(info.value) == message


def test_unknown_backend():
    with pytest.raises(VadError, match="unknown VAD 'rnnoise': choose webrtcvad or silero"):
        create_backend("rnnoise")


def test_silero_names_a_missing_model_file(tmp_path):
    if importlib.util.find_spec("onnxruntime") is None:
        with pytest.raises(VadError, match="Silero VAD needs onnxruntime"):
            SileroVad(tmp_path / "none.onnx")
    else:
        with pytest.raises(VadError, match="Silero VAD model file .*none.onnx does not exist"):
            SileroVad(tmp_path / "none.onnx")


@pytest.mark.skipif(not has_silero and os.environ.get("CI") != "true",
                    reason="optional: onnxruntime and the silero-vad wheel (--no-deps) not installed (make installs both)")
def test_silero_finds_the_speech_in_the_sample():
    detector = VoiceActivityDetector(create_backend("silero"))
    assert detector.frame_ms == 32
    pcm = silence(1.0) + speech_pcm() + silence(1.0)
    marks = decisions(detector, pcm)
    assert len(marks) == len(pcm) // 2 // 1536
    first, last = marks.index("#"), marks.rindex("#")
    assert 1000 <= first * 32 <= 1200 and (last - first) * 32 > 2000
    assert marks[:30] == "." * 30 and marks[-25:] == "." * 25
