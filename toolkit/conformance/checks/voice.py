"""VOICE — the realtime voice loop: speech in, events and spoken answers out, in real time.

A voice check talks to the target as a realtime-voice client does: it offers audio and a data
channel, opens the `oai-events` channel (DCEP), reads the realtime API's JSON events on it, and
speaks real speech — the shipped sample's Opus packets, one per 20 ms, with Opus silence
between utterances — through the probe peer's SRTP. It decodes every response packet with PyAV
and measures each 20 ms frame (level, dominant tone). A target whose answer rejects the data
channel SKIPs, and so does one that sends no `session.created` on `oai-events`: it runs no voice
loop. Against the reference server, these checks play against its voice-mode twin
(`ReferenceTarget.for_profile("voice")`); any other target plays them itself.

Times are the probe's clock (the conversation's), never the target's: when each of our packets
left, when each event and packet arrived. The speech edges are the sample's own, found by energy
(toolkit/peer/audio.py): onset = the first packet louder than −45 dBFS, end = just past the last
one. Tolerances come from the run's Settings (`Settings.voice`):
- tol = vad_frame + edge_slack (30 + 30 ms): how far the target's VAD may place an edge from
  ours — one VAD frame, plus the disagreement of two detectors over a fading syllable;
- event_slack (120 ms): what an event or packet may add on the way to us (packetisation, jitter
  buffer, transit, SCTP, both event loops);
- think_time (0.2 s): the model's think time (the embedded ToneModel's default);
- pacing_jitter (30 ms): VOICE-05's allowance around each 20 ms slot.
The probe's clock can itself run late on a busy runner: every judgement on it goes through
`toolkit.conformance.timing.judge_timing`, which SKIPs as inconclusive ("the runner was too
busy") when the probe's scheduling lag measured over the judged span explains the miss, and
FAILs otherwise; what the target states on its own timeline (audio_start_ms, RTP timestamps,
frame sizes, event counts and statuses) FAILs regardless.

VOICE-02 to -05 first ask for a 200 ms silence duration (session.update, server VAD: the
realtime API's knob) to keep the run short; VOICE-01 keeps the target's own. A target that
refuses keeps its value, and every expectation uses what the session reports. (Neither
utterance pauses for 200 ms inside.)

What each check asserts (a packet k of ours carries samples [960·k, 960·(k+1)) of our audio):
- VOICE-01: "Hello there." after 400 ms of silence gives exactly one speech_started, then one
  speech_stopped. On the media timeline, audio_start_ms = max(0, onset − prefix_padding_ms) ±
  tol and audio_end_ms = end + silence_duration_ms ± tol (the realtime API's definitions). On
  the probe's clock, each arrives within [−tol, tol + event_slack] of the moment the target
  could first know: speech_started of the onset packet leaving, speech_stopped of the packet
  that completes silence_duration_ms after the end leaving.
- VOICE-02: measured against the sent audio, the first response packet with sound arrives no
  later than the end of speech leaving + silence_duration_ms + think_time + 20 ms, + tol (where
  the VAD puts the end) + event_slack (the probe's clock); the time from speech_stopped's
  arrival is noted too.
- VOICE-03: 200 ms into the spoken answer the probe says "Hello there." again. Response audio
  (packets with sound) stops no later than 100 ms after speech_started arrives, and no later
  than 100 ms + tol + event_slack after the interruption's onset left; the response ends
  cancelled (response.done with status "cancelled", or response.cancelled) before the probe
  stops listening, 250 ms after speech_started.
- VOICE-04: with a get_weather tool offered (session.update), the question "What is the weather
  like in Paris today?" gets a response.function_call_arguments.done while that response's
  audio plays: sound before the call arrives, ≥ 200 ms of it after, no gap over 100 ms across
  it. The probe answers at once (conversation.item.create, function_call_output) and asks for
  the next response (response.create) once the first is done; that response must use the
  output: its transcript quotes it, or its audio carries the embedded ToneModel's sign for it
  (len(output) mod 10 + 1 bursts of 880 Hz).
- VOICE-05: every packet of the answer holds 20 ms (960 samples; timestamps 960 apart within a
  talkspurt), and each arrives within ±pacing_jitter of its slot on a real-time schedule fitted
  to its talkspurt (the median offset): no bursts, no drift.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
from collections import deque
from dataclasses import dataclass

from toolkit.conformance.checks.dc import associate, with_data_channel
from toolkit.conformance.conversation import Conversation, Session
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import Do
from toolkit.conformance.timing import TimingProblem, hold_gc, judge_timing, scheduling_lag
from toolkit.peer import PeerError, RtpReceived
from toolkit.peer.audio import (
    FRAME,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    SILENCE_PACKET,
    AudioError,
    OpusDecoder,
    dominant_frequency,
    first_sentence,
    level_dbfs,
    question,
    speech_sample,
)
from toolkit.peer.realtime_events import EventLog
from toolkit.peer.shell.datachannel import DataChannel, DataChannelError

EVENTS_LABEL = "oai-events"
SOUND_FLOOR_DBFS = -50.0
"""A response packet quieter than this carries no sound (silence or comfort noise)."""
BARGE_IN_STOP = 0.100
BARGE_IN_AFTER = 10
"""VOICE-03 interrupts after this many packets of the answer (200 ms)."""
LINGER = 0.250
"""VOICE-03 listens this long after speech_started for stray response audio and the cancel."""
LEAD = 5
"""Packets of silence before the speech (100 ms)."""
LEAD_01 = 20
"""VOICE-01's lead (400 ms): longer than the usual 300 ms prefix padding, so audio_start_ms
is not clamped at 0 and says something."""
DEFAULT_PREFIX_MS, DEFAULT_SILENCE_MS = 300, 500
SHORT_SILENCE_MS = 200
"""The silence duration VOICE-02 to -05 ask for (session.update) to keep the run short; neither
utterance pauses that long inside."""
AFTER_CALL = 10
"""VOICE-04: packets of sound the response must still send after its function call arrived."""
CALL_GAP = 0.100
TONE_HZ, TONE_TOLERANCE_HZ = 880.0, 20.0
FUNCTION_OUTPUT = '{"sky": "sunny", "temp_c": 21.5}'
OUTPUT_QUOTES = ("sunny", "21.5")
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The current weather in a city.",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}
TRANSCRIPT_EVENTS = ("response.output_audio_transcript.delta", "response.audio_transcript.delta",
                     "response.output_text.delta", "response.text.delta")


@dataclass(frozen=True, slots=True)
class Heard:
    """One RTP packet from the target, decoded, as it arrived."""

    time: float
    timestamp: int
    marker: bool
    samples: int
    level: float
    tone: float | None
    """Dominant frequency when the packet has sound."""

    @property
    def sound(self) -> bool:
        return self.level > SOUND_FLOOR_DBFS


class VoiceCall:
    """The probe's side of one voice conversation on a conversation's session."""

    def __init__(self, conversation: Conversation, session: Session, channel: DataChannel) -> None:
        self.conversation = conversation
        self.session = session
        self.channel = channel
        self.heard: list[Heard] = []
        self.sent_at: list[float] = []
        """When each of our 20 ms packets left; index k = samples [960·k, 960·(k+1)) of our audio."""
        self.sent_events: list[tuple[float, dict]] = []
        self._queue: deque[bytes] = deque()
        self.event_log = EventLog(channel)

    @classmethod
    async def open(cls, conversation: Conversation, session_name: str = "main") -> VoiceCall:
        """The events channel open, session.created received, our audio flowing (silence until told)."""
        try:
            speech_sample()
        except AudioError as exc:
            raise CheckSkipped(f"no speech to say: {exc}") from None
        hold_gc(conversation)  # no collector pauses while the probe's clock judges the target
        scheduling_lag(conversation)  # the probe's own lateness, to tell a busy runner from a late target
        association = await associate(conversation, session_name)
        channel = association.open_channel(EVENTS_LABEL)
        reply_timeout = conversation.settings.reply_timeout
        try:
            await channel.wait_open(reply_timeout)
        except DataChannelError:
            raise CheckFailed(f"no DATA_CHANNEL_ACK for the {EVENTS_LABEL!r} channel within {reply_timeout:g} s") from None
        call = cls(conversation, conversation.session(session_name), channel)
        loop = conversation.loop
        tasks = [loop.create_task(call._speak()), loop.create_task(call._listen())]

        async def stop() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        conversation.cleanups.append(stop)
        if not await call.wait(lambda: call.of_type("session.created"), reply_timeout):
            others = sorted({event.get("type", "?") for _, event in call.events})
            raise CheckSkipped(f"the target sent no session.created on {EVENTS_LABEL!r} within {reply_timeout:g} s "
                               f"(it sent {', '.join(map(str, others)) or 'nothing'}): it runs no realtime voice loop")
        return call

    # -- what the check does -----------------------------------------------------------------

    def say(self, packets: tuple[bytes, ...] | list[bytes]) -> int:
        """Queue Opus packets to go out one per 20 ms after what is queued; returns the index the
        first of them will have in `sent_at`."""
        start = len(self.sent_at) + len(self._queue)
        self._queue.extend(packets)
        return start

    def sent_time(self, index: int) -> float:
        """When packet `index` left, or will leave on the 20 ms schedule if it has not yet."""
        if index < len(self.sent_at):
            return self.sent_at[index]
        return self.sent_at[-1] + (index - len(self.sent_at) + 1) * FRAME

    def pause(self, packets: int) -> int:
        return self.say([SILENCE_PACKET] * packets)

    def send_event(self, event: dict) -> None:
        self.sent_events.append((self.conversation.now(), event))
        try:
            self.channel.send(json.dumps(event))
        except DataChannelError as exc:
            raise CheckFailed(f"cannot send {event.get('type')}: {exc}") from None

    # -- what the check reads ------------------------------------------------------------------

    @property
    def events(self) -> list[tuple[float, dict]]:
        """(arrival time, event) for every JSON object that came on the events channel."""
        return self.event_log.events

    def of_type(self, *types: str) -> list[tuple[float, dict]]:
        return self.event_log.of_type(*types)

    def sound_after(self, since: float) -> list[Heard]:
        return [packet for packet in self.heard if packet.time > since and packet.sound]

    def turn_detection(self) -> tuple[int, int]:
        """(prefix_padding_ms, silence_duration_ms) as the session says; the API's defaults if it does not."""
        session = (self.of_type("session.updated") or self.of_type("session.created"))[-1][1].get("session") or {}
        turn = session.get("turn_detection") or (((session.get("audio") or {}).get("input") or {})
                                                 .get("turn_detection")) or {}
        prefix, silence = turn.get("prefix_padding_ms"), turn.get("silence_duration_ms")
        if not isinstance(prefix, int) or not isinstance(silence, int):
            self.conversation.note(f"the session states no server-VAD timing: assuming prefix padding "
                                   f"{DEFAULT_PREFIX_MS} ms and silence duration {DEFAULT_SILENCE_MS} ms")
            return DEFAULT_PREFIX_MS, DEFAULT_SILENCE_MS
        return prefix, silence

    async def shorten_turns(self, silence_ms: int = SHORT_SILENCE_MS) -> None:
        """Ask for a shorter silence duration (session.update, server VAD); a target that refuses
        keeps its own, which `turn_detection` then reports."""
        seen = len(self.of_type("session.updated", "error"))
        self.send_event({"type": "session.update", "session": {"turn_detection": {
            "type": "server_vad", "silence_duration_ms": silence_ms}}})
        timeout = self.conversation.settings.reply_timeout
        answer = await self.until(lambda: self.of_type("session.updated", "error")[seen:], timeout, "session.updated")
        if answer[0][1].get("type") == "error":
            self.conversation.note(f"session.update with silence_duration_ms {silence_ms} refused: "
                                   f"{answer[0][1].get('error')}")

    async def wait(self, condition, timeout: float) -> object:
        """Until `condition()` is truthy (its value) or the timeout (None)."""
        loop = self.conversation.loop
        deadline = loop.time() + timeout
        while not (value := condition()):
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.005)
        return value

    async def until(self, condition, timeout: float, what: str) -> object:
        """Like `wait`, but FAIL saying what did not come, with the conversation so far."""
        value = await self.wait(condition, timeout)
        if not value:
            errors = self.of_type("error")
            raise CheckFailed(f"no {what} within {timeout:.1f} s" + (f"; the target reported {errors[0][1].get('error')}"
                                                                      if errors else "") + f" ({self.timeline()})")
        return value

    def timeline(self) -> str:
        """A compact account of the events and the talkspurts heard, for FAIL messages."""
        entries = [(time, event.get("type", "?")) for time, event in self.events
                   if event.get("type") not in TRANSCRIPT_EVENTS]
        run: list[Heard] = []
        for packet in self.heard + [None]:
            if packet is not None and packet.sound and (not run or packet.time - run[-1].time < 0.1):
                run.append(packet)
                continue
            if run:
                entries.append((run[0].time, f"{len(run)} packets of sound until {run[-1].time:.2f}"))
            run = [packet] if packet is not None and packet.sound else []
        return "; ".join(f"{time:.2f} {what}" for time, what in sorted(entries))

    # -- inside --------------------------------------------------------------------------------

    async def _speak(self) -> None:
        """One packet per 20 ms on an absolute schedule: what `say` queued, else silence."""
        loop = self.conversation.loop
        peer = self.session.peer
        start = loop.time()
        base = self.conversation.rng.getrandbits(32)
        index = 0
        while peer.state == "connected":
            delay = start + index * FRAME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = self._queue.popleft() if self._queue else SILENCE_PACKET
            try:
                peer.send_rtp(payload, timestamp=base + index * FRAME_SAMPLES, marker=index == 0)
            except PeerError:
                return
            self.session.flush()
            self.sent_at.append(self.conversation.now())
            index += 1

    async def _listen(self) -> None:
        decoder = OpusDecoder()
        index = 0
        while True:
            await self.session.more_events(index)
            for _, at, event in self.session.events[index:]:
                if isinstance(event, RtpReceived):
                    self.heard.append(_decode(event.packet, at, decoder))
            index = len(self.session.events)


