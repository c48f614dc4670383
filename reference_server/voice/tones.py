"""What the embedded tone model answers: deterministic audio a client can recognise, so the
whole voice path can be verified without a real model. No clock here; the model's think time
is the shell's (`reference_server/shell/tone_model.py`, `ToneModel`).

All tones are 80 ms on / 80 ms off, 5 ms ramps, amplitude 0.3. The answer to response n is:
1. n′ = ((n − 1) mod 10) + 1 bursts of 440 Hz (n counts the session's responses, 1, 2, …;
   cancelled responses count);
2. if a `function_call_output` item follows the last assistant message in the conversation,
   m = (len(output) mod 10) + 1 bursts of 880 Hz, len counted in characters (the latest such
   output when there are several);
3. if the user's audio for this turn (prefix padding and trailing silence included) lasts at
   least `function_call_after` seconds, a call `get_weather` with arguments
   `{"location": "Paris", "turn": n}` and call id `call_<n>`;
4. a 660 Hz tail of `tail_ms` (1000 ms by default), so audio keeps flowing after the call.
Text: "Response n." and, with a function output, " The function returned: <output>."
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np

from .model import AudioChunk, FunctionCall, JsonObject, ModelOutput, TextDelta, TurnInput

SAMPLE_RATE = 48_000
MARKER_HZ = 440.0
OUTPUT_HZ = 880.0
TAIL_HZ = 660.0
BURST_MS = 80
RAMP_MS = 5
AMPLITUDE = 0.3


def tone(frequency: float, duration_ms: int) -> bytes:
    """A sine burst with raised-cosine edges (no clicks, so Opus keeps it clean)."""
    n = SAMPLE_RATE * duration_ms // 1000
    t = np.arange(n) / SAMPLE_RATE
    wave = np.sin(2 * math.pi * frequency * t) * AMPLITUDE * 32767
    ramp = min(n // 2, SAMPLE_RATE * RAMP_MS // 1000)
    if ramp:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, ramp))
        wave[:ramp] *= edge
        wave[n - ramp:] *= edge[::-1]
    return np.rint(wave).astype("<i2").tobytes()


def silence(duration_ms: int) -> bytes:
    return bytes(2 * SAMPLE_RATE * duration_ms // 1000)


def bursts(frequency: float, count: int) -> bytes:
    return (tone(frequency, BURST_MS) + silence(BURST_MS)) * count


def pending_function_output(items: tuple[JsonObject, ...]) -> str | None:
    """The output of the latest function_call_output item after the last assistant message."""
    found = None
    for item in items:
        if item.get("type") == "message" and item.get("role") == "assistant":
            found = None
        elif item.get("type") == "function_call_output":
            found = item.get("output", "")
    return found


def answer(turn: TurnInput, function_call_after: float, tail_ms: int) -> Iterator[ModelOutput]:
    """The tone model's answer to `turn`, output by output (see the module), each made when asked for."""
    n = turn.turn_number
    output = pending_function_output(turn.items)
    text = f"Response {n}."
    if output is not None:
        text += f" The function returned: {output}."
    yield TextDelta(text)
    yield AudioChunk(bursts(MARKER_HZ, (n - 1) % 10 + 1))
    if output is not None:
        yield AudioChunk(bursts(OUTPUT_HZ, len(output) % 10 + 1))
    if len(turn.audio) / (2 * SAMPLE_RATE) >= function_call_after:
        yield FunctionCall(f"call_{n}", "get_weather", json.dumps({"location": "Paris", "turn": n}))
    yield AudioChunk(tone(TAIL_HZ, tail_ms))
