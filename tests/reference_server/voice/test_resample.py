from __future__ import annotations

import numpy as np
import pytest

from reference_server.voice.resample import Decimator, ResampleError
from reference_server.voice.tones import tone


def level(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(float)
    return float(np.sqrt(np.mean(samples[200:] ** 2)))


@pytest.mark.parametrize("rate, factor", [(16_000, 3), (8_000, 6)])
def test_each_20_ms_frame_gives_exact_output_and_framing_does_not_matter(rate, factor):
    source = tone(1000.0, 200)
    whole = Decimator(48_000, rate).process(source)
    framed = Decimator(48_000, rate)
    pieces = [framed.process(source[i:i + 1920]) for i in range(0, len(source), 1920)]
    assert all(len(piece) == 1920 // factor for piece in pieces)
    assert b"".join(pieces) == whole
    odd = Decimator(48_000, rate)
    assert b"".join(odd.process(source[i:i + 998]) for i in range(0, len(source), 998)) == whole


def test_passes_speech_band_and_removes_what_would_alias():
    decimator = Decimator(48_000, 16_000)
    assert level(decimator.process(tone(1000.0, 200))) == pytest.approx(level(tone(1000.0, 200)), rel=0.05)
    assert level(Decimator(48_000, 16_000).process(tone(12_000.0, 200))) < 0.01 * level(tone(12_000.0, 200))


@pytest.mark.parametrize("args, message", [
    ((48_000, 44_100), "cannot decimate 48000 Hz to 44100 Hz by an integer factor"),
    ((48_000, 0), "cannot decimate 48000 Hz to 0 Hz by an integer factor"),
])
def test_refuses_non_integer_factors(args, message):
    with pytest.raises(ResampleError) as info:
        Decimator(*args)
    assert str(info.value) == message


def test_refuses_half_samples():
    with pytest.raises(ResampleError, match="PCM of 3 bytes is not whole 16-bit samples"):
        Decimator().process(b"abc")