def _decode(packet: bytes, time: float, decoder: OpusDecoder) -> Heard:
    count = packet[0] & 0x0F
    offset = 12 + 4 * count
    if packet[0] & 0x10 and len(packet) >= offset + 4:
        offset += 4 + 4 * int.from_bytes(packet[offset + 2:offset + 4], "big")
    end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)
    samples = decoder.decode(packet[offset:end])
    level = level_dbfs(samples)
    tone = dominant_frequency(samples) if level > SOUND_FLOOR_DBFS else None
    return Heard(time, int.from_bytes(packet[4:8], "big"), bool(packet[1] & 0x80), samples.size, level, tone)


def tolerance(conversation: Conversation) -> float:
    settings = conversation.settings
    return settings.voice.vad_frame + settings.voice.edge_slack


def responses_done(call: VoiceCall) -> list[tuple[float, dict]]:
    return [(time, event) for time, event in call.events
            if event.get("type") == "response.cancelled"
            or (event.get("type") == "response.done" and isinstance(event.get("response"), dict))]


def status_of(event: dict) -> str:
    return "cancelled" if event.get("type") == "response.cancelled" else str(event["response"].get("status"))


def response_id(event: dict) -> str | None:
    response = event.get("response")
    return response.get("id") if isinstance(response, dict) else event.get("response_id")


