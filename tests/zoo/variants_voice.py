"""Voice-loop variants: late VAD events, slow first audio, no barge-in, a forgotten function output,
bursty playout. Each is the reference server with its voice endpoint swapped (`voice_endpoint_class`),
usually for one whose conversation loop has one method changed (the variant is then that conversation).
"""

from __future__ import annotations

from collections import deque

from reference_server.voice.conversation import FRAME, Conversation
from reference_server.voice.endpoint import VoiceEndpoint
from tests.zoo import variant
from tests.zoo.seams import per_instance

VAD_DELAY_FRAMES = 15
"""voice-late-vad holds 300 ms of decoded audio back from the VAD."""
PRE_ROLL = 0.4
BURST_FRAMES = 10


@variant("voice-late-vad", checks=("VOICE-01",),
         why="runs its VAD behind a 300 ms buffer, so speech_started and speech_stopped reach the client 300 ms late")
class LateVadEndpoint(VoiceEndpoint):
    _held: deque[bytes] = per_instance(deque)

    def _feed(self, now: float) -> None:
        self._held.extend(self.receiver.pcm_ready())
        while len(self._held) > VAD_DELAY_FRAMES:
            self.conversation.receive_audio(self._held.popleft(), now)


@variant("voice-slow-first-audio", checks=("VOICE-02",),
         why="holds each answer's first frame back 400 ms (a playout pre-roll nobody asked for)")
class PreRollConversation(Conversation):
    def _start_talkspurt(self, now: float) -> None:
        super()._start_talkspurt(now)
        if not self._response.audio_sent:
            self._anchor += PRE_ROLL


@variant("voice-no-barge-in", checks=("VOICE-03",),
         why="keeps playing its answer when the user starts talking over it (no barge-in, no cancel)")
class NoBargeInConversation(Conversation):
    def _speech_started(self, event, now: float) -> None:
        response, self._response = self._response, None  # the answer in progress is not seen, so not cancelled
        super()._speech_started(event, now)
        self._response = response


@variant("voice-ignores-function-output", checks=("VOICE-04",),
         why="acknowledges a function_call_output item but never gives it to the model, so the next answer "
             "ignores it")
class ForgetsOutputConversation(Conversation):
    def _on_item_create(self, event: dict, now: float) -> None:
        super()._on_item_create(event, now)
        if self.items and self.items[-1]["type"] == "function_call_output":
            self.items.pop()  # acknowledged with conversation.item.created, never shown to the model

    _HANDLERS = {**Conversation._HANDLERS, "conversation.item.create": _on_item_create}


@variant("voice-bursty-audio", checks=("VOICE-05",),
         why="sends its answer in bursts of 10 frames every 200 ms instead of one 20 ms frame every 20 ms")
class BurstyConversation(Conversation):
    def _due(self) -> float:
        return self._anchor + self._sent_in_talkspurt // BURST_FRAMES * BURST_FRAMES * FRAME
