from __future__ import annotations

import pytest

from reference_server.voice.turn import SpeechStarted, SpeechStopped, TurnConfig, TurnConfigError, TurnDetector


def run(detector: TurnDetector, pattern: str) -> list[tuple[int, object]]:
    """Feed '#' (speech) and '.' (silence) frames; return (frame index, event) pairs."""
    out = []
    for i, mark in enumerate(pattern):
        event = detector.feed(0.9 if mark == "#" else 0.1)
        if event is not None:
            out.append((i, event))
    return out


def test_start_and_stop_land_on_the_right_frames_with_padding_and_silence():
    detector = TurnDetector(20, TurnConfig(prefix_padding_ms=300, silence_duration_ms=500))
    events = run(detector, "." * 50 + "#" * 40 + "." * 30)
    assert events == [(50, SpeechStarted(audio_start_ms=700, speech_start_ms=1000)),
                      (114, SpeechStopped(audio_end_ms=2300, speech_end_ms=1800))]


def test_short_pauses_stay_inside_the_turn():
    detector = TurnDetector(20, TurnConfig(silence_duration_ms=200))
    events = run(detector, "...##" + "." * 9 + "##" + "." * 10)
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SpeechStopped"]
    assert events[1] == (25, SpeechStopped(audio_end_ms=520, speech_end_ms=320))


def test_padding_never_reaches_before_the_buffer():
    detector = TurnDetector(20, TurnConfig(prefix_padding_ms=300, silence_duration_ms=100))
    assert run(detector, "..#") == [(2, SpeechStarted(0, 40))]
    assert run(detector, ".....") == [(4, SpeechStopped(160, 60))]
    assert run(detector, ".#") == [(1, SpeechStarted(160, 180))]  # padding starts where the last turn ended


def test_threshold_is_inclusive_and_changeable():
    detector = TurnDetector(30, TurnConfig(threshold=0.9))
    assert detector.feed(0.89) is None
    assert detector.feed(0.9) == SpeechStarted(0, 30)
    detector.configure(TurnConfig(threshold=0.95, silence_duration_ms=30))
    assert detector.feed(0.9) == SpeechStopped(audio_end_ms=90, speech_end_ms=60)


def test_turned_off_only_counts_time_and_drops_speech_in_progress():
    detector = TurnDetector(20)
    detector.feed(1.0)
    detector.configure(None)
    assert [detector.feed(1.0) for _ in range(5)] == [None] * 5
    assert not detector.in_speech and detector.audio_ms == 120
    detector.configure(TurnConfig(prefix_padding_ms=300))
    assert detector.feed(1.0) == SpeechStarted(20, 120)  # padding stops where detection was turned off


def test_reset_forgets_speech():
    detector = TurnDetector(20, TurnConfig(silence_duration_ms=40))
    detector.feed(1.0)
    detector.reset()
    assert run(detector, "...") == []


def test_session_update_fields_apply_and_keep_the_rest():
    config = TurnConfig().updated({"type": "server_vad", "threshold": 0.7, "silence_duration_ms": 800})
    assert config == TurnConfig(threshold=0.7, prefix_padding_ms=300, silence_duration_ms=800)
    assert config.as_dict()["type"] == "server_vad"


@pytest.mark.parametrize("fields, message", [
    ({"type": "semantic_vad"}, "turn_detection type 'semantic_vad' is not supported (server_vad is)"),
    ({"threshold": 1.5}, "turn_detection.threshold must be a number from 0.0 to 1.0"),
    ({"threshold": True}, "turn_detection.threshold must be a number from 0.0 to 1.0"),
    ({"prefix_padding_ms": 12.5}, "turn_detection.prefix_padding_ms must be an integer from 0 to 10000"),
    ({"silence_duration_ms": -1}, "turn_detection.silence_duration_ms must be an integer from 0 to 10000"),
    ({"create_response": "yes"}, "turn_detection.create_response must be true or false"),
    ({"eagerness": "high"}, "unknown turn_detection field 'eagerness'"),
    ("server_vad", "turn_detection must be an object or null"),
])
def test_invalid_fields_are_refused_with_exact_messages(fields, message):
    with pytest.raises(TurnConfigError) as info:
        TurnConfig().updated(fields)
    assert str(info.value) == message