def window(value: float, low: float, high: float) -> bool:
    return low <= value <= high


def outside(value: float, low: float, high: float) -> float:
    """How far `value` lies outside [low, high] (0 inside)."""
    return max(low - value, value - high, 0.0)


# -- VOICE-01 --------------------------------------------------------------------------------


async def speech_edges(conversation: Conversation) -> None:
    call = await VoiceCall.open(conversation)
    prefix, silence = call.turn_detection()
    speech = first_sentence()
    call.pause(LEAD_01)
    start = call.say(speech.packets)
    onset, end = start + speech.onset, start + speech.end
    tol, slack = tolerance(conversation), conversation.settings.voice.event_slack
    due = (start + len(speech.packets)) * FRAME + silence / 1000 + 2.0
    await call.until(lambda: call.of_type("input_audio_buffer.speech_stopped"), due, "input_audio_buffer.speech_stopped")
    started = call.of_type("input_audio_buffer.speech_started")
    stopped = call.of_type("input_audio_buffer.speech_stopped")
    if len(started) != 1 or len(stopped) != 1 or started[0][0] > stopped[0][0]:
        raise CheckFailed(f"one utterance gave {len(started)} speech_started and {len(stopped)} speech_stopped "
                          f"({call.timeline()})")
    (start_at, start_event), (stop_at, stop_event) = started[0], stopped[0]
    onset_ms, end_ms = onset * FRAME * 1000, end * FRAME * 1000
    problems = []
    expected_start = max(0.0, onset_ms - prefix)
    audio_start = start_event.get("audio_start_ms")
    if not isinstance(audio_start, (int, float)) or abs(audio_start - expected_start) > tol * 1000:
        problems.append(f"audio_start_ms is {audio_start}, expected {expected_start:.0f} ± {tol * 1000:.0f} (speech "
                        f"begins at {onset_ms:.0f} ms of the audio sent, prefix padding {prefix} ms)")
    expected_end = end_ms + silence
    audio_end = stop_event.get("audio_end_ms")
    if not isinstance(audio_end, (int, float)) or abs(audio_end - expected_end) > tol * 1000:
        problems.append(f"audio_end_ms is {audio_end}, expected {expected_end:.0f} ± {tol * 1000:.0f} (speech ends at "
                        f"{end_ms:.0f} ms of the audio sent, silence duration {silence} ms)")
    late = []
    start_delay = start_at - call.sent_time(onset)
    if not window(start_delay, -tol, tol + slack):
        late.append(TimingProblem(f"speech_started arrived {1000 * start_delay:.0f} ms after the onset left "
                                  f"(allowed {-1000 * tol:.0f} to {1000 * (tol + slack):.0f} ms)",
                                  outside(start_delay, -tol, tol + slack)))
    decidable = end + round(silence / 1000 / FRAME) - 1  # the packet that completes the silence duration
    stop_delay = stop_at - call.sent_time(decidable)
    if not window(stop_delay, -tol, tol + slack):
        late.append(TimingProblem(f"speech_stopped arrived {1000 * stop_delay:.0f} ms after the packet completing "
                                  f"the {silence} ms of silence after speech left (allowed {-1000 * tol:.0f} to "
                                  f"{1000 * (tol + slack):.0f} ms)", outside(stop_delay, -tol, tol + slack)))
    if problems:  # the media-timeline positions are the target's own: no runner excuses them
        raise CheckFailed("; ".join(problems + [problem.text for problem in late]))
    judge_timing(conversation, late, since=call.sent_time(start))
    conversation.note(f"audio_start_ms {audio_start} (expected {expected_start:.0f}), audio_end_ms {audio_end} "
                      f"(expected {expected_end:.0f}); speech_started {1000 * start_delay:+.0f} ms after the onset "
                      f"left, speech_stopped {1000 * stop_delay:+.0f} ms after the packet completing {silence} ms "
                      f"of silence left")


