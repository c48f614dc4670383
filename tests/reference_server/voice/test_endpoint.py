"""A whole conversation through the endpoint, as the core would drive it: Opus RTP payloads in
(the shipped speech sample), Opus payloads out, JSON events, on a fake clock."""
from __future__ import annotations

import asyncio
import json

from reference_server.shell.tone_model import ToneModel
from reference_server.voice.conversation import StartTurn
from reference_server.voice.endpoint import VoiceEndpoint
from reference_server.voice.opus import OpusDecoder

from .signals import bursts, frame_tones, speech_packets

SILENCE_PACKET = bytes.fromhex("f8fffe")
T0 = 50.0


class Client:
    def __init__(self) -> None:
        self.now = T0
        self.endpoint = VoiceEndpoint("sess_e2e", T0)
        self.sequence = 1000
        self.events: list[dict] = []
        self.received: list[tuple[float, object]] = []
        self.model = ToneModel(think_time=0, function_call_after=2.5, tail_ms=600)

    def drain(self) -> None:
        self.received += [(self.now, out) for out in self.endpoint.audio_to_send()]
        self.events += [json.loads(text) for text in self.endpoint.events_to_send()]
        while (action := self.endpoint.next_action()) is not None:
            if isinstance(action, StartTurn):  # what the driver does, without an event loop
                outputs = asyncio.run(_collect(self.model, action.turn))
                for output in outputs:
                    self.endpoint.conversation.model_output(action.turn_id, output, self.now)
                self.endpoint.conversation.model_finished(action.turn_id, self.now)
                self.drain()

    def tick(self) -> None:
        end = self.now + 0.02
        while (timer := self.endpoint.get_timer()) is not None and timer <= end:
            self.now = max(self.now, timer)
            self.endpoint.handle_timer(self.now)
            self.drain()
        self.now = end

    def send_packets(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            self.tick()
            self.endpoint.receive_rtp(self.sequence, payload, self.now)
            self.sequence += 1
            self.drain()

    def of_type(self, event_type: str) -> list[dict]:
        return [e for e in self.events if e["type"] == event_type]


async def _collect(model, turn):
    return [output async for output in model.respond(turn)]


def heard(received) -> list[int | None]:
    decoder = OpusDecoder()
    return frame_tones([decoder.decode(out.payload) for _, out in received])


def test_a_spoken_turn_a_function_call_its_answer_and_a_barge_in():
    client = Client()
    speech = speech_packets()
    client.send_packets([SILENCE_PACKET] * 25 + speech[:60] + [b"\x0b"] + speech[60:] + [SILENCE_PACKET] * 40)
    assert client.endpoint.receiver.undecodable == 1
    assert len(client.of_type("input_audio_buffer.speech_started")) == 1
    assert len(client.of_type("input_audio_buffer.speech_stopped")) == 1
    call, = client.of_type("response.function_call_arguments.done")  # the turn lasted over 2.5 s
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"location": "Paris", "turn": 1}
    call_time = call["server_timestamp"]
    # Audio kept flowing after the call: the 600 ms tail.
    after_call = [t for t, _ in client.received if t > call_time]
    assert len(after_call) >= 25
    client.send_packets([SILENCE_PACKET] * 40)
    first = list(client.received)
    tones = heard(first)
    assert bursts(tones, 450) == 1 and bursts(tones, 650) == 1
    times = [t for t, _ in first]
    assert all(abs((b - a) - 0.02) < 1e-6 for a, b in zip(times, times[1:]))  # paced, no burst
    stamps = [out.timestamp for _, out in first]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [960] * (len(stamps) - 1)
    assert client.of_type("response.done")[-1]["response"]["status"] == "completed"

    # The client answers the call; the next response plays 2 marker bursts, then 880 Hz bursts for the output.
    output = '{"temperature_c": 21}'
    client.endpoint.receive_event(json.dumps({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": call["call_id"], "output": output}}), client.now)
    client.endpoint.receive_event('{"type": "response.create"}', client.now)
    client.drain()
    client.send_packets([SILENCE_PACKET] * 8)  # 160 ms in: barge in during the response
    client.send_packets(speech[:20])
    second = client.received[len(first):]
    cancelled = client.of_type("response.done")[-1]
    assert cancelled["response"]["status"] == "cancelled"
    barge_at = client.of_type("input_audio_buffer.speech_started")[-1]["server_timestamp"]
    assert cancelled["server_timestamp"] == barge_at
    assert all(t <= barge_at + 1e-6 for t, _ in second)  # server_timestamp is rounded to the microsecond
    assert bursts(heard(second), 450) == 2
    client.send_packets([SILENCE_PACKET] * 10)
    assert len(client.received) == len(first) + len(second)  # nothing more of the cancelled response

    # The barge-in turn is answered as response 3, complete with the function output's bursts gone
    # (an assistant message now follows that output).
    client.send_packets([SILENCE_PACKET] * 60)
    third = client.received[len(first) + len(second):]
    tones = heard(third)
    assert bursts(tones, 450) == 3 and bursts(tones, 900) == 0


def test_the_function_output_shapes_the_next_response_audio():
    client = Client()
    client.model = ToneModel(think_time=0, function_call_after=0.0, tail_ms=200)
    client.endpoint.receive_event('{"type": "response.create"}', client.now)
    client.drain()
    client.send_packets([SILENCE_PACKET] * 30)
    call, = client.of_type("response.function_call_arguments.done")
    output = "sunny, 21 C"  # 11 characters: 11 mod 10 + 1 = 2 bursts of 880 Hz
    client.endpoint.receive_event(json.dumps({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": call["call_id"], "output": output}}), client.now)
    client.endpoint.receive_event('{"type": "response.create"}', client.now)
    client.drain()
    count = len(client.received)
    client.send_packets([SILENCE_PACKET] * 60)
    tones = heard(client.received[count:])
    assert bursts(tones, 450) == 2 and bursts(tones, 900) == 2 and bursts(tones, 650) == 1
