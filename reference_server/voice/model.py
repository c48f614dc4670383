"""The model interface, its loader, and the embedded default model.

A model is any object with `respond(turn: TurnInput) -> AsyncIterator[ModelOutput]` (an async
generator method); `load_model("module:factory", **options)` imports the module and calls the
factory with the options. The driver runs one `respond` per response and closes it on cancel.

The default, `ToneModel`, needs nothing from outside and answers deterministically, so a client
can recognise each answer (all tones 80 ms on / 80 ms off, 5 ms ramps, amplitude 0.3):
1. after `think_time` seconds, n′ = ((n − 1) mod 10) + 1 bursts of 440 Hz, where n is the
   response's number in the session (1, 2, …; cancelled responses count);
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

import asyncio
import importlib
import json
import math
from dataclasses import dataclass
from typing import AsyncIterator, Protocol

import numpy as np

SAMPLE_RATE = 48_000
DEFAULT_MODEL = "reference_server.voice.model:ToneModel"
MARKER_HZ = 440.0
OUTPUT_HZ = 880.0
TAIL_HZ = 660.0
BURST_MS = 80
RAMP_MS = 5
AMPLITUDE = 0.3


class ModelError(Exception):
    pass


@dataclass(slots=True, frozen=True)
class AudioChunk:
    pcm: bytes  # 48 kHz mono signed 16-bit little-endian, any whole number of samples


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: str  # JSON text


ModelOutput = AudioChunk | TextDelta | FunctionCall


@dataclass(slots=True, frozen=True)
class TurnInput:
    turn_number: int  # the response's number in the session, from 1
    audio: bytes  # the user's audio committed since the previous response, 48 kHz mono s16
    items: tuple[dict, ...]  # the conversation so far, oldest first, in the realtime APIs' item shape
    instructions: str = ""
    tools: tuple[dict, ...] = ()


class Model(Protocol):
    def respond(self, turn: TurnInput) -> AsyncIterator[ModelOutput]: ...


def load_model(spec: str, **options) -> Model:
    """`package.module:factory` → factory(**options)."""
    module_name, sep, factory_name = spec.partition(":")
    if not sep or not module_name or not factory_name:
        raise ModelError(f"model {spec!r} is not of the form module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"cannot import model module {module_name!r}: {exc}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ModelError(f"module {module_name!r} has no callable {factory_name!r}")
    model = factory(**options)
    if not callable(getattr(model, "respond", None)):
        raise ModelError(f"{spec} returned {type(model).__name__}, which has no respond(turn) method")
    return model


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


def pending_function_output(items: tuple[dict, ...]) -> str | None:
    """The output of the latest function_call_output item after the last assistant message."""
    found = None
    for item in items:
        if item.get("type") == "message" and item.get("role") == "assistant":
            found = None
        elif item.get("type") == "function_call_output":
            found = item.get("output", "")
    return found


class ToneModel:
    def __init__(self, think_time: float = 0.2, function_call_after: float = 2.5, tail_ms: int = 1000) -> None:
        self.think_time = think_time
        self.function_call_after = function_call_after
        self.tail_ms = tail_ms

    async def respond(self, turn: TurnInput) -> AsyncIterator[ModelOutput]:
        if self.think_time > 0:
            await asyncio.sleep(self.think_time)
        n = turn.turn_number
        output = pending_function_output(turn.items)
        text = f"Response {n}."
        if output is not None:
            text += f" The function returned: {output}."
        yield TextDelta(text)
        yield AudioChunk(bursts(MARKER_HZ, (n - 1) % 10 + 1))
        if output is not None:
            yield AudioChunk(bursts(OUTPUT_HZ, len(output) % 10 + 1))
        if len(turn.audio) / (2 * SAMPLE_RATE) >= self.function_call_after:
            yield FunctionCall(f"call_{n}", "get_weather", json.dumps({"location": "Paris", "turn": n}))
        yield AudioChunk(tone(TAIL_HZ, self.tail_ms))