# -- VOICE-02 --------------------------------------------------------------------------------


async def first_audio(conversation: Conversation) -> None:
    call = await VoiceCall.open(conversation)
    await call.shorten_turns()
    _, silence = call.turn_detection()
    speech = first_sentence()
    call.pause(LEAD)
    start = call.say(speech.packets)
    end = start + speech.end
    settings = conversation.settings
    allowed = silence / 1000 + settings.voice.think_time + FRAME + tolerance(conversation) + settings.voice.event_slack
    due = (start + len(speech.packets)) * FRAME + allowed + 2.0
    heard = await call.until(lambda: len(call.sent_at) > end and call.sound_after(call.sent_at[end]), due,
                             "response audio")
    latency = heard[0].time - call.sent_at[end]
    stopped = call.of_type("input_audio_buffer.speech_stopped")
    after_event = f"; {1000 * (heard[0].time - stopped[0][0]):.0f} ms after speech_stopped arrived" if stopped else ""
    if latency > allowed:
        judge_timing(conversation, [TimingProblem(
            f"the first response audio arrived {1000 * latency:.0f} ms after the end of speech left; allowed "
            f"{1000 * allowed:.0f} ms = silence duration {silence} ms + think time {1000 * settings.voice.think_time:.0f} "
            f"ms + 20 ms + {1000 * tolerance(conversation):.0f} ms VAD tolerance + "
            f"{1000 * settings.voice.event_slack:.0f} ms client-clock slack{after_event}", latency - allowed)],
            since=call.sent_at[end])
    judge_timing(conversation, [], since=call.sent_at[end])
    conversation.note(f"first response audio {1000 * latency:.0f} ms after the end of speech left (allowed "
                      f"{1000 * allowed:.0f} ms){after_event}")


