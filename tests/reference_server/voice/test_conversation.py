"""The conversation loop on a fake clock: real webrtcvad, scripted model outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from reference_server.voice.conversation import CancelTurn, Conversation, StartTurn
from reference_server.voice.model import AudioChunk, FunctionCall, TextDelta
from reference_server.voice.tones import tone
from reference_server.voice.vad import VoiceActivityDetector, WebRtcVad

from .signals import frame_tones, frames, silence, speech_pcm, vowel

T0 = 100.0


class Harness:
    """Feeds user audio every 20 ms, fires the conversation's timer exactly when it asks, records everything."""

    def __init__(self, **kwargs) -> None:
        self.now = T0
        self.conversation = Conversation("sess_test", T0, vad=VoiceActivityDetector(WebRtcVad()),
                                         wall_clock_offset=1_700_000_000.0, **kwargs)
        self.events: list[dict] = []
        self.sent: list[tuple[float, object]] = []  # (time, OutgoingFrame)
        self.actions: list = []
        self.drain()

    def drain(self) -> None:
        self.events += [json.loads(text) for text in self.conversation.events_to_send()]
        self.sent += [(self.now, frame) for frame in self.conversation.audio_frames_to_send()]
        while (action := self.conversation.next_action()) is not None:
            self.actions.append(action)

    def advance_to(self, t: float) -> None:
        while (timer := self.conversation.get_timer()) is not None and timer <= t:
            self.now = max(self.now, timer)
            self.conversation.handle_timer(self.now)
            self.drain()
        self.now = max(self.now, t)

    def speak(self, pcm: bytes) -> None:
        for frame in frames(pcm):
            self.advance_to(self.now + 0.02)
            self.conversation.receive_audio(frame, self.now)
            self.drain()

    def send(self, event: dict | str) -> None:
        self.conversation.receive_event(event if isinstance(event, str) else json.dumps(event), self.now)
        self.drain()

    def model(self, turn_id: str, *outputs, finished: bool = True) -> None:
        for output in outputs:
            self.conversation.model_output(turn_id, output, self.now)
        if finished:
            self.conversation.model_finished(turn_id, self.now)
        self.drain()

    def of_type(self, event_type: str) -> list[dict]:
        return [e for e in self.events if e["type"] == event_type]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def start(self) -> StartTurn:
        starts = [a for a in self.actions if isinstance(a, StartTurn)]
        return starts[-1]


