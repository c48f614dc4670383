from __future__ import annotations

import asyncio
import json

import pytest

from reference_server.shell.tone_model import ToneModel
from reference_server.voice.model import (
    DEFAULT_MODEL,
    AudioChunk,
    FunctionCall,
    ModelError,
    TextDelta,
    TurnInput,
    load_model,
)
from reference_server.voice.opus import OpusDecoder, OpusEncoder
from reference_server.voice.tones import pending_function_output

from .signals import bursts, frame_tones, frames

SECOND = 96_000  # bytes of 48 kHz s16 mono


def collect(model, turn: TurnInput) -> list:
    async def run():
        return [output async for output in model.respond(turn)]
    return asyncio.run(run())


def audio_tones(outputs: list, through_opus: bool = False) -> list[int | None]:
    pcm = b"".join(o.pcm for o in outputs if isinstance(o, AudioChunk))
    pieces = frames(pcm)
    if through_opus:
        encoder, decoder = OpusEncoder(), OpusDecoder()
        pieces = [decoder.decode(encoder.encode(p)) for p in pieces]
    return frame_tones(pieces)


@pytest.mark.parametrize("n, expected", [(1, 1), (3, 3), (10, 10), (12, 2)])
def test_marker_bursts_encode_the_turn_number_even_through_opus(n, expected):
    outputs = collect(ToneModel(think_time=0, tail_ms=300), TurnInput(n, b"", ()))
    for through_opus in (False, True):
        tones = audio_tones(outputs, through_opus)
        assert bursts(tones, 440) == expected
        assert bursts(tones, 660) == 1 and bursts(tones, 880) == 0
    assert outputs[0] == TextDelta(f"Response {n}.")
    assert not any(isinstance(o, FunctionCall) for o in outputs)


def test_long_turn_gets_a_function_call_partway_with_audio_after_it():
    outputs = collect(ToneModel(think_time=0, function_call_after=2.0), TurnInput(4, bytes(2 * SECOND), ()))
    call_index = next(i for i, o in enumerate(outputs) if isinstance(o, FunctionCall))
    call = outputs[call_index]
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("call_4", "get_weather",
                                                                    {"location": "Paris", "turn": 4})
    assert any(isinstance(o, AudioChunk) for o in outputs[:call_index])
    tail = b"".join(o.pcm for o in outputs[call_index:] if isinstance(o, AudioChunk))
    assert len(tail) == SECOND  # a second of 660 Hz after the call
    short = collect(ToneModel(think_time=0, function_call_after=2.0), TurnInput(4, bytes(2 * SECOND - 2), ()))
    assert not any(isinstance(o, FunctionCall) for o in short)


def test_function_output_shapes_the_next_response():
    items = ({"type": "message", "role": "assistant"}, {"type": "function_call", "call_id": "call_1"},
             {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 21}'})
    outputs = collect(ToneModel(think_time=0, tail_ms=200), TurnInput(2, b"", items))
    tones = audio_tones(outputs, through_opus=True)
    assert bursts(tones, 440) == 2
    assert bursts(tones, 900) == len('{"temp_c": 21}') % 10 + 1  # 880 Hz, read at 50 Hz resolution
    assert outputs[0] == TextDelta('Response 2. The function returned: {"temp_c": 21}.')


def test_only_outputs_after_the_last_assistant_message_count():
    answered = ({"type": "function_call_output", "output": "old"}, {"type": "message", "role": "assistant"})
    assert pending_function_output(answered) is None
    assert pending_function_output(answered + ({"type": "function_call_output", "output": "a"},
                                               {"type": "function_call_output", "output": "bb"})) == "bb"


def test_think_time_is_slept_before_the_first_output(monkeypatch):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    outputs = collect(ToneModel(think_time=0.35), TurnInput(1, b"", ()))
    assert slept == [0.35] and outputs[0] == TextDelta("Response 1.")


def test_load_model_by_module_and_factory():
    model = load_model(DEFAULT_MODEL, think_time=0.5)
    assert isinstance(model, ToneModel) and model.think_time == 0.5


@pytest.mark.parametrize("spec, message", [
    ("nocolon", "model 'nocolon' is not of the form module:factory"),
    ("no_such_module_xyz:f", "cannot import model module 'no_such_module_xyz': No module named 'no_such_module_xyz'"),
    ("json:nothing", "module 'json' has no callable 'nothing'"),
    ("json:JSONDecoder", "json:JSONDecoder returned JSONDecoder, which has no respond(turn) method"),
])
def test_load_model_errors(spec, message):
    with pytest.raises(ModelError) as info:
        load_model(spec)
    assert str(info.value) == message