# -- VOICE-03 --------------------------------------------------------------------------------


async def barge_in(conversation: Conversation) -> None:
    call = await VoiceCall.open(conversation)
    await call.shorten_turns()
    speech = first_sentence()
    call.pause(LEAD)
    start = call.say(speech.packets)
    due = (start + len(speech.packets)) * FRAME + 3.0
    created_at = (await call.until(lambda: call.of_type("response.created"), due, "response.created"))[0][0]
    answer = await call.until(lambda: len(call.sound_after(created_at)) >= BARGE_IN_AFTER and call.sound_after(created_at),
                              3.0, f"{BARGE_IN_AFTER} packets of response audio")
    interrupted_id = response_id(call.of_type("response.created")[0][1])
    barge = call.say(speech.packets) + speech.onset
    started = await call.until(lambda: call.of_type("input_audio_buffer.speech_started")[1:],
                               (speech.end + 5) * FRAME + 1.0, "speech_started for the interruption")
    started_at = started[0][0]
    await asyncio.sleep(max(0.0, started_at + LINGER - conversation.now()))
    settings = conversation.settings
    sound = [p for p in call.sound_after(answer[0].time - 0.001) if p.time <= started_at + LINGER]
    last = sound[-1].time
    problems, late = [], []
    if last - started_at > BARGE_IN_STOP:
        late.append(TimingProblem(f"response audio went on {1000 * (last - started_at):.0f} ms after speech_started "
                                  f"arrived (allowed {1000 * BARGE_IN_STOP:.0f} ms)",
                                  last - started_at - BARGE_IN_STOP))
    allowed = BARGE_IN_STOP + tolerance(conversation) + settings.voice.event_slack
    if last - call.sent_time(barge) > allowed:
        late.append(TimingProblem(f"response audio went on {1000 * (last - call.sent_time(barge)):.0f} ms after the "
                                  f"interruption's onset left (allowed {1000 * allowed:.0f} ms)",
                                  last - call.sent_time(barge) - allowed))
    ended = [(time, event) for time, event in responses_done(call)
             if response_id(event) in (interrupted_id, None) or status_of(event) == "cancelled"]
    if not ended:
        problems.append(f"response {interrupted_id} did not end within {1000 * LINGER:.0f} ms of speech_started")
    elif status_of(ended[0][1]) != "cancelled":
        problems.append(f"response {interrupted_id} ended {status_of(ended[0][1])!r}, not 'cancelled'")
    if problems:
        raise CheckFailed("; ".join(problems + [problem.text for problem in late]) + f" ({call.timeline()})")
    judge_timing(conversation, late, since=answer[0].time, context=f" ({call.timeline()})")
    cleared = " and output_audio_buffer.cleared" if call.of_type("output_audio_buffer.cleared") else ""
    conversation.note(f"the last response packet arrived {1000 * (last - started_at):+.0f} ms after speech_started "
                      f"({1000 * (last - call.sent_time(barge)):.0f} ms after the interruption's onset left); "
                      f"response.done cancelled {1000 * (ended[0][0] - started_at):+.0f} ms after it{cleared}")


