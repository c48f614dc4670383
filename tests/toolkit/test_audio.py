"""toolkit.peer.audio: the speech sample's edges, Opus decoding, and the measures of a frame."""

from __future__ import annotations

import math

import numpy as np

from toolkit.peer.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    SILENCE_PACKET,
    OpusDecoder,
    dominant_frequency,
    first_sentence,
    level_dbfs,
    question,
    speech_from,
    speech_sample,
)


def test_the_sample_is_cut_at_the_end_of_its_speech():
    speech = speech_sample()
    # corpora/audio/README.md: energy above −45 dBFS from 20 ms to 3580 ms of the file.
    assert (speech.onset, speech.end, len(speech.packets)) == (1, 179, 179)


def test_the_two_utterances_have_their_own_edges():
    hello, weather = first_sentence(), question()
    assert (hello.onset, hello.end, len(hello.packets)) == (1, 42, 43)
    assert (weather.onset, weather.end, len(weather.packets)) == (1, 119, 119)
    assert weather.packets[0] == speech_sample().packets[60]


def test_the_silence_packet_decodes_to_20_ms_of_digital_silence():
    samples = OpusDecoder().decode(SILENCE_PACKET)
    assert samples.size == FRAME_SAMPLES
    assert level_dbfs(samples) == -math.inf
    assert speech_from((SILENCE_PACKET, first_sentence().packets[10])).onset == 1


def test_an_undecodable_payload_gives_no_samples():
    assert OpusDecoder().decode(b"").size == 0


def test_a_tone_is_found_to_5_hz_and_its_level_in_dbfs():
    t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 880 * t)
    assert abs(dominant_frequency(tone) - 880) <= 5
    assert abs(level_dbfs(tone) - 20 * math.log10(0.3 / math.sqrt(2))) < 0.1
