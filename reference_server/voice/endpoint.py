"""One session's voice loop as the server core sees it: Opus RTP payloads and data-channel text
in; Opus payloads (with their RTP timestamp and marker) and data-channel text out.

The core keeps RTP itself (SSRC, sequence numbers, SRTP); this class keeps everything audio.
The model side goes through `conversation` (`next_action()`, `model_output(...)`), which the
asyncio driver holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .conversation import Action, Conversation, TurnTiming
from .opus import OpusEncoder
from .receiver import AudioReceiver
from .turn import DEFAULT_TURN_CONFIG, TurnConfig
from .vad import VoiceActivityDetector, create_backend


@dataclass(slots=True, frozen=True)
class OutgoingAudio:
    payload: bytes  # one Opus packet of 20 ms
    timestamp: int  # 48 kHz units since the session's voice began; add the stream's random base
    marker: bool


class VoiceEndpoint:
    def __init__(self, session_id: str, now: float, *, vad: str = "webrtcvad",
                 vad_options: dict[str, Any] | None = None,
                 turn_config: TurnConfig | None = DEFAULT_TURN_CONFIG, model_name: str = "rtcgate-tone",
                 wall_clock_offset: float = 0.0) -> None:
        detector = VoiceActivityDetector(create_backend(vad, **(vad_options or {})))
        self.conversation = Conversation(session_id, now, vad=detector, turn_config=turn_config,
                                         model_name=model_name, wall_clock_offset=wall_clock_offset)
        self.receiver = AudioReceiver()
        self.encoder = OpusEncoder()

    def receive_rtp(self, sequence: int, payload: bytes, now: float) -> None:
        """One RTP packet's Opus payload (the caller checked the payload type)."""
        self.receiver.receive(sequence, payload, now)
        self._feed(now)

    def receive_event(self, text: str | bytes, now: float) -> None:
        self.conversation.receive_event(text, now)

    def handle_timer(self, now: float) -> None:
        self.receiver.handle_timer(now)
        self._feed(now)
        self.conversation.handle_timer(now)

    def get_timer(self) -> float | None:
        timers = [t for t in (self.receiver.get_timer(), self.conversation.get_timer()) if t is not None]
        return min(timers) if timers else None

    def audio_to_send(self) -> list[OutgoingAudio]:
        return [OutgoingAudio(self.encoder.encode(frame.pcm), frame.timestamp, frame.marker)
                for frame in self.conversation.audio_frames_to_send()]

    def events_to_send(self) -> list[str]:
        return self.conversation.events_to_send()

    def next_action(self) -> Action | None:
        return self.conversation.next_action()

    def timings_to_report(self) -> list[TurnTiming]:
        return self.conversation.timings_to_report()

    def _feed(self, now: float) -> None:
        for pcm in self.receiver.pcm_ready():
            self.conversation.receive_audio(pcm, now)
