"""The asyncio driver with scripted models; the conversation's clock is a plain number we move."""
from __future__ import annotations

import asyncio
import json

from reference_server.shell.model_driver import ModelDriver
from reference_server.shell.tone_model import ToneModel
from reference_server.voice.conversation import Conversation
from reference_server.voice.model import AudioChunk, FunctionCall, TurnInput
from reference_server.voice.tones import tone
from reference_server.voice.vad import VoiceActivityDetector, WebRtcVad


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


class FlakyModel:
    """Raises on the turns listed, otherwise answers with 100 ms of tone."""

    def __init__(self, failing: set[int]) -> None:
        self.failing = failing

    async def respond(self, turn: TurnInput):
        yield AudioChunk(tone(440.0, 60))
        if turn.turn_number in self.failing:
            raise RuntimeError(f"turn {turn.turn_number} broke")
        yield AudioChunk(tone(440.0, 40))


class EndlessModel:
    def __init__(self) -> None:
        self.closed = False

    async def respond(self, turn: TurnInput):
        try:
            while True:
                yield AudioChunk(tone(440.0, 20))
                await asyncio.sleep(3600)
        finally:
            self.closed = True


def make(model, clock: Clock, *, shell: bool = True):
    """A conversation, its driver for `model`, and the times the driver called the shell back
    (no callback at all without a `shell`)."""
    conversation = Conversation("s", clock.now, vad=VoiceActivityDetector(WebRtcVad()))
    outputs = []

    def on_output():  # what a shell does: drain, and hand actions back
        outputs.append(clock.now)
        driver.dispatch()

    driver = ModelDriver(model, conversation, clock, **({"on_output": on_output} if shell else {}))
    return conversation, driver, outputs


def events(conversation: Conversation) -> list[dict]:
    return [json.loads(text) for text in conversation.events_to_send()]


async def settle(driver: ModelDriver) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
        if not driver.running:
            return


async def client_sends(event_type: str, conversation: Conversation, driver: ModelDriver, clock: Clock) -> None:
    """A client event with no fields reaches the conversation, the driver starts or stops what it
    asks for, and the model's work settles."""
    conversation.receive_event(json.dumps({"type": event_type}), clock.now)
    driver.dispatch()
    await settle(driver)


def play_out(conversation: Conversation, clock: Clock) -> int:
    sent = 0
    while (timer := conversation.get_timer()) is not None:
        clock.now = timer
        conversation.handle_timer(timer)
        sent += len(conversation.audio_frames_to_send())
    return sent


def test_runs_the_tone_model_to_a_completed_response():
    async def run():
        clock = Clock()
        conversation, driver, outputs = make(ToneModel(think_time=0, tail_ms=200), clock)
        await client_sends("response.create", conversation, driver, clock)
        return conversation, clock, outputs
    conversation, clock, outputs = asyncio.run(run())
    assert outputs  # the shell was told to drain after each output
    frames_sent = len(conversation.audio_frames_to_send()) + play_out(conversation, clock)
    assert frames_sent == 8 + 10  # one 440 Hz burst (80 ms on, 80 ms off) and the 200 ms tail
    assert [e["type"] for e in events(conversation)][-1] == "response.done"


def test_a_model_that_raises_ends_its_response_and_the_next_turn_works():
    async def run():
        clock = Clock()
        conversation, driver, _ = make(FlakyModel({1}), clock)
        await client_sends("response.create", conversation, driver, clock)
        first = events(conversation)
        play_out(conversation, clock)
        await client_sends("response.create", conversation, driver, clock)
        play_out(conversation, clock)
        return first, events(conversation)
    first, second = asyncio.run(run())
    error = next(e for e in first if e["type"] == "error")["error"]
    assert error["message"] == "response resp_1 failed: RuntimeError: turn 1 broke"
    assert [e["response"]["status"] for e in first if e["type"] == "response.done"] == ["failed"]
    assert [e["response"]["status"] for e in second if e["type"] == "response.done"] == ["completed"]


def closed_after(model, end=None, *, shell: bool = True) -> list[dict]:
    """Start a response of `model`, then `end(conversation, driver, clock)` it (None: it ends by
    itself); the model must be closed and nothing left running. Returns what the conversation sent."""
    async def run():
        clock = Clock()
        conversation, driver, _ = make(model, clock, shell=shell)
        await client_sends("response.create", conversation, driver, clock)
        if end is not None:
            await end(conversation, driver, clock)
        return driver, events(conversation)
    driver, emitted = asyncio.run(run())
    assert model.closed and driver.running == []
    return emitted


def test_cancel_turn_stops_the_model_and_closes_its_generator():
    async def cancel(conversation, driver, clock):
        assert driver.running == ["resp_1"]
        await client_sends("response.cancel", conversation, driver, clock)
    assert closed_after(EndlessModel(), cancel)[-1]["response"]["status"] == "cancelled"


def test_close_cancels_everything_running():
    closed_after(EndlessModel(), lambda conversation, driver, clock: driver.aclose())


def test_without_a_shell_callback_the_driver_takes_the_cancel_of_a_contract_breaking_model():
    class BadArguments:
        def __init__(self) -> None:
            self.closed = False

        async def respond(self, turn):
            try:
                yield FunctionCall("c", "f", "{oops")
                await asyncio.sleep(3600)
            finally:
                self.closed = True

    assert closed_after(BadArguments(), shell=False)[-1]["response"]["status"] == "failed"


def test_function_call_passes_through_in_step_with_audio():
    class Caller:
        async def respond(self, turn):
            yield AudioChunk(tone(440.0, 40))
            yield FunctionCall("call_x", "get_weather", "{}")
            yield AudioChunk(tone(660.0, 40))

    async def run():
        clock = Clock()
        conversation, driver, _ = make(Caller(), clock)
        await client_sends("response.create", conversation, driver, clock)
        before = [e["type"] for e in events(conversation)]
        play_out(conversation, clock)
        return before, [e["type"] for e in events(conversation)]
    before, after = asyncio.run(run())
    assert "response.function_call_arguments.done" not in before  # 40 ms of audio must play first
    assert "response.function_call_arguments.done" in after
