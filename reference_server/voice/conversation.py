"""One session's conversation loop, sans-IO: user audio and client events in; paced response
audio, server events and model requests out.

Inputs: `receive_audio(pcm, now)` (decoded 48 kHz mono s16, any length), `receive_event(text, now)`
(a client event from the data channel), `model_output` / `model_finished` / `model_failed` (from
the driver), `handle_timer(now)`. Outputs, drained after every input: `audio_frames_to_send()`,
`events_to_send()` (JSON texts), `next_action()` (StartTurn / CancelTurn for the driver),
`timings_to_report()`, and `get_timer()`.

Rules this file keeps:
- Response audio leaves in 20 ms frames on a real-time schedule: frame k of a talkspurt is due at
  start + k·20 ms, and never less than 10 ms after the previous frame, so a late timer is caught
  up gradually instead of in a burst.
- A response's text and function calls are emitted in step with its audio: when the frames the
  model produced before them have been sent.
- A response is done when the model has finished and its last frame has been sent.
- Barge-in: speech starting during a response drops the rest of its audio at once and ends it
  with `response.done` status "cancelled".
- A malformed client event gets an `error` event and changes nothing else; a model failure ends
  that response with an `error` event and status "failed", and the session goes on.
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .model import AudioChunk, FunctionCall, JsonObject, ModelOutput, TextDelta, TurnInput
from .turn import DEFAULT_TURN_CONFIG, SpeechStarted, SpeechStopped, TurnConfig, TurnConfigError, TurnDetector
from .vad import VoiceActivityDetector

SAMPLE_RATE = 48_000
FRAME = 0.020
FRAME_SAMPLES = 960
FRAME_BYTES = 2 * FRAME_SAMPLES
MIN_GAP = 0.010
MAX_EVENT_BYTES = 256 * 1024
MIN_COMMIT_MS = 100


class EventError(Exception):
    """A client event we refuse; becomes an `error` event with this code and message."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass(slots=True, frozen=True)
class StartTurn:
    turn_id: str
    turn: TurnInput


@dataclass(slots=True, frozen=True)
class CancelTurn:
    turn_id: str


Action = StartTurn | CancelTurn


@dataclass(slots=True, frozen=True)
class OutgoingFrame:
    pcm: bytes  # 20 ms, 48 kHz mono s16
    timestamp: int  # in 48 kHz samples since the conversation began; add the stream's random base
    marker: bool  # first frame of a talkspurt (RFC 3551 §4.1)


@dataclass(slots=True)
class TurnTiming:
    """Where one response's latency went, in seconds on the server's clock."""
    response_id: str
    started_at: float  # StartTurn issued
    speech_stopped_at: float | None = None  # None when the client asked with response.create
    first_model_audio_at: float | None = None
    first_audio_sent_at: float | None = None

    @property
    def stop_to_first_audio(self) -> float | None:
        if self.speech_stopped_at is None or self.first_audio_sent_at is None:
            return None
        return self.first_audio_sent_at - self.speech_stopped_at

    @property
    def model_think(self) -> float | None:
        return None if self.first_model_audio_at is None else self.first_model_audio_at - self.started_at

    @property
    def server_share(self) -> float | None:
        """Server time from speech stopped to first audio sent, the model's think time excluded."""
        total, think = self.stop_to_first_audio, self.model_think
        return None if total is None or think is None else total - think


@dataclass(slots=True)
class _Response:
    id: str
    number: int
    message: JsonObject  # the assistant message item
    timing: TurnTiming
    output: list[JsonObject] = field(default_factory=list)
    # In the model's order: whole frames of its audio (bytes), its text and function calls.
    queue: deque[bytes | TextDelta | FunctionCall] = field(default_factory=deque)
    remainder: bytes = b""  # model audio short of a whole frame
    transcript: str = ""
    model_done: bool = False
    audio_sent: bool = False