def test_session_created_first_with_id_and_server_timestamp():
    h = Harness()
    created = h.events[0]
    assert created["type"] == "session.created" and created["event_id"] == "event_1"
    assert created["server_timestamp"] == pytest.approx(1_700_000_100.0)
    assert created["session"]["id"] == "sess_test"
    assert created["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500


def test_a_turn_speech_events_on_the_right_frames_then_a_response_starts():
    h = Harness()
    h.speak(silence(0.5) + vowel(1.0) + silence(0.7))
    started, = h.of_type("input_audio_buffer.speech_started")
    stopped, = h.of_type("input_audio_buffer.speech_stopped")
    assert started["audio_start_ms"] == 200  # speech at 500 ms, minus 300 ms of padding
    assert started["server_timestamp"] - 1_700_000_000.0 == pytest.approx(T0 + 0.52)  # on the first voiced frame
    assert stopped["audio_end_ms"] in (2000, 2020)  # speech ends at 1500 ms, plus 500 ms of silence (± a frame)
    assert stopped["server_timestamp"] - 1_700_000_000.0 == pytest.approx(T0 + stopped["audio_end_ms"] / 1000)
    assert stopped["item_id"] == started["item_id"]
    order = h.types()
    assert order[order.index("input_audio_buffer.speech_stopped"):] == [
        "input_audio_buffer.speech_stopped", "input_audio_buffer.committed", "conversation.item.created",
        "response.created", "conversation.item.created"]
    start = h.start()
    assert start.turn.turn_number == 1
    assert len(start.turn.audio) == (stopped["audio_end_ms"] - 200) * 96  # padding to end of silence, 48 kHz s16
    assert [item["role"] for item in start.turn.items] == ["user"]


def test_speech_sample_gives_one_turn_at_the_right_frames():
    h = Harness()
    h.speak(silence(1.0) + speech_pcm() + silence(1.0))
    started, = h.of_type("input_audio_buffer.speech_started")
    stopped, = h.of_type("input_audio_buffer.speech_stopped")
    # The sample's energy (above -45 dBFS) spans 1020–4580 ms of this audio.
    assert abs(started["audio_start_ms"] + 300 - 1020) <= 20
    assert abs(stopped["audio_end_ms"] - 500 - 4580) <= 20


def respond(h: Harness, ms: int, frequency: float = 660.0) -> str:
    turn_id = h.start().turn_id
    h.model(turn_id, AudioChunk(tone(frequency, ms)))
    return turn_id


def test_response_audio_leaves_exactly_one_frame_per_20_ms():
    h = Harness()
    h.speak(silence(0.2) + vowel(0.5) + silence(0.6))
    t_first = h.now
    respond(h, 1000)
    h.advance_to(h.now + 2.0)
    times = [t for t, _ in h.sent]
    assert len(times) == 50
    assert times == [t_first + 0.02 * k for k in range(50)]
    assert [f.timestamp - h.sent[0][1].timestamp for _, f in h.sent] == [960 * k for k in range(50)]
    assert [f.marker for _, f in h.sent] == [True] + [False] * 49
    assert h.types()[-2:] == ["output_audio_buffer.stopped", "response.done"]
    assert h.of_type("response.done")[0]["response"]["status"] == "completed"


def test_a_late_timer_is_caught_up_without_a_burst():
    h = Harness()
    h.send({"type": "response.create"})
    respond(h, 400)
    h.now += 0.07  # the shell's timer fires 70 ms late
    h.conversation.handle_timer(h.now)
    h.drain()
    h.advance_to(h.now + 1.0)
    times = [t for t, _ in h.sent]
    gaps = np.diff(times)
    assert len(times) == 20 and gaps.min() >= 0.01 - 1e-9
    assert times[-1] == pytest.approx(T0 + 0.38)  # back on the 20 ms grid by the end


def test_model_underrun_starts_a_new_talkspurt_with_the_clock():
    h = Harness()
    h.send({"type": "response.create"})
    turn_id = h.start().turn_id
    h.model(turn_id, AudioChunk(tone(440.0, 100)), finished=False)
    h.advance_to(h.now + 0.3)
    h.model(turn_id, AudioChunk(tone(440.0, 100)))
    h.advance_to(h.now + 1.0)
    frames_sent = [f for _, f in h.sent]
    assert len(frames_sent) == 10
    assert [f.marker for f in frames_sent] == [True] + [False] * 4 + [True] + [False] * 4
    assert frames_sent[5].timestamp - frames_sent[0].timestamp == round(0.3 * 48_000)
    assert h.sent[5][0] - h.sent[4][0] == pytest.approx(0.22)


def test_barge_in_cancels_within_the_frame_that_detects_speech():
    h = Harness()
    h.speak(silence(0.2) + vowel(0.5) + silence(0.6))
    turn_id = h.start().turn_id
    h.model(turn_id, AudioChunk(tone(660.0, 2000)), finished=False)
    h.speak(silence(0.3) + vowel(0.3))
    started = h.of_type("input_audio_buffer.speech_started")[-1]
    cut = started["server_timestamp"] - 1_700_000_000.0
    assert all(t <= cut for t, _ in h.sent)  # nothing after the frame that detected speech
    assert h.sent[-1][0] >= cut - 0.02 - 1e-9  # and audio flowed right up to it
    done = h.of_type("response.done")[-1]
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["server_timestamp"] == started["server_timestamp"]
    assert h.types().index("output_audio_buffer.cleared") < h.types().index("response.done")
    assert CancelTurn(turn_id) in h.actions
    h.model(turn_id, AudioChunk(tone(660.0, 200)))  # late output of the cancelled turn is ignored
    h.speak(silence(0.1))
    assert all(t <= cut for t, _ in h.sent)


def test_function_call_is_emitted_while_audio_keeps_flowing_and_its_output_is_given_to_the_next_turn():
    h = Harness()
    h.speak(silence(0.2) + vowel(0.5) + silence(0.6))
    turn_id = h.start().turn_id
    call = FunctionCall("call_1", "get_weather", '{"location": "Paris"}')
    h.model(turn_id, TextDelta("Checking."), AudioChunk(tone(440.0, 200)), call, AudioChunk(tone(660.0, 400)))
    h.advance_to(h.now + 1.0)
    args_done, = h.of_type("response.function_call_arguments.done")
    assert (args_done["call_id"], args_done["name"], args_done["arguments"]) == ("call_1", "get_weather",
                                                                                 '{"location": "Paris"}')
    at = args_done["server_timestamp"] - 1_700_000_000.0
    before = [t for t, _ in h.sent if t <= at]
    after = [t for t, _ in h.sent if t > at]
    assert len(before) == 10 and len(after) == 20  # emitted after the 200 ms before it, with 400 ms still to play
    done = h.of_type("response.done")[-1]["response"]
    assert [item["type"] for item in done["output"]] == ["message", "function_call"]
    assert done["output"][0]["content"][0]["transcript"] == "Checking."
    h.send({"type": "conversation.item.create", "event_id": "c1",
            "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 21}'}})
    created = h.of_type("conversation.item.created")[-1]
    assert created["item"]["output"] == '{"temp_c": 21}'
    h.send({"type": "response.create"})
    nxt = h.start()
    assert nxt.turn.turn_number == 2 and nxt.turn.audio == b""
    assert [i["type"] for i in nxt.turn.items][-3:] == ["message", "function_call", "function_call_output"]


def test_model_failure_ends_that_response_and_the_next_turn_works():
    h = Harness()
    h.speak(silence(0.2) + vowel(0.5) + silence(0.6))
    first = h.start().turn_id
    h.model(first, AudioChunk(tone(440.0, 100)), finished=False)
    h.conversation.model_failed(first, "RuntimeError: boom", h.now)
    h.drain()
    error = h.of_type("error")[-1]["error"]
    assert error["code"] == "model_error" and error["message"] == "response resp_1 failed: RuntimeError: boom"
    assert h.of_type("response.done")[-1]["response"]["status"] == "failed"
    assert not any(isinstance(a, CancelTurn) for a in h.actions)
    h.speak(silence(0.3) + vowel(0.5) + silence(0.6))
    second = h.start()
    assert second.turn_id != first and second.turn.turn_number == 2
    respond(h, 200)
    h.advance_to(h.now + 1.0)
    assert h.of_type("response.done")[-1]["response"]["status"] == "completed"


def test_model_output_that_breaks_the_contract_fails_the_response_and_cancels_the_model():
    h = Harness()
    h.send({"type": "response.create"})
    turn_id = h.start().turn_id
    h.model(turn_id, FunctionCall("c", "f", "{not json"), finished=False)
    assert h.of_type("error")[-1]["error"]["message"] == \
        "response resp_1 failed: function call 'f' has arguments that are not JSON"
    assert CancelTurn(turn_id) in h.actions


MALFORMED = [
    ("{", "invalid_json"),
    ("[1, 2]", "invalid_event"),
    ('{"event_id": "e1"}', "missing_type"),
    ('{"type": "nonsense.event", "event_id": "e1"}', "invalid_event_type"),
    ('{"type": "session.update", "session": 5}', "invalid_value"),
    ('{"type": "session.update", "session": {"instructions": "ok", "turn_detection": {"threshold": 7}}}',
     "invalid_value"),
    ('{"type": "session.update", "session": {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}}',
     "invalid_value"),
    ('{"type": "session.update", "session": {"tools": "get_weather"}}', "invalid_value"),
    ('{"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "nope", '
     '"output": "x"}}', "invalid_value"),
    ('{"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": 3}}', "invalid_value"),
    ('{"type": "conversation.item.create", "item": {"type": "message", "role": "assistant", "content": []}}',
     "invalid_value"),
    ('{"type": "conversation.item.create", "item": {"type": "image"}}', "invalid_value"),
    ('{"type": "response.cancel"}', "response_cancel_not_active"),
    ('{"type": "input_audio_buffer.commit"}', "input_audio_buffer_commit_empty"),
    ('"x' + "y" * 300_000 + '"', "event_too_large"),
    (b"\xff\xfe{", "invalid_json"),
]


@pytest.mark.parametrize("text, code", MALFORMED)
def test_malformed_events_get_one_error_and_change_nothing(text, code):
    h = Harness()
    before = (json.dumps(h.conversation._session_object()), list(h.conversation.items), h.conversation.turn.config)
    h.events.clear()
    h.conversation.receive_event(text, h.now)
    h.drain()
    assert h.types() == ["error"]
    error = h.events[0]["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error" and error["message"]
    if '"event_id": "e1"' in str(text):
        assert error["event_id"] == "e1"
    assert (json.dumps(h.conversation._session_object()), list(h.conversation.items),
            h.conversation.turn.config) == before
    h.speak(silence(0.2) + vowel(0.4) + silence(0.6))  # and the session still works
    assert h.types()[-1] == "conversation.item.created" and h.start().turn.turn_number == 1


def test_error_messages_are_exact():
    h = Harness()
    h.send('{"type": "nonsense.event"}')
    h.send({"type": "session.update", "session": {"turn_detection": {"silence_duration_ms": 20000}}})
    h.send({"type": "response.create"})
    h.send({"type": "response.create"})
    messages = [e["error"]["message"] for e in h.of_type("error")]
    assert messages == ["unknown event type 'nonsense.event'",
                        "turn_detection.silence_duration_ms must be an integer from 0 to 10000",
                        "response resp_1 is still in progress"]
    assert h.of_type("error")[1]["error"]["param"] == "session.turn_detection"


def test_session_update_changes_turn_detection_mid_session():
    h = Harness()
    h.send({"type": "session.update", "session": {"instructions": "be brief",
                                                  "audio": {"input": {"turn_detection": {"silence_duration_ms": 200,
                                                                                         "prefix_padding_ms": 100}}}}})
    updated, = h.of_type("session.updated")
    assert updated["session"]["instructions"] == "be brief"
    assert updated["session"]["turn_detection"]["silence_duration_ms"] == 200
    h.speak(silence(0.5) + vowel(0.5) + silence(0.3))
    assert h.of_type("input_audio_buffer.speech_started")[0]["audio_start_ms"] == 400
    assert h.of_type("input_audio_buffer.speech_stopped")[0]["audio_end_ms"] in (1200, 1220)
    assert h.start().turn.instructions == "be brief"


def test_without_turn_detection_the_client_commits_and_asks():
    h = Harness()
    h.send({"type": "session.update", "session": {"turn_detection": None}})
    assert h.of_type("session.updated")[0]["session"]["turn_detection"] is None
    h.speak(silence(0.2) + vowel(0.5) + silence(0.6))
    assert not h.of_type("input_audio_buffer.speech_started") and not h.actions
    h.send({"type": "input_audio_buffer.commit"})
    h.send({"type": "response.create"})
    assert h.types()[-4:] == ["input_audio_buffer.committed", "conversation.item.created", "response.created",
                              "conversation.item.created"]
    assert len(h.start().turn.audio) == int(1.3 * 48_000) * 2


def test_client_cancel_and_clear():
    h = Harness()
    h.send({"type": "response.create"})
    turn_id = respond(h, 1000)
    h.advance_to(h.now + 0.1)
    h.send({"type": "response.cancel", "response_id": "resp_9"})
    assert h.of_type("error")[-1]["error"]["param"] == "response_id"
    h.send({"type": "response.cancel"})
    done = h.of_type("response.done")[-1]["response"]
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    count = len(h.sent)
    h.advance_to(h.now + 1.0)
    assert len(h.sent) == count and h.conversation.get_timer() is None
    assert turn_id
    h.speak(silence(0.2) + vowel(0.3))
    cleared_item = h.of_type("input_audio_buffer.speech_started")[-1]["item_id"]
    h.send({"type": "input_audio_buffer.clear"})
    assert h.types()[-1] == "input_audio_buffer.cleared"
    h.speak(silence(1.0))
    assert cleared_item not in [e["item_id"] for e in h.of_type("input_audio_buffer.speech_stopped")]
    assert cleared_item not in [item["id"] for item in h.conversation.items]


def test_turn_timing_splits_model_think_from_the_server_share():
    h = Harness()
    h.speak(silence(0.2) + vowel(0.5) + silence(0.6))
    stopped_at = h.of_type("input_audio_buffer.speech_stopped")[0]["server_timestamp"] - 1_700_000_000.0
    h.now = stopped_at  # the model starts thinking when speech stops
    turn_id = h.start().turn_id
    h.advance_to(h.now + 0.25)  # the model thinks for 250 ms
    h.model(turn_id, AudioChunk(tone(440.0, 100)))
    h.advance_to(h.now + 0.5)
    timing, = h.conversation.timings_to_report()
    assert timing.speech_stopped_at == pytest.approx(stopped_at)
    assert timing.model_think == pytest.approx(0.25)
    assert timing.stop_to_first_audio == pytest.approx(0.25)
    assert timing.server_share == pytest.approx(0.0)


def test_response_audio_is_the_model_audio():
    h = Harness()
    h.send({"type": "response.create"})
    respond(h, 200, 880.0)
    h.advance_to(h.now + 1.0)
    assert frame_tones([f.pcm for _, f in h.sent]) == [900] * 10
