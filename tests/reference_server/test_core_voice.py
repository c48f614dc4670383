"""The voice loop inside the core, on a fake clock: Opus RTP in, paced Opus RTP out under the
server's own stream, events gated on the events channel, model requests out as VoiceAction."""
from __future__ import annotations

import asyncio
import json
import random
import struct

from reference_server.core import CoreConfig, ServerCore
from reference_server.events import VoiceAction, VoiceMessage, VoiceStarted
from reference_server.shell.tone_model import ToneModel
from reference_server.voice.conversation import StartTurn
from reference_server.voice.endpoint import VoiceEndpoint
from toolkit.peer import RtpReceived

from .test_core import CERT, SERVER, Harness, core_events, drain
from .voice.signals import speech_packets

SILENCE = bytes.fromhex("f8fffe")


class VoiceHarness(Harness):
    def __init__(self) -> None:
        super().__init__()
        self.core = ServerCore(CoreConfig(advertise_address=SERVER[0], port=SERVER[1]), CERT,
                               random_bytes=random.Random(7).randbytes,
                               voice_factory=lambda sid, now: VoiceEndpoint(sid, now))
        self.model = ToneModel(think_time=0, function_call_after=2.5, tail_ms=200)
        self.events: list = []

    def run_model(self) -> None:
        """What the shell's ModelDriver does, without an event loop."""
        for event in core_events(self.core):
            self.events.append(event)
            if isinstance(event, VoiceAction) and isinstance(event.action, StartTurn):
                outputs = asyncio.run(collect(self.model, event.action.turn))
                conversation = self.core.voice_endpoint(event.session_id).conversation
                for output in outputs:
                    conversation.model_output(event.action.turn_id, output, self.now)
                conversation.model_finished(event.action.turn_id, self.now)
                self.core.voice_input(event.session_id, self.now)
                self.pump()

    def play(self, peer, payloads, sequence_start=0) -> None:
        for i, payload in enumerate(payloads):
            self.advance(0.02, step=0.02)
            peer.send_rtp(payload, timestamp=960 * (sequence_start + i))
            self.pump()
            self.run_model()


async def collect(model, turn):
    return [output async for output in model.respond(turn)]


def test_speech_gets_a_paced_response_under_the_servers_stream():
    h = VoiceHarness()
    peer, sid = h.connect()
    h.run_model()
    assert any(isinstance(e, VoiceStarted) and e.session_id == sid for e in h.events)
    h.play(peer, [SILENCE] * 10 + speech_packets() + [SILENCE] * 60)
    received = [e.packet for e in drain(peer) if isinstance(e, RtpReceived)]
    assert len(received) >= 15  # one 440 Hz burst (8 frames) and the 200 ms tail
    session = h.session(sid)
    headers = [struct.unpack_from("!BBHII", p) for p in received]
    assert {ssrc for *_, ssrc in headers} == {session.outbound.ssrc}
    assert {pt & 0x7F for _, pt, *_ in headers} == {111}
    seqs = [seq for _, _, seq, _, _ in headers]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))
    assert any(isinstance(e, VoiceAction) for e in h.events)
    # No data channel was offered: the conversation's events go nowhere, and nothing piles up.
    assert not any(isinstance(e, VoiceMessage) for e in h.events)
    assert h.core.metrics.voice["stop_to_first_audio"].count == 1
    assert h.core.metrics.packets_sent["srtp"] == len(received)


def test_events_wait_for_the_events_channel_then_flow():
    h = VoiceHarness()
    peer, sid = h.connect(datachannel=True)
    h.run_model()
    assert not any(isinstance(e, VoiceMessage) for e in h.events)
    h.core.voice_channel_opened(sid, h.now)
    h.run_model()
    messages = [json.loads(e.text) for e in h.events if isinstance(e, VoiceMessage)]
    assert messages[0]["type"] == "session.created"
    h.core.voice_event(sid, "{not json", h.now)
    h.run_model()
    errors = [json.loads(e.text) for e in h.events if isinstance(e, VoiceMessage)]
    assert errors[-1]["type"] == "error"


def test_rtp_of_another_payload_type_is_dropped_not_decoded():
    h = VoiceHarness()
    peer, sid = h.connect()
    peer.send_rtp(SILENCE, timestamp=0, payload_type=96)
    h.pump()
    assert h.core.metrics.drops["rtp_unexpected_payload_type"] == 1
    assert h.core.voice_endpoint(sid).receiver.jitter.stats.received == 0


def test_the_voice_timer_drives_pacing_and_survives_session_end():
    h = VoiceHarness()
    peer, sid = h.connect()
    h.play(peer, [SILENCE] * 5 + speech_packets()[:150] + [SILENCE] * 40)
    assert h.core.get_timer() is not None
    h.core.close_session(sid, h.now)
    h.advance(1.0)
    assert h.core._live_voice_timer() is None
