"""DC, VOICE and PERF: checks that wait for data channels, the voice loop, and `rtcgate load`.

DC and VOICE offer a data channel first and SKIP when the target's answer rejects it
(m=application with port 0), which is how the reference server answers until it has data
channels; that is read from the answer, never assumed. A target that accepts the data
channel still SKIPs them with "not implemented yet" until the SCTP/DCEP side is written.
PERF checks SKIP: they are measurements with the user's thresholds, run by `rtcgate load`.
"""

from __future__ import annotations

from toolkit.conformance.checks.common import answer_lines, not_yet
from toolkit.conformance.conversation import Conversation
from toolkit.conformance.model import Check
from toolkit.conformance.steps import Offer, Require


def data_channel_rejected(reason: str):
    def condition(conversation: Conversation) -> str | None:
        for line in answer_lines(conversation):
            if line.startswith("m=application"):
                fields = line.split()
                if len(fields) > 1 and fields[1] == "0":
                    return f"the target's answer rejects m=application (port 0): {reason}"
                return None
        return f"the target's answer has no m=application section: {reason}"

    return condition


def _needs_data_channel(reason: str, missing: str) -> tuple:
    return (Offer(peer={"datachannel": True}), Require(data_channel_rejected(reason), "a data channel"), not_yet(missing))


_DC = ("the reference server has no data channels yet", "the data-channel checks need an SCTP/DCEP peer")
_VOICE = ("the reference server has no data channels / voice loop yet", "the voice checks need the voice loop's events")
_PERF = "use rtcgate load: PERF checks are measurements against thresholds the user sets"
_PERF_STEPS = (Require(lambda conversation: _PERF, "a load run"),)

CHECKS = (
    Check("DC-01", "core", "RFC 8831 §6", "the negotiated data channel opens; messages both ways; ordered and unordered",
          _needs_data_channel(*_DC)),
    Check("DC-02", "core", "RFC 8832 §5", "DCEP DATA_CHANNEL_OPEN from the client opens a channel; label and "
          "protocol round-trip", _needs_data_channel(*_DC)),
    Check("DC-03", "security", "RFC 8832, RFC 4960, CVE-2020-6514", "DATA_CHANNEL_OPEN with label length past the "
          "payload, unknown channel type, malformed SCTP chunks → no crash", _needs_data_channel(*_DC)),
    Check("DC-04", "core", "RFC 8831 §6.6, RFC 8260", "large messages (> 64 KiB) fragment and reassemble",
          _needs_data_channel(*_DC)),
    Check("VOICE-01", "voice", "realtime voice API events", "speech in → input_audio_buffer.speech_started and "
          "…speech_stopped events at the right times (± one VAD frame)", _needs_data_channel(*_VOICE)),
    Check("VOICE-02", "voice", "realtime voice API events", "end of user speech → first response audio packet within "
          "the hangover + model think time + 20 ms", _needs_data_channel(*_VOICE)),
    Check("VOICE-03", "voice", "realtime voice API events", "barge-in: user speech during a response stops response "
          "audio within 100 ms and emits the cancel events", _needs_data_channel(*_VOICE)),
    Check("VOICE-04", "voice", "realtime voice API events", "a function call is emitted on the data channel while "
          "response audio keeps flowing; its output is used by the next response", _needs_data_channel(*_VOICE)),
    Check("VOICE-05", "voice", "RFC 7587 §4", "response audio is paced at real time (20 ms frames, no bursts beyond a "
          "configurable jitter)", _needs_data_channel(*_VOICE)),
    Check("PERF-01", "perf", "DESIGN: setup phases", "setup time per phase (signaling → first STUN → ICE selected → "
          "DTLS done → first SRTP → first response audio)", _PERF_STEPS),
    Check("PERF-02", "perf", "DESIGN: adversarial load", "media round-trip time, jitter and loss for N sessions, quiet "
          "vs under each attack mix", _PERF_STEPS),
    Check("PERF-03", "perf", "DESIGN principle 2", "state growth under each attack mix stays flat", _PERF_STEPS),
    Check("PERF-04", "perf", "DESIGN: voice latency", "voice-to-voice latency distribution under each attack mix",
          _PERF_STEPS),
)
