"""Requirements the VOICE checks judge (see toolkit.conformance.requirements).

No RFC specifies a realtime voice loop: every VOICE check is this project's POLICY, taken from
the behaviour the OpenAI Realtime API documents for its events and server VAD (the API a voice
client on the `oai-events` channel speaks), with tolerances from the run's Settings.
"""

from toolkit.conformance.model import Level, Requirement

_API = "OpenAI Realtime API reference (platform.openai.com/docs/api-reference/realtime-server-events)"

REQUIREMENTS = {
    "VOICE-01": Requirement(
        Level.POLICY, f"{_API}: input_audio_buffer.speech_started, input_audio_buffer.speech_stopped",
        "Emit one speech_started and one speech_stopped per utterance, promptly, with audio_start_ms at the onset "
        "less prefix_padding_ms and audio_end_ms at the end plus silence_duration_ms of the audio received, within "
        "one VAD frame.",
        prevents="a client that stops its playback, shows \"listening\" or truncates the assistant's audio "
                 "(conversation.item.truncate takes these offsets) at the wrong moment or too late; a doubled or "
                 "missing event splits or swallows the user's turn",
        note="The API documents audio_start_ms as \"Milliseconds from the start of all audio written to the "
             "buffer during the session when speech was first detected\", which \"includes the prefix_padding_ms "
             "configured in the Session\"; the timing windows (tol, event_slack) are the run's Settings.",
    ),
    "VOICE-02": Requirement(
        Level.POLICY, f"{_API}: session.turn_detection (server_vad, silence_duration_ms)",
        "Start the spoken answer no later than the silence duration plus the model's think time (Settings."
        "voice.think_time) plus one 20 ms frame after the user stops speaking.",
        prevents="dead air after the user's turn: callers repeat themselves, talk over the late answer, or hang up",
        note="think_time defaults to the embedded ToneModel's 0.2 s; a target backed by a real model needs its "
             "own value, or the check measures the model rather than the media path.",
    ),
    "VOICE-03": Requirement(
        Level.POLICY, f"{_API}: turn_detection.interrupt_response, response.done (status \"cancelled\")",
        "When the user starts speaking during a response, stop its audio within 100 ms of speech_started and end "
        "the response as cancelled.",
        prevents="an assistant that keeps talking over a user who interrupts it (barge-in ignored), so the user "
                 "cannot correct or stop it",
        note="interrupt_response defaults to true in the API: a VAD start event interrupts the ongoing response.",
    ),
    "VOICE-04": Requirement(
        Level.POLICY, f"{_API}: response.function_call_arguments.done, conversation.item.create "
                      "(function_call_output), response.create",
        "Emit the function call on the events channel without pausing the response's audio (no gap over 100 ms), "
        "and use the returned output in the next response.",
        prevents="silence while a tool runs, and answers that ignore (or invent) the tool's result",
    ),
    "VOICE-05": Requirement(
        Level.POLICY, "RFC 3550 §5.1 (timestamp = sampling instant); RFC 7587 §4 (Opus RTP timestamps at 48 kHz)",
        "Send response audio paced at real time: 20 ms Opus frames whose RTP timestamps advance 960 per packet, "
        "each within Settings.voice.pacing_jitter (30 ms) of its slot.",
        prevents="bursts that overflow the client's jitter buffer (audio dropped or played fast) and drift that "
                 "builds latency over a long answer",
        note="Neither RFC requires a sender to pace packets in real time, and RFC 7587 allows Opus packets of 2.5 "
             "to 120 ms: a target sending 40 or 60 ms frames is conforming but FAILs this check under --strict "
             "policy.",
    ),
}