class Conversation:
    def __init__(self, session_id: str, now: float, *, vad: VoiceActivityDetector,
                 turn_config: TurnConfig | None = DEFAULT_TURN_CONFIG, model_name: str = "rtcgate-tone",
                 wall_clock_offset: float = 0.0, max_turn_audio: float = 60.0) -> None:
        self.session_id = session_id
        self.model_name = model_name
        self.wall_clock_offset = wall_clock_offset
        self.vad = vad
        self.turn = TurnDetector(vad.frame_ms, turn_config)
        if turn_config is not None:
            vad.set_threshold(turn_config.threshold)
        self.instructions = ""
        self.tools: list[JsonObject] = []
        self.tool_choice: str | JsonObject = "auto"
        self.items: list[JsonObject] = []
        self.responses = 0
        self._max_buffer = int(max_turn_audio * SAMPLE_RATE) * 2
        self._counters: dict[str, int] = {}
        self._origin = now
        self._buffer = bytearray()  # uncommitted user audio
        self._buffer_start = 0  # its first sample's index in the session's audio
        self._unanswered = bytearray()  # committed audio the next response will be given
        self._pending_item_id: str | None = None  # id for the user message of the speech in progress
        self._response: _Response | None = None
        self._events: list[str] = []
        self._frames: list[OutgoingFrame] = []
        self._actions: deque[Action] = deque()
        self._timings: list[TurnTiming] = []
        # playout schedule
        self._in_talkspurt = False  # False between talkspurts: the next frame starts one
        self._anchor = 0.0  # when frame 0 of the current talkspurt was due
        self._anchor_timestamp = 0
        self._sent_in_talkspurt = 0
        self._last_sent: float | None = None
        self._next_timestamp = 0
        self._emit("session.created", now, session=self._session_object())

    # ---- outputs ----------------------------------------------------------------------------

    def audio_frames_to_send(self) -> list[OutgoingFrame]:
        out, self._frames = self._frames, []
        return out

    def events_to_send(self) -> list[str]:
        out, self._events = self._events, []
        return out

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    def timings_to_report(self) -> list[TurnTiming]:
        out, self._timings = self._timings, []
        return out

    def get_timer(self) -> float | None:
        response = self._response
        if response is None or not response.queue or not self._in_talkspurt:
            return None
        return self._due()

    # ---- user audio -------------------------------------------------------------------------

    def receive_audio(self, pcm: bytes, now: float) -> None:
        if len(pcm) % 2:
            pcm = pcm[:-1]
        self._buffer += pcm
        for probability in self.vad.process(pcm):
            event = self.turn.feed(probability)
            if isinstance(event, SpeechStarted):
                self._speech_started(event, now)
            elif isinstance(event, SpeechStopped):
                self._speech_stopped(event, now)
        self._trim_buffer()
        self._pump(now)

    def _trim_buffer(self) -> None:
        if self.turn.config is not None and not self.turn.in_speech:
            keep = (self.turn.config.prefix_padding_ms + self.vad.frame_ms) * SAMPLE_RATE // 1000 * 2
        else:
            keep = self._max_buffer
        excess = len(self._buffer) - keep
        if excess > 0:
            del self._buffer[:excess]
            self._buffer_start += excess // 2

    def _speech_started(self, event: SpeechStarted, now: float) -> None:
        self._drop_audio_before(event.audio_start_ms)
        self._pending_item_id = self._new_id("item")
        self._emit("input_audio_buffer.speech_started", now, audio_start_ms=event.audio_start_ms,
                   item_id=self._pending_item_id)
        config = self.turn.config  # set: speech events come only with turn detection on
        if self._response is not None and config is not None and config.interrupt_response:
            self._end_response(self._response, "cancelled", now, reason="turn_detected")

    def _speech_stopped(self, event: SpeechStopped, now: float) -> None:
        item_id = self._pending_item_id or self._new_id("item")
        self._pending_item_id = None
        self._emit("input_audio_buffer.speech_stopped", now, audio_end_ms=event.audio_end_ms, item_id=item_id)
        self._commit(now, item_id, end_sample=event.audio_end_ms * SAMPLE_RATE // 1000)
        config = self.turn.config  # set: speech events come only with turn detection on
        if config is not None and config.create_response and self._response is None:
            self._start_response(now, speech_stopped_at=now)

    def _drop_audio_before(self, ms: int) -> None:
        drop = min(len(self._buffer) // 2, max(0, ms * SAMPLE_RATE // 1000 - self._buffer_start))
        del self._buffer[:2 * drop]
        self._buffer_start += drop

    def _commit(self, now: float, item_id: str, end_sample: int | None = None) -> None:
        """Move the buffer (up to `end_sample`) into a user message item."""
        cut = len(self._buffer)
        if end_sample is not None:
            cut = max(0, min(cut, 2 * (end_sample - self._buffer_start)))
        audio = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        self._buffer_start += cut // 2
        self._unanswered += audio
        if len(self._unanswered) > self._max_buffer:
            del self._unanswered[:len(self._unanswered) - self._max_buffer]
        previous = self.items[-1]["id"] if self.items else None
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.items.append(item)
        self._emit("input_audio_buffer.committed", now, previous_item_id=previous, item_id=item_id)
        self._emit("conversation.item.created", now, previous_item_id=previous, item=item)

    # ---- client events ----------------------------------------------------------------------

    def receive_event(self, text: str | bytes, now: float) -> None:
        client_event_id = None
        try:
            event = self._parse_event(text)
            client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            if not isinstance(event.get("type"), str):
                raise EventError("missing_type", "event has no string 'type'", "type")
            handler = self._HANDLERS.get(event["type"])
            if handler is None:
                raise EventError("invalid_event_type", f"unknown event type {event['type']!r}", "type")
            handler(self, event, now)
        except EventError as exc:
            self._emit("error", now, error={"type": "invalid_request_error", "code": exc.code, "message": str(exc),
                                            "param": exc.param, "event_id": client_event_id})
        self._pump(now)

    @staticmethod
    def _parse_event(text: str | bytes) -> JsonObject:
        if len(text) > MAX_EVENT_BYTES:
            raise EventError("event_too_large", f"event of {len(text)} bytes is over the {MAX_EVENT_BYTES}-byte limit")
        try:
            event = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EventError("invalid_json", f"event is not valid JSON: {exc}") from None
        if not isinstance(event, dict):
            raise EventError("invalid_event", "event must be a JSON object")
        return event

    def _on_session_update(self, event: JsonObject, now: float) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            raise EventError("invalid_value", "session.update needs a 'session' object", "session")
        # Validate everything first, apply after: a bad field changes nothing.
        instructions, tools, tool_choice = self.instructions, self.tools, self.tool_choice
        if "instructions" in session:
            if not isinstance(session["instructions"], str):
                raise EventError("invalid_value", "session.instructions must be a string", "session.instructions")
            instructions = session["instructions"]
        if "tools" in session:
            if not isinstance(session["tools"], list) or not all(isinstance(t, dict) for t in session["tools"]):
                raise EventError("invalid_value", "session.tools must be a list of objects", "session.tools")
            tools = session["tools"]
        if "tool_choice" in session:
            if not isinstance(session["tool_choice"], (str, dict)):
                raise EventError("invalid_value", "session.tool_choice must be a string or an object",
                                 "session.tool_choice")
            tool_choice = session["tool_choice"]
        turn_config = self.turn.config
        found, raw, param = _turn_detection_field(session)
        if found:
            if raw is None:
                turn_config = None
            else:
                try:
                    turn_config = (turn_config or TurnConfig()).updated(raw)
                except TurnConfigError as exc:
                    raise EventError("invalid_value", str(exc), param) from None
        self.instructions, self.tools, self.tool_choice = instructions, tools, tool_choice
        if found:
            self.turn.configure(turn_config)
            if turn_config is not None:
                self.vad.set_threshold(turn_config.threshold)
            else:
                self._pending_item_id = None
        self._emit("session.updated", now, session=self._session_object())

    def _on_item_create(self, event: JsonObject, now: float) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise EventError("invalid_value", "conversation.item.create needs an 'item' object", "item")
        kind = item.get("type")
        item_id = item.get("id")
        if item_id is not None and (not isinstance(item_id, str) or any(i["id"] == item_id for i in self.items)):
            raise EventError("invalid_value", f"item id {item_id!r} is not a new string id", "item.id")
        item_id = item_id or self._new_id("item")
        stored: JsonObject
        if kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise EventError("invalid_value", "function_call_output needs string 'call_id' and 'output'", "item")
            if not any(i["type"] == "function_call" and i["call_id"] == call_id for i in self.items):
                raise EventError("invalid_value", f"no function_call with call_id {call_id!r}", "item.call_id")
            stored = {"id": item_id, "object": "realtime.item", "type": "function_call_output",
                      "call_id": call_id, "output": output}
        elif kind == "message":
            role, content = item.get("role"), item.get("content")
            if role not in ("user", "system"):
                raise EventError("invalid_value", "message items from the client have role 'user' or 'system'",
                                 "item.role")
            if not isinstance(content, list) or not all(
                    isinstance(c, dict) and c.get("type") == "input_text" and isinstance(c.get("text"), str)
                    for c in content):
                raise EventError("invalid_value", "message content must be a list of input_text parts",
                                 "item.content")
            stored = {"id": item_id, "object": "realtime.item", "type": "message", "role": role,
                      "status": "completed", "content": content}
        else:
            raise EventError("invalid_value", f"item type {kind!r} is not supported "
                                              "(function_call_output or message)", "item.type")
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(stored)
        self._emit("conversation.item.created", now, previous_item_id=previous, item=stored)

    def _on_response_create(self, event: JsonObject, now: float) -> None:
        if self._response is not None:
            raise EventError("conversation_already_has_active_response",
                             f"response {self._response.id} is still in progress")
        self._start_response(now, speech_stopped_at=None)

    def _on_response_cancel(self, event: JsonObject, now: float) -> None:
        response = self._response
        if response is None:
            raise EventError("response_cancel_not_active", "there is no response in progress to cancel")
        wanted = event.get("response_id")
        if wanted is not None and wanted != response.id:
            raise EventError("invalid_value", f"response {wanted!r} is not the one in progress ({response.id})",
                             "response_id")
        self._end_response(response, "cancelled", now, reason="client_cancelled")

    def _on_buffer_clear(self, event: JsonObject, now: float) -> None:
        self._buffer_start += len(self._buffer) // 2
        self._buffer.clear()
        self._pending_item_id = None
        self.turn.reset()
        self._emit("input_audio_buffer.cleared", now)

    def _on_buffer_commit(self, event: JsonObject, now: float) -> None:
        if len(self._buffer) < 2 * SAMPLE_RATE * MIN_COMMIT_MS // 1000:
            raise EventError("input_audio_buffer_commit_empty",
                             f"the input audio buffer holds less than {MIN_COMMIT_MS} ms of audio")
        item_id = self._pending_item_id or self._new_id("item")
        self._pending_item_id = None
        self.turn.reset()
        self._commit(now, item_id)

    _HANDLERS = {
        "session.update": _on_session_update,
        "conversation.item.create": _on_item_create,
        "response.create": _on_response_create,
        "response.cancel": _on_response_cancel,
        "input_audio_buffer.clear": _on_buffer_clear,
        "input_audio_buffer.commit": _on_buffer_commit,
    }

    # ---- responses --------------------------------------------------------------------------

    def _start_response(self, now: float, speech_stopped_at: float | None) -> None:
        self.responses += 1
        response_id = self._new_id("resp")
        turn = TurnInput(turn_number=self.responses, audio=bytes(self._unanswered), items=tuple(self.items),
                         instructions=self.instructions, tools=tuple(self.tools))
        self._unanswered.clear()
        message = {"id": self._new_id("item"), "object": "realtime.item", "type": "message", "role": "assistant",
                   "status": "in_progress", "content": [{"type": "output_audio", "transcript": ""}]}
        response = _Response(response_id, self.responses, message,
                             TurnTiming(response_id, started_at=now, speech_stopped_at=speech_stopped_at))
        response.output.append(message)
        self._response = response
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(message)
        self._emit("response.created", now, response=self._response_object(response, "in_progress"))
        self._emit("conversation.item.created", now, previous_item_id=previous, item=message)
        self._actions.append(StartTurn(response_id, turn))

    def model_output(self, turn_id: str, output: ModelOutput, now: float) -> None:
        response = self._response
        if response is None or response.id != turn_id or response.model_done:
            return  # a cancelled or finished response: late output is dropped
        if isinstance(output, AudioChunk):
            if len(output.pcm) % 2:
                self._fail(response, f"audio chunk of {len(output.pcm)} bytes is not whole 16-bit samples", now)
                return
            if response.timing.first_model_audio_at is None:
                response.timing.first_model_audio_at = now
            audio = response.remainder + output.pcm
            whole = len(audio) - len(audio) % FRAME_BYTES
            was_empty = not response.queue
            for offset in range(0, whole, FRAME_BYTES):
                response.queue.append(audio[offset:offset + FRAME_BYTES])
            response.remainder = audio[whole:]
            if was_empty and whole:
                self._resume_if_underrun(now)
        elif isinstance(output, TextDelta):
            response.queue.append(output)
        elif isinstance(output, FunctionCall):
            try:
                json.loads(output.arguments)
            except ValueError:
                self._fail(response, f"function call {output.name!r} has arguments that are not JSON", now)
                return
            response.queue.append(output)
        self._pump(now)

    def model_finished(self, turn_id: str, now: float) -> None:
        response = self._response
        if response is None or response.id != turn_id or response.model_done:
            return
        if response.remainder:
            if not response.queue:
                self._resume_if_underrun(now)
            response.queue.append(response.remainder.ljust(FRAME_BYTES, b"\0"))
            response.remainder = b""
        response.model_done = True
        self._pump(now)

    def model_failed(self, turn_id: str, message: str, now: float) -> None:
        """The model raised: its generator is over, so there is nothing to cancel."""
        response = self._response
        if response is None or response.id != turn_id:
            return
        response.model_done = True
        self._fail(response, message, now)

    def _fail(self, response: _Response, message: str, now: float) -> None:
        self._emit("error", now, error={"type": "server_error", "code": "model_error",
                                        "message": f"response {response.id} failed: {message}", "param": None,
                                        "event_id": None})
        self._end_response(response, "failed", now, reason="model_error")

    def _end_response(self, response: _Response, status: str, now: float, reason: str | None = None) -> None:
        """End `response`, the one in progress."""
        self._response = None
        if not response.model_done:
            self._actions.append(CancelTurn(response.id))
        if response.audio_sent:
            ending = "output_audio_buffer.stopped" if status == "completed" else "output_audio_buffer.cleared"
            self._emit(ending, now, response_id=response.id)
        response.queue.clear()
        self._in_talkspurt = False
        response.message["status"] = "completed" if status == "completed" else "incomplete"
        if response.transcript:
            self._emit("response.output_audio_transcript.done", now, response_id=response.id,
                       item_id=response.message["id"], output_index=0, content_index=0,
                       transcript=response.transcript)
        details = None if status == "completed" else {"type": status, "reason": reason}
        self._emit("response.done", now, response=self._response_object(response, status, details))
        if response.timing.first_audio_sent_at is not None:
            self._timings.append(response.timing)

    # ---- playout ----------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        self._pump(now)

    def _due(self) -> float:
        """When the next frame of the current talkspurt may leave."""
        due = self._anchor + self._sent_in_talkspurt * FRAME
        return due if self._last_sent is None else max(due, self._last_sent + MIN_GAP)

    def _resume_if_underrun(self, now: float) -> None:
        """Audio arriving after its slot passed starts a new talkspurt now rather than a catch-up burst."""
        if self._in_talkspurt and self._anchor + self._sent_in_talkspurt * FRAME < now:
            self._in_talkspurt = False

    def _pump(self, now: float) -> None:
        response = self._response
        while response is not None and response.queue:
            entry = response.queue[0]
            if isinstance(entry, bytes):
                if not self._in_talkspurt:
                    self._start_talkspurt(now)
                if now < self._due():
                    break
                response.queue.popleft()
                self._send_frame(response, entry, now)
            elif isinstance(entry, TextDelta):
                response.queue.popleft()
                response.transcript += entry.text
                response.message["content"][0]["transcript"] = response.transcript
                self._emit("response.output_audio_transcript.delta", now, response_id=response.id,
                           item_id=response.message["id"], output_index=0, content_index=0, delta=entry.text)
            else:
                response.queue.popleft()
                self._emit_function_call(response, entry, now)
        if response is not None and response.model_done and not response.queue:
            self._end_response(response, "completed", now)

    def _start_talkspurt(self, now: float) -> None:
        start = now if self._last_sent is None else max(now, self._last_sent + FRAME)
        self._in_talkspurt = True
        self._anchor = start
        self._sent_in_talkspurt = 0
        by_clock = round((start - self._origin) * SAMPLE_RATE)
        self._anchor_timestamp = max(by_clock, self._next_timestamp)

    def _send_frame(self, response: _Response, pcm: bytes, now: float) -> None:
        timestamp = self._anchor_timestamp + self._sent_in_talkspurt * FRAME_SAMPLES
        self._frames.append(OutgoingFrame(pcm, timestamp & 0xFFFFFFFF, self._sent_in_talkspurt == 0))
        self._sent_in_talkspurt += 1
        self._next_timestamp = timestamp + FRAME_SAMPLES
        self._last_sent = now
        if not response.audio_sent:
            response.audio_sent = True
            response.timing.first_audio_sent_at = now
            self._emit("output_audio_buffer.started", now, response_id=response.id)

    def _emit_function_call(self, response: _Response, call: FunctionCall, now: float) -> None:
        item = {"id": self._new_id("item"), "object": "realtime.item", "type": "function_call",
                "status": "completed", "call_id": call.call_id, "name": call.name, "arguments": call.arguments}
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        response.output.append(item)
        self._emit("conversation.item.created", now, previous_item_id=previous, item=item)
        self._emit("response.function_call_arguments.done", now, response_id=response.id, item_id=item["id"],
                   output_index=len(response.output) - 1, call_id=call.call_id, name=call.name,
                   arguments=call.arguments)

    # ---- helpers ----------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}_{n}"

    def _emit(self, event_type: str, now: float, **fields: Any) -> None:
        event = {"type": event_type, "event_id": self._new_id("event"),
                 "server_timestamp": round(now + self.wall_clock_offset, 6), **fields}
        self._events.append(json.dumps(event, separators=(",", ":")))

    def _session_object(self) -> JsonObject:
        turn_detection = self.turn.config.as_dict() if self.turn.config is not None else None
        return {"id": self.session_id, "object": "realtime.session", "type": "realtime", "model": self.model_name,
                "output_modalities": ["audio"], "instructions": self.instructions, "tools": self.tools,
                "tool_choice": self.tool_choice, "turn_detection": turn_detection,
                "audio": {"input": {"format": {"type": "audio/opus", "rate": SAMPLE_RATE},
                                    "turn_detection": turn_detection},
                          "output": {"format": {"type": "audio/opus", "rate": SAMPLE_RATE}}}}

    @staticmethod
    def _response_object(response: _Response, status: str, details: JsonObject | None = None) -> JsonObject:
        return {"id": response.id, "object": "realtime.response", "status": status, "status_details": details,
                "output": response.output if status != "in_progress" else [], "turn_number": response.number}


def _turn_detection_field(session: JsonObject) -> tuple[bool, object, str]:
    """Where a session.update puts turn detection: GA `audio.input.turn_detection` or beta `turn_detection`."""
    if "turn_detection" in session:
        return True, session["turn_detection"], "session.turn_detection"
    audio = session.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("input"), dict) and "turn_detection" in audio["input"]:
        return True, audio["input"]["turn_detection"], "session.audio.input.turn_detection"
    return False, None, ""