# -- VOICE-04 --------------------------------------------------------------------------------


async def function_call(conversation: Conversation) -> None:
    call = await VoiceCall.open(conversation)
    await call.shorten_turns()
    reply_timeout = conversation.settings.reply_timeout
    call.send_event({"type": "session.update", "session": {
        "instructions": "Answer weather questions by calling get_weather.", "tools": [WEATHER_TOOL],
        "tool_choice": "auto"}})
    seen = len(call.of_type("session.updated", "error"))
    answer = await call.until(lambda: call.of_type("session.updated", "error")[seen:], reply_timeout,
                              "session.updated")
    if answer[0][1].get("type") == "error":
        raise CheckFailed(f"session.update with a get_weather tool was refused: {answer[0][1].get('error')}")
    speech = question()
    call.pause(LEAD)
    start = call.say(speech.packets)
    due = (start + len(speech.packets)) * FRAME + 5.0

    def call_or_done():
        return call.of_type("response.function_call_arguments.done") or responses_done(call)

    await call.until(call_or_done, due, "function call (response.function_call_arguments.done)")
    calls = call.of_type("response.function_call_arguments.done")
    if not calls:
        raise CheckFailed(f"the response to a weather question, with a get_weather tool offered, made no function "
                          f"call ({call.timeline()})")
    call_at, event = calls[0]
    call.send_event({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": event.get("call_id"), "output": FUNCTION_OUTPUT}})
    done = await call.until(lambda: responses_done(call), 5.0, "response.done for the response with the call")
    done_at, done_event = done[0]
    if status_of(done_event) != "completed":
        raise CheckFailed(f"the response with the function call ended {status_of(done_event)!r} ({call.timeline()})")
    problems = []
    sound = [p for p in call.sound_after(call.of_type("response.created")[0][0]) if p.time <= done_at + 0.1]
    before = [p for p in sound if p.time <= call_at]
    after = [p for p in sound if p.time > call_at]
    if not before or len(after) < AFTER_CALL:
        problems.append(f"the response's audio did not keep flowing across its function call: {len(before)} "
                        f"packets of sound before the call arrived, {len(after)} after (needed ≥ 1 and ≥ {AFTER_CALL})")
    if problems:
        raise CheckFailed("; ".join(problems) + f" ({call.timeline()})")
    gap = after[0].time - before[-1].time
    judge_timing(conversation, [TimingProblem(f"the response's audio paused {1000 * gap:.0f} ms around its function "
                                              f"call (allowed {1000 * CALL_GAP:.0f} ms)", gap - CALL_GAP)]
                 if gap > CALL_GAP else [], since=before[0].time, context=f" ({call.timeline()})")
    call.send_event({"type": "response.create"})
    created = await call.until(lambda: call.of_type("response.created")[1:], reply_timeout, "response.created for "
                               "the response after the function output")
    second_at = created[0][0]
    second_id = response_id(created[0][1])
    bursts = len(FUNCTION_OUTPUT) % 10 + 1

    def transcript() -> str:
        return "".join(str(e.get("delta", "")) for _, e in call.of_type(*TRANSCRIPT_EVENTS)
                       if response_id(e) in (second_id, None))

    def quoted() -> bool:
        return all(quote in transcript() for quote in OUTPUT_QUOTES)

    def sounded() -> bool:
        """The 880 Hz bursts are over: another tone follows them."""
        return (tone_runs(call.sound_after(second_at), TONE_HZ) >= bursts
                and any(p.tone is not None and abs(p.tone - TONE_HZ) > TONE_TOLERANCE_HZ
                        for p in call.sound_after(second_at)[-2:]))

    def finished() -> list:
        return [e for e in responses_done(call) if response_id(e[1]) == second_id]

    await call.until(lambda: quoted() or sounded() or finished(), 6.0,
                     "the end of the response after the function output")
    quoted = quoted()
    runs = tone_runs(call.sound_after(second_at), TONE_HZ)
    if not quoted and runs != bursts:
        raise CheckFailed(f"the response after the function output does not use it: its transcript "
                          f"{transcript()[:80]!r} does not quote {' and '.join(OUTPUT_QUOTES)}, and its audio has "
                          f"{runs} bursts of {TONE_HZ:.0f} Hz, not {bursts} ({call.timeline()})")
    conversation.note(f"get_weather call {event.get('call_id')} arrived with {len(before)} packets of sound before "
                      f"and {len(after)} after it; the next response "
                      + ("quotes the output" if quoted else "") + (" and " if quoted and runs == bursts else "")
                      + (f"plays {bursts} bursts of {TONE_HZ:.0f} Hz" if runs == bursts else ""))


def tone_runs(packets: list[Heard], frequency: float) -> int:
    """How many separate runs of `frequency` the packets hold (one odd packet does not split a run)."""
    runs, inside, misses = 0, False, 0
    for packet in packets:
        hit = packet.tone is not None and abs(packet.tone - frequency) <= TONE_TOLERANCE_HZ
        if hit:
            if not inside:
                runs += 1
            inside, misses = True, 0
        else:
            misses += 1
            if misses > 1:
                inside = False
    return runs


# -- VOICE-05 --------------------------------------------------------------------------------


async def pacing(conversation: Conversation) -> None:
    call = await VoiceCall.open(conversation)
    await call.shorten_turns()
    speech = first_sentence()
    call.pause(LEAD)
    start = call.say(speech.packets)
    due = (start + len(speech.packets)) * FRAME + 3.0
    created_at = (await call.until(lambda: call.of_type("response.created"), due, "response.created"))[0][0]
    done = await call.until(lambda: responses_done(call), 10.0, "response.done")
    await asyncio.sleep(0.05)
    packets = [p for p in call.heard if created_at < p.time <= done[0][0] + 0.05]
    if len(packets) < 10:
        raise CheckFailed(f"the response held {len(packets)} packets, too few to judge its pacing ({call.timeline()})")
    jitter = conversation.settings.voice.pacing_jitter
    problems, worst, spurts = pacing_problems(packets, jitter)
    structural = pacing_problems(packets, math.inf)[0]  # frame sizes and timestamps: the target's own
    if structural:
        raise CheckFailed("; ".join(problems))
    judge_timing(conversation, [TimingProblem("; ".join(problems), worst - jitter)] if problems else [],
                 since=created_at)
    conversation.note(f"{len(packets)} packets in {spurts} talkspurt(s), each 20 ms; worst deviation from the "
                      f"real-time schedule {1000 * worst:.1f} ms (allowed ±{1000 * jitter:.0f} ms)")


def pacing_problems(packets: list[Heard], jitter: float) -> tuple[list[str], float, int]:
    """(what is wrong, the worst deviation from a real-time slot, how many talkspurts).

    Each talkspurt's schedule is fitted to it: slot k = the median of (arrival − media time)
    + media time of packet k, the media time coming from RTP timestamps."""
    problems: list[str] = []
    odd = [p.samples for p in packets if p.samples != FRAME_SAMPLES]
    if odd:
        problems.append(f"{len(odd)} of {len(packets)} packets do not hold 20 ms (sample counts {sorted(set(odd))[:5]})")
    worst, spurts = 0.0, talkspurts(packets)
    for spurt in spurts:
        steps = {(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in zip(spurt, spurt[1:])}
        if steps - {FRAME_SAMPLES}:
            problems.append(f"RTP timestamps advance by {sorted(steps)} within a talkspurt, not by {FRAME_SAMPLES}")
        offsets = [p.time - ((p.timestamp - spurt[0].timestamp) & 0xFFFFFFFF) / SAMPLE_RATE for p in spurt]
        middle = statistics.median(offsets)
        deviations = [offset - middle for offset in offsets]
        extreme = max(deviations, key=abs)
        worst = max(worst, abs(extreme))
        if abs(extreme) > jitter:
            index = deviations.index(extreme)
            early = sum(1 for d in deviations if d < -jitter)
            problems.append(f"packet {index} of a {len(spurt)}-packet talkspurt arrived {1000 * abs(extreme):.0f} ms "
                            f"{'early' if extreme < 0 else 'late'} for its real-time slot (allowed ±"
                            f"{1000 * jitter:.0f} ms); {early} packets ahead of real time (bursts)")
    return problems, worst, len(spurts)


def talkspurts(packets: list[Heard]) -> list[list[Heard]]:
    """Packets split at a marker bit or where the timestamp does not continue by one frame."""
    spurts: list[list[Heard]] = []
    for packet in packets:
        if spurts and not packet.marker and (packet.timestamp - spurts[-1][-1].timestamp) & 0xFFFFFFFF <= 4 * FRAME_SAMPLES:
            spurts[-1].append(packet)
        else:
            spurts.append([packet])
    return spurts


CHECKS = (
    Check("VOICE-01", "voice", "realtime voice API: input_audio_buffer events",
          "speech in → input_audio_buffer.speech_started and …speech_stopped events at the right times "
          "(± one VAD frame)", (*with_data_channel(), Do(speech_edges, "say 'Hello there.'"))),
    Check("VOICE-02", "voice", "realtime voice API: server VAD turn",
          "end of user speech → first response audio packet within the hangover + model think time + 20 ms",
          (*with_data_channel(), Do(first_audio, "say 'Hello there.', time the answer"))),
    Check("VOICE-03", "voice", "realtime voice API: interrupt_response",
          "barge-in: user speech during a response stops response audio within 100 ms and emits the cancel events",
          (*with_data_channel(), Do(barge_in, "talk over the answer"))),
    Check("VOICE-04", "voice", "realtime voice API: function calling",
          "a function call is emitted on the data channel while response audio keeps flowing; its output is used by "
          "the next response", (*with_data_channel(), Do(function_call, "ask about the weather, answer the call")),
          timeout=30.0),
    Check("VOICE-05", "voice", "RFC 7587 §4, RFC 3550 §5.1",
          "response audio is paced at real time (20 ms frames, no bursts beyond a configurable jitter)",
          (*with_data_channel(), Do(pacing, "listen to a whole answer"))),
)
