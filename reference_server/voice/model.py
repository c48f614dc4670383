"""The model interface and its loader.

A model is any object with `respond(turn: TurnInput) -> AsyncIterator[ModelOutput]` (an async
generator method); `load_model("module:factory", **options)` imports the module and calls the
factory with the options. The conversation consumes what a model yields; the shell's model
driver runs one `respond` per response as a task and closes it on cancel. The default model,
the embedded tone model, is `DEFAULT_MODEL`: its answer is `voice/tones.py`, its think time the
shell's (`reference_server/shell/tone_model.py`).
"""
from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_MODEL = "reference_server.shell.tone_model:ToneModel"


JsonObject = dict[str, Any]
"""A JSON object in the realtime APIs' shape: a conversation item, a tool, an event."""


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
    items: tuple[JsonObject, ...]  # the conversation so far, oldest first, in the realtime APIs' item shape
    instructions: str = ""
    tools: tuple[JsonObject, ...] = ()


class Model(Protocol):
    def respond(self, turn: TurnInput) -> AsyncIterator[ModelOutput]: ...


def load_model(spec: str, **options: Any) -> Model:
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
    model: Model = factory(**options)
    if not callable(getattr(model, "respond", None)):
        raise ModelError(f"{spec} returned {type(model).__name__}, which has no respond(turn) method")
    return model
