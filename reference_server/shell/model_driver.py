"""The asyncio side of one conversation: runs the model's generator for each StartTurn, feeds
what it yields back into the conversation, cancels it on CancelTurn, and turns a model's
exception into a failed response (the session goes on).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..voice.conversation import Action, Conversation, StartTurn
from ..voice.model import Model, TurnInput

log = logging.getLogger("rtcgate.voice")


class ModelDriver:
    def __init__(self, model: Model, conversation: Conversation, clock: Callable[[], float],
                 on_output: Callable[[], None] | None = None) -> None:
        """`clock` gives the `now` the conversation runs on. `on_output` runs after every output the
        driver feeds in: the shell drains the conversation there (frames now due, events, and the
        actions it routes back to `handle`). Without one, the driver drains the actions itself."""
        self.model = model
        self.conversation = conversation
        self.clock = clock
        self.on_output = on_output if on_output is not None else self.dispatch
        self._tasks: dict[str, asyncio.Task] = {}

    def dispatch(self) -> None:
        """Act on every StartTurn/CancelTurn the conversation has pending."""
        while (action := self.conversation.next_action()) is not None:
            self.handle(action)

    def handle(self, action: Action) -> None:
        if isinstance(action, StartTurn):
            task = asyncio.get_running_loop().create_task(self._run(action.turn_id, action.turn))
            self._tasks[action.turn_id] = task
        else:
            task = self._tasks.pop(action.turn_id, None)
            if task is not None:
                task.cancel()

    @property
    def running(self) -> list[str]:
        return list(self._tasks)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, turn_id: str, turn: TurnInput) -> None:
        generator = None
        try:
            generator = self.model.respond(turn)
            async for output in generator:
                self.conversation.model_output(turn_id, output, self.clock())
                self.on_output()
            self.conversation.model_finished(turn_id, self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken model ends its response, never the session
            log.warning("model failed on %s: %s", turn_id, exc, exc_info=True)
            self.conversation.model_failed(turn_id, f"{type(exc).__name__}: {exc}", self.clock())
        finally:
            self._tasks.pop(turn_id, None)
            aclose = getattr(generator, "aclose", None)
            if aclose is not None:
                await aclose()
        self.on_output()
