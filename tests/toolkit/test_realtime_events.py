"""toolkit.peer.realtime_events: the events a voice check and the voice benchmark read."""
from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.peer.realtime_events import EventLog


@dataclass
class Message:
    time: float
    data: str | bytes


@dataclass
class Channel:
    messages: list[Message] = field(default_factory=list)


def test_every_message_keeps_its_place_and_is_parsed_once():
    channel = Channel([Message(1.0, '{"type": "session.created"}'), Message(2.0, b"\xff not json"),
                       Message(3.0, "[1, 2]")])
    log = EventLog(channel)
    assert [event["type"] for _, event in log.events] == ["session.created", "(not JSON)", "(not an object)"]
    first = log.events[0][1]
    channel.messages.append(Message(4.0, '{"type": "error", "error": {"message": "no"}}'))
    assert log.events[0][1] is first, "an event already read is not parsed again"
    assert log.of_type("error") == [(4.0, {"type": "error", "error": {"message": "no"}})]


def test_of_type_counts_from_since():
    channel = Channel([Message(float(n), f'{{"type": "{kind}"}}')
                       for n, kind in enumerate(["response.done", "x", "response.done"])])
    log = EventLog(channel)
    assert [time for time, _ in log.of_type("response.done")] == [0.0, 2.0]
    assert [time for time, _ in log.of_type("response.done", since=1)] == [2.0]
