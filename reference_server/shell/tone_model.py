"""The embedded default voice model: it thinks for `think_time` seconds on the event loop, then
yields the deterministic answer `reference_server/voice/tones.py` describes. It needs nothing
from outside, so `rtcgate serve` answers voice out of the box."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..voice.model import ModelOutput, TurnInput
from ..voice.tones import answer


class ToneModel:
    def __init__(self, think_time: float = 0.2, function_call_after: float = 2.5, tail_ms: int = 1000) -> None:
        self.think_time = think_time
        self.function_call_after = function_call_after
        self.tail_ms = tail_ms

    async def respond(self, turn: TurnInput) -> AsyncIterator[ModelOutput]:
        if self.think_time > 0:
            await asyncio.sleep(self.think_time)
        for output in answer(turn, self.function_call_after, self.tail_ms):
            yield output
