"""Turn detection with the realtime APIs' server-VAD parameters, one VAD frame at a time.

Times are milliseconds of input audio since the session's first sample:
- speech starts on the first frame whose probability reaches `threshold`; `audio_start_ms` is
  that frame's start minus `prefix_padding_ms` (never before the buffer's start), which is where
  the audio handed to the model begins;
- speech stops once `silence_duration_ms` of frames below the threshold have followed the last
  speech frame; `audio_end_ms` is the end of the frame that completed the silence (last speech
  + silence duration), which is where the model's audio ends.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


class TurnConfigError(Exception):
    pass


@dataclass(slots=True, frozen=True)
class TurnConfig:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"type": "server_vad", "threshold": self.threshold, "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms, "create_response": self.create_response,
                "interrupt_response": self.interrupt_response}

    def updated(self, fields: object) -> TurnConfig:
        """This config with a `turn_detection` dict of a session.update applied; TurnConfigError if invalid."""
        if not isinstance(fields, dict):
            raise TurnConfigError("turn_detection must be an object or null")
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "type":
                if value != "server_vad":
                    raise TurnConfigError(f"turn_detection type {value!r} is not supported (server_vad is)")
            elif key == "threshold":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                    raise TurnConfigError("turn_detection.threshold must be a number from 0.0 to 1.0")
                changes[key] = float(value)
            elif key in ("prefix_padding_ms", "silence_duration_ms"):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
                    raise TurnConfigError(f"turn_detection.{key} must be an integer from 0 to 10000")
                changes[key] = value
            elif key in ("create_response", "interrupt_response"):
                if not isinstance(value, bool):
                    raise TurnConfigError(f"turn_detection.{key} must be true or false")
                changes[key] = value
            else:
                raise TurnConfigError(f"unknown turn_detection field {key!r}")
        return replace(self, **changes)


DEFAULT_TURN_CONFIG = TurnConfig()
"""The server's turn detection until a client's session.update changes it (frozen: safe to share)."""


@dataclass(slots=True, frozen=True)
class SpeechStarted:
    audio_start_ms: int
    speech_start_ms: int  # the first speech frame's start, before prefix padding


@dataclass(slots=True, frozen=True)
class SpeechStopped:
    audio_end_ms: int
    speech_end_ms: int  # the last speech frame's end, before the silence duration


class TurnDetector:
    def __init__(self, frame_ms: int, config: TurnConfig | None = TurnConfig()) -> None:
        self.frame_ms = frame_ms
        self.config = config  # None: turn detection off, frames only advance the clock
        self.frames = 0
        self.in_speech = False
        self._floor_ms = 0  # audio before this was committed or cleared: padding never reaches back past it
        self._last_speech_end_ms = 0

    @property
    def audio_ms(self) -> int:
        return self.frames * self.frame_ms

    def configure(self, config: TurnConfig | None) -> None:
        self.config = config
        if config is None:
            self.reset()

    def reset(self) -> None:
        """Forget speech in progress; used when the input buffer is committed or cleared."""
        self.in_speech = False
        self._floor_ms = self.audio_ms

    def feed(self, probability: float) -> SpeechStarted | SpeechStopped | None:
        start_ms = self.audio_ms
        self.frames += 1
        end_ms = self.audio_ms
        config = self.config
        if config is None:
            return None
        speech = probability >= config.threshold
        if not self.in_speech:
            if not speech:
                return None
            self.in_speech = True
            self._last_speech_end_ms = end_ms
            return SpeechStarted(max(self._floor_ms, start_ms - config.prefix_padding_ms), start_ms)
        if speech:
            self._last_speech_end_ms = end_ms
            return None
        if end_ms - self._last_speech_end_ms < config.silence_duration_ms:
            return None
        self.in_speech = False
        self._floor_ms = end_ms
        return SpeechStopped(end_ms, self._last_speech_end_ms)
