"""The realtime API's events as they came on a data channel ("oai-events"): each message parsed
as JSON once, in arrival order, so a voice check and the voice benchmark read the same events.

A message that is no JSON object still takes its place in the order, as an event of type
"(not JSON)" or "(not an object)", so counting events never skips what the target sent.
"""
from __future__ import annotations

import json
from typing import Protocol


class _Message(Protocol):
    time: float
    data: str | bytes


class _Channel(Protocol):
    messages: list[_Message]


class EventLog:
    """(arrival time, event) for every message on `channel`, parsed as it is first read."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self._parsed: list[tuple[float, dict]] = []

    @property
    def events(self) -> list[tuple[float, dict]]:
        for message in self.channel.messages[len(self._parsed):]:
            try:
                event = json.loads(message.data)
            except (TypeError, ValueError):
                event = {"type": "(not JSON)", "data": repr(message.data)[:80]}
            self._parsed.append((message.time, event if isinstance(event, dict) else {"type": "(not an object)"}))
        return self._parsed

    def of_type(self, *types: str, since: int = 0) -> list[tuple[float, dict]]:
        """The events of any of `types`, from the `since`-th event on."""
        return [(time, event) for time, event in self.events[since:] if event.get("type") in types]
