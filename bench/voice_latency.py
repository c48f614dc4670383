"""Voice-to-voice latency of the reference server's voice loop, measured at the client.

The reference server runs as a child process (`rtcgate serve --media voice`, a fresh one per
row) with the embedded ToneModel, its think time set explicitly through this file's `model`
factory (`--model bench.voice_latency:model`). For each row, S probe-peer sessions (WHIP, ICE,
DTLS-SRTP, an `oai-events` data channel over SCTP) each hold a conversation of several turns,
with staggered starts and random pauses so that turns do not line up: a pause of Opus silence,
then "Hello there." (the shipped speech sample's Opus packets), one packet per 20 ms on the
client's clock, silence again, and the next turn once the response is done. Audio flows all the
time, as from a microphone. Every session asks for the same server-VAD timing (session.update).

What is measured, on the client (CLOCK_REALTIME; arrivals are the kernel's receive timestamps,
SO_TIMESTAMPNS, so the client's own event-loop delays do not count against the server):
- t_end: when the last packet of speech left (the sample's speech edge, found by energy);
- t_first: arrival of the first response RTP packet with sound (decoded, louder than −50 dBFS)
  after t_end; the server sends nothing between responses, so it is also the first packet of
  the response's talkspurt (the report counts how often it carried the marker bit);
- total = t_first − t_end, split into
  - VAD hangover: the configured silence duration; measured, the time from t_end until the packet
    that completed the server's silence left (the server names it: speech_stopped's
    audio_end_ms, on our packet timeline), and when speech_stopped arrived;
  - model think: the configured think time; measured, response.created's arrival → t_first;
  - the server's own share: total − silence duration − think time (nominal), and, aligned on the
    server VAD's own end of speech, t_first − (packet completing the silence left) − think time.
    The nominal figure also holds where the VAD put the end of speech against our energy edge;
    the aligned one holds only transit, decoding, VAD, turn-taking, scheduling, encoding and
    SRTP. Server-side timestamps (server_timestamp of speech_stopped and
    output_audio_buffer.started, wall clock, 1 ms resolution) split the aligned share further
    into upstream, in-server and downstream.

Prints the distributions (count, p50/p90/p99/max) per row, the verdict against the 20 ms goal
for the server's share at p99, the server's /metrics rtcgate_voice_turn_seconds histograms and
drops, load average and CPU use; writes everything, per-turn records included, to
reports/bench/voice_latency.json. The client is pinned to one CPU and the server to another
when there are two.

Usage: python -m bench.voice_latency [--sessions 1 50] [--turns 4] [--min-turns 30]
                                     [--silence-ms 500] [--prefix-ms 300] [--think 0.2]
                                     [--no-pin] [--seed 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import signal
import socket
import struct
import sys
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field

import uvloop

from bench.common import (
    BUSY_MACHINE,
    BenchError,
    Child,
    Children,
    benchmark_parser,
    cpu_seconds_self,
    drop_counts,
    load_average,
    machine_busy_seconds,
    machine_facts,
    machine_line,
    metric_samples,
    percentile,
    pin_client,
    run_benchmark,
    serve_command,
    server_cpu,
    write_results,
)
from toolkit.commands.arguments import integer, non_negative_number, non_negative_whole, whole
from toolkit.peer import DtlsConnected, DtlsData, PeerError, PeerFailed, PeerTimer, ProbePeer, RtpReceived
from toolkit.peer.audio import FRAME, FRAME_SAMPLES, SILENCE_PACKET, OpusDecoder, first_sentence, level_dbfs
from toolkit.peer.realtime_events import EventLog
from toolkit.peer.shell.datachannel import Association, DataChannel
from toolkit.peer.shell.whip import whip_delete, whip_post
from toolkit.percentiles import nearest_rank

THINK_ENV = "RTCGATE_BENCH_THINK_TIME"
TAIL_ENV = "RTCGATE_BENCH_TAIL_MS"
"""How the server's model factory (`model`, below) learns the settings of this run."""
GOAL = 0.020
"""The server's own share must stay under this at p99."""
EVENTS_LABEL = "oai-events"
SOUND_FLOOR_DBFS = -50.0
"""A response packet quieter than this carries no sound."""
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux: stamp each datagram with its kernel arrival time (struct timespec, CLOCK_REALTIME)."""
TIMESPEC = struct.Struct("@qq")
RECEIVE_SIZE = 2048
TAIL_MS = 200
"""The ToneModel's closing tone; shorter than its default 1 s, so turns follow each other sooner."""
PAUSE_PACKETS = (15, 40)
"""Silence before each utterance: 300–800 ms, drawn per turn."""
STAGGER = 3.0
"""Sessions start their first turn within this many seconds of each other."""
TURN_TIMEOUT = 10.0
CONNECT_TIMEOUT = 15.0
REPLY_TIMEOUT = 5.0
CONNECTING_AT_ONCE = 8


def model():
    """The server's model for this benchmark: the embedded ToneModel with an explicit think time
    (the server runs `--model bench.voice_latency:model` with this file's environment variables)."""
    from reference_server.shell.tone_model import ToneModel

    return ToneModel(think_time=float(os.environ.get(THINK_ENV, "0.2")),
                     tail_ms=int(os.environ.get(TAIL_ENV, str(TAIL_MS))))


def wall_ns() -> int:
    return time.time_ns()


# -- one client session ------------------------------------------------------------------------


@dataclass
class Turn:
    """One turn's timings, ms; `failure` says why a turn gave no figures."""

    session: int
    number: int
    failure: str | None = None
    total: float | None = None
    vad_measured: float | None = None
    """t_end → the packet completing the server VAD's silence left."""
    vad_edge: float | None = None
    """Where the server VAD put the end of speech, minus our energy edge, in ms of audio."""
    stopped_after_end: float | None = None
    """t_end → speech_stopped arrived."""
    think_measured: float | None = None
    """response.created arrived → t_first."""
    server_nominal: float | None = None
    server_aligned: float | None = None
    upstream: float | None = None
    """Packet completing the silence left → speech_stopped (server clock)."""
    in_server: float | None = None
    """speech_stopped → first audio sent (server clock), less the think time."""
    downstream: float | None = None
    """First audio sent (server clock) → t_first."""
    first_had_marker: bool | None = None


class VoiceClient:
    """One probe-peer session on its own socket, with kernel receive timestamps.

    The probe peer is sans-IO and runs on the loop's clock; everything measured is stamped on the
    wall clock (ns): sends right after sendto, arrivals by the kernel."""

    def __init__(self, index: int, loop: asyncio.AbstractEventLoop, rng: random.Random) -> None:
        self.index = index
        self.loop = loop
        self.rng = rng
        self.peer = ProbePeer(datachannel=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.location: str | None = None
        self.association: Association | None = None
        self.channel: DataChannel | None = None
        self.event_log: EventLog | None = None
        self.connected: asyncio.Future = loop.create_future()
        self.send_errors = 0
        self.sent_ns: list[int] = []
        """When each of our 20 ms packets left; packet k is audio [20k, 20k + 20) ms of the session."""
        self.turns: list[Turn] = []
        self._queue: deque[bytes] = deque()
        self._decoder = OpusDecoder()
        self._listen_index: int | None = None
        self._listen_after: int | None = None
        self.first_sound: tuple[int, bool] | None = None
        self._timer = PeerTimer(loop, self.peer, self.flush)
        self._speaker: asyncio.Task | None = None
        self._closed = False
        loop.add_reader(self.sock.fileno(), self._readable)

    # -- connection ------------------------------------------------------------------------

    async def connect(self, whip_url: str, silence_ms: int, prefix_ms: int) -> None:
        """Signaling, ICE, DTLS, SCTP, the events channel, session.created, our VAD timing;
        then audio starts to flow (silence until a turn speaks)."""
        answer, self.location = await whip_post(whip_url, self.peer.create_offer(), timeout=CONNECT_TIMEOUT)
        self.peer.set_answer(answer)
        self.peer.start(self.loop.time())
        self.flush()
        await asyncio.wait_for(self.connected, CONNECT_TIMEOUT)
        await self.association.wait_connected(CONNECT_TIMEOUT)
        self.channel = self.association.open_channel(EVENTS_LABEL)
        self.event_log = EventLog(self.channel)
        await self.channel.wait_open(REPLY_TIMEOUT)
        if not await self.association.wait_for(lambda: self.of_type("session.created"), REPLY_TIMEOUT):
            raise BenchError(f"session {self.index}: no session.created on {EVENTS_LABEL!r}")
        self.channel.send(json.dumps({"type": "session.update", "session": {"turn_detection": {
            "type": "server_vad", "silence_duration_ms": silence_ms, "prefix_padding_ms": prefix_ms}}}))
        if not await self.association.wait_for(lambda: self.of_type("session.updated", "error"), REPLY_TIMEOUT):
            raise BenchError(f"session {self.index}: no answer to session.update")
        reply = self.of_type("session.updated", "error")[0][1]
        turn_detection = (reply.get("session") or {}).get("turn_detection") or {}
        if turn_detection.get("silence_duration_ms") != silence_ms or turn_detection.get("prefix_padding_ms") != prefix_ms:
            raise BenchError(f"session {self.index}: session.update not applied: {json.dumps(reply)[:300]}")
        self._speaker = self.loop.create_task(self._speak())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._speaker is not None:
            self._speaker.cancel()
            await asyncio.gather(self._speaker, return_exceptions=True)
        if self.association is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.association.close(), 2.0)
        self.peer.close(self.loop.time())
        self._send_queued()
        if self.location is not None:
            with contextlib.suppress(PeerError):
                await whip_delete(self.location, timeout=2.0)
        self._timer.cancel()
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    # -- the peer's shell --------------------------------------------------------------------

    def flush(self) -> None:
        """Send what the peer queued, take its events (stamped now), re-arm its timer."""
        self._send_queued()
        self._take_events(wall_ns())

    def _send_queued(self) -> None:
        for data, addr in self.peer.datagrams_to_send():
            if self._closed and data[0] > 127:
                continue
            try:
                self.sock.sendto(data, addr)
            except OSError:
                self.send_errors += 1

    def _take_events(self, arrival_ns: int) -> None:
        peer = self.peer
        while (event := peer.next_event()) is not None:
            if isinstance(event, RtpReceived):
                self._heard(event.packet, arrival_ns)
            elif isinstance(event, DtlsData):
                if self.association is not None:
                    self.association.receive(event.data, arrival_ns / 1e9)
            elif isinstance(event, DtlsConnected):
                self.association = Association(self._send_sctp, now=time.time,
                                               remote_port=peer.answer.sctp_port or 5000,
                                               remote_max_message_size=max_message_size(peer.answer.raw))
                self.association.start()
                if not self.connected.done():
                    self.connected.set_result(None)
            elif isinstance(event, PeerFailed) and not self.connected.done():
                self.connected.set_exception(PeerError(event.reason))
        self._timer.rearm()

    def _readable(self) -> None:
        while True:
            try:
                data, ancillary, _, addr = self.sock.recvmsg(RECEIVE_SIZE, socket.CMSG_SPACE(TIMESPEC.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP port unreachable after the server went away
            arrival = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= TIMESPEC.size:
                    seconds, nanoseconds = TIMESPEC.unpack_from(value)
                    arrival = seconds * 1_000_000_000 + nanoseconds
            if arrival is None:
                arrival = wall_ns()
            self.peer.receive_datagram(data, addr[:2], self.loop.time())
            self._send_queued()
            self._take_events(arrival)

    def _send_sctp(self, packet: bytes) -> None:
        if self.peer.state == "connected":
            self.peer.send_dtls(packet)
            self.flush()

    # -- audio -------------------------------------------------------------------------------

    async def _speak(self) -> None:
        """One packet per 20 ms on an absolute schedule: what a turn queued, else silence."""
        loop = self.loop
        start = loop.time()
        base = self.rng.getrandbits(32)
        index = 0
        while self.peer.state == "connected":
            delay = start + index * FRAME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = self._queue.popleft() if self._queue else SILENCE_PACKET
            self.peer.send_rtp(payload, timestamp=base + index * FRAME_SAMPLES, marker=index == 0)
            self._send_queued()
            sent = wall_ns()
            self.sent_ns.append(sent)
            if index == self._listen_index:
                self._listen_after = sent
            index += 1

    def _heard(self, packet: bytes, arrival_ns: int) -> None:
        """Note the first response packet with sound after the end of speech, and its marker bit."""
        if self._listen_after is None or arrival_ns <= self._listen_after or self.first_sound is not None:
            return
        if level_dbfs(self._decoder.decode(rtp_payload(packet))) > SOUND_FLOOR_DBFS:
            self.first_sound = (arrival_ns, bool(packet[1] & 0x80))

    # -- events ------------------------------------------------------------------------------

    def of_type(self, *types: str, since: int = 0) -> list[tuple[float, dict]]:
        return self.event_log.of_type(*types, since=since)

    # -- a turn ------------------------------------------------------------------------------

    async def turn(self, number: int, speech, pause: int, silence_ms: int, think: float) -> Turn:
        """Say `pause` packets of silence and the speech; wait for the whole response; measure."""
        record = Turn(self.index, number)
        seen = len(self.event_log.events)
        start = len(self.sent_ns) + len(self._queue)
        last = start + pause + speech.end - 1
        self.first_sound = self._listen_after = None
        self._listen_index = last
        self._queue.extend([SILENCE_PACKET] * pause + list(speech.packets))
        ended = await self.association.wait_for(
            lambda: self.of_type("response.done", "error", since=seen), TURN_TIMEOUT + len(self._queue) * FRAME)
        self._listen_index = None
        events = self.event_log.events[seen:]
        kinds = Counter(event.get("type") for _, event in events)
        done = self.of_type("response.done", since=seen)
        if not ended:
            record.failure = f"no response.done within {TURN_TIMEOUT:g} s after speaking"
        elif kinds["error"]:
            record.failure = f"error event: {self.of_type('error', since=seen)[0][1].get('error')}"
        elif kinds["input_audio_buffer.speech_started"] != 1 or kinds["input_audio_buffer.speech_stopped"] != 1:
            record.failure = (f"{kinds['input_audio_buffer.speech_started']} speech_started, "
                              f"{kinds['input_audio_buffer.speech_stopped']} speech_stopped for one utterance")
        elif done[0][1].get("response", {}).get("status") != "completed":
            record.failure = f"response ended {done[0][1].get('response', {}).get('status')}"
        elif self.first_sound is None:
            record.failure = "no response packet with sound"
        if record.failure is not None:
            return record
        t_end = self.sent_ns[last]
        t_first, record.first_had_marker = self.first_sound
        stopped_at, stopped = self.of_type("input_audio_buffer.speech_stopped", since=seen)[0]
        created_at, created = self.of_type("response.created", since=seen)[0]
        response_id = created.get("response", {}).get("id")
        started = [event for _, event in self.of_type("output_audio_buffer.started", since=seen)
                   if event.get("response_id") == response_id]
        audio_end_ms = stopped.get("audio_end_ms")
        if not isinstance(audio_end_ms, (int, float)):
            record.failure = f"speech_stopped has audio_end_ms {audio_end_ms!r}"
            return record
        decisive = math.ceil(audio_end_ms / (FRAME * 1000)) - 1  # the packet holding audio_end_ms's last sample
        ms = 1e-6
        record.total = (t_first - t_end) * ms
        record.server_nominal = record.total - silence_ms - think * 1000
        record.stopped_after_end = stopped_at * 1000 - t_end * ms
        record.think_measured = t_first * ms - created_at * 1000
        record.vad_edge = audio_end_ms - silence_ms - (last + 1) * FRAME * 1000
        if 0 <= decisive < len(self.sent_ns):
            t_decided = self.sent_ns[decisive]
            record.vad_measured = (t_decided - t_end) * ms
            record.server_aligned = (t_first - t_decided) * ms - think * 1000
            stopped_server = stopped.get("server_timestamp")
            record.upstream = stopped_server * 1000 - t_decided * ms
            if started:
                sent_server = started[0].get("server_timestamp")
                record.in_server = (sent_server - stopped_server) * 1000 - think * 1000
                record.downstream = t_first * ms - sent_server * 1000
        return record


def rtp_payload(packet: bytes) -> bytes:
    """The payload of a decrypted RTP packet: past CSRCs and the header extension, before padding."""
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10 and len(packet) >= offset + 4:
        offset += 4 + 4 * int.from_bytes(packet[offset + 2:offset + 4], "big")
    end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)
    return packet[offset:end]


def max_message_size(sdp: str) -> int:
    """The answer's a=max-message-size; 65536 when absent (RFC 8841 §6.1)."""
    match = re.search(r"^a=max-message-size:(\d+)", sdp, re.MULTILINE)
    return int(match[1]) if match else 65536


# -- a row: S sessions, each several turns -------------------------------------------------------


@dataclass
class RowResult:
    sessions: int
    turns_per_session: int
    turns: list[Turn] = field(default_factory=list)
    cpu_share: dict[str, float] = field(default_factory=dict)
    load_before: list[float] = field(default_factory=list)
    load_during_max: list[float] = field(default_factory=list)
    client_send_errors: int = 0
    client_send_lateness_ms: dict[str, float] = field(default_factory=dict)
    """How late our 20 ms packets left against their schedule (a busy client sends late)."""


class Row:
    """The row in progress, so that SIGTERM can end it as Ctrl-C does."""

    task: asyncio.Task | None = None


async def converse(client: VoiceClient, turns: int, speech, args: argparse.Namespace) -> None:
    await asyncio.sleep(client.rng.uniform(0, STAGGER))
    for number in range(1, turns + 1):
        pause = client.rng.randint(*PAUSE_PACKETS)
        client.turns.append(await client.turn(number, speech, pause, args.silence_ms, args.think))


async def run_row(server: Child, sessions: int, args: argparse.Namespace, seed: int) -> RowResult:
    loop = asyncio.get_running_loop()
    Row.task = asyncio.current_task()
    turns = max(args.turns, math.ceil(args.min_turns / sessions))
    result = RowResult(sessions, turns, load_before=load_average())
    speech = first_sentence()
    whip_url = f"{server.http_url}/whip"
    clients = [VoiceClient(index, loop, random.Random(seed * 1000 + index)) for index in range(sessions)]
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def connect(client: VoiceClient) -> None:
        async with gate:
            await client.connect(whip_url, args.silence_ms, args.prefix_ms)

    try:
        attempts = await asyncio.gather(*(connect(client) for client in clients), return_exceptions=True)
        failures = [attempt for attempt in attempts if isinstance(attempt, BaseException)]
        if failures:
            raise BenchError(f"{len(failures)} of {sessions} sessions did not connect: "
                             f"{type(failures[0]).__name__}: {failures[0]}\n{server.log_tail()}")
        load_peak = list(os.getloadavg())

        async def sample_load() -> None:
            while True:
                await asyncio.sleep(1.0)
                load_peak[:] = [max(a, b) for a, b in zip(load_peak, os.getloadavg())]

        sampler = loop.create_task(sample_load())
        wall0, client0, server0, machine0 = time.monotonic(), cpu_seconds_self(), server.cpu_seconds(), machine_busy_seconds()
        deadline = STAGGER + turns * (TURN_TIMEOUT + 5.0)
        try:
            async with asyncio.timeout(deadline):
                await asyncio.gather(*(converse(client, turns, speech, args) for client in clients))
        finally:
            sampler.cancel()
        wall = time.monotonic() - wall0
        client_share = (cpu_seconds_self() - client0) / wall
        server_share = (server.cpu_seconds() - server0) / wall
        others = max(0.0, (machine_busy_seconds() - machine0) / wall - client_share - server_share)
        result.cpu_share = {"client": round(client_share, 3), "server": round(server_share, 3),
                            "others": round(others, 3)}
        result.load_during_max = [round(value, 2) for value in load_peak]
    finally:
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
        Row.task = None
    result.turns = [turn for client in clients for turn in client.turns]
    result.client_send_errors = sum(client.send_errors for client in clients)
    lateness = sorted(ns - (client.sent_ns[0] + round(index * FRAME * 1e9))
                      for client in clients for index, ns in enumerate(client.sent_ns))
    result.client_send_lateness_ms = {"p50": percentile(lateness, 0.5), "p99": percentile(lateness, 0.99),
                                      "max": lateness[-1] / 1e6} if lateness else {}
    return result


# -- figures -------------------------------------------------------------------------------------


def distribution(values: list[float]) -> dict:
    values = sorted(value for value in values if value is not None)
    if not values:
        return {"count": 0}
    p50, p90, p99 = nearest_rank(values, 0.5, 0.9, 0.99)
    return {"count": len(values), "p50": round(p50, 2), "p90": round(p90, 2),
            "p99": round(p99, 2), "max": round(values[-1], 2), "min": round(values[0], 2)}


PARTS = (
    ("total", "total: end of speech left → first response audio arrived"),
    ("vad_measured", "VAD hangover, measured: end of speech → packet completing the VAD's silence left"),
    ("stopped_after_end", "  (speech_stopped arrived after end of speech)"),
    ("vad_edge", "  (server VAD's end of speech − ours, ms of audio)"),
    ("think_measured", "model think, measured: response.created arrived → first audio"),
    ("server_nominal", "server's share, nominal: total − silence duration − think time"),
    ("server_aligned", "server's share, VAD-aligned: first audio − completing packet left − think"),
    ("upstream", "  upstream: completing packet left → speech_stopped (server clock)"),
    ("in_server", "  in server: speech_stopped → first audio sent, − think (server clock)"),
    ("downstream", "  downstream: first audio sent (server clock) → arrived"),
)


def row_figures(row: RowResult) -> dict:
    good = [turn for turn in row.turns if turn.failure is None]
    figures = {part: distribution([getattr(turn, part) for turn in good]) for part, _ in PARTS}
    figures["first_sound_was_talkspurt_start"] = sum(1 for turn in good if turn.first_had_marker)
    return figures


def server_metrics(http_url: str) -> tuple[dict[str, dict], Counter]:
    """The server's rtcgate_voice_turn_seconds histograms (by part) and drop counters (by reason)."""
    samples = metric_samples(http_url)
    histograms: dict[str, dict] = {}
    for name, labels, value in ((sample.name, sample.labels, sample.value) for sample in samples):
        if name.startswith("rtcgate_voice_turn_seconds"):
            part = histograms.setdefault(labels["part"], {"buckets": []})
            if name.endswith("_bucket"):
                part["buckets"].append((labels["le"], int(value)))
            elif name.endswith("_sum"):
                part["sum"] = value
            elif name.endswith("_count"):
                part["count"] = int(value)
    for part in histograms.values():
        count = part.get("count", 0)
        part["mean_ms"] = round(1000 * part["sum"] / count, 2) if count else None
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            bound = next((le for le, cumulative in part["buckets"] if count and cumulative >= fraction * count), None)
            part[f"{label}_at_most_ms"] = None if bound is None or bound == "+Inf" else round(1000 * float(bound), 1)
    return histograms, drop_counts(samples)


def print_row(row: dict, args: argparse.Namespace) -> None:
    figures = row["figures"]
    turns = row["turns_measured"] + row["turns_failed"]
    print(f"\n== {row['sessions']} session{'s' * (row['sessions'] != 1)} on one port: {turns} turns "
          f"({row['turns_per_session']} per session), {row['turns_measured']} measured, {row['turns_failed']} failed")
    for reason, count in row["failures"].items():
        print(f"   failed: {count} × {reason}")
    load_before, load_during = row["load_before"], row["load_during_max"]
    cpu = row["cpu_share"]
    print(f"   load average (1/5/15 min) before {load_before[0]}/{load_before[1]}/{load_before[2]}, highest during "
          f"{load_during[0]}/{load_during[1]}/{load_during[2]}; CPU during the turns: server {cpu['server']:.0%}, "
          f"client {cpu['client']:.0%}, others {cpu['others']:.0%} of one CPU")
    if cpu["others"] >= BUSY_MACHINE:
        print(f"   warning: other processes used {cpu['others']:.0%} of a CPU meanwhile; the figures hold the "
              "server's waits for a CPU too: run again on a quieter machine")
    lateness = row["client_send_lateness_ms"]
    if lateness:
        print(f"   client's 20 ms packets left late by p50 {lateness['p50']:.2f} ms, p99 {lateness['p99']:.2f} ms, "
              f"max {lateness['max']:.2f} ms")
    print(f"   {'ms':<82} {'n':>4} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    print(f"   {'VAD hangover, configured (silence_duration_ms)':<82} {'':>4} {args.silence_ms:>7}")
    print(f"   {'model think, configured (ToneModel think_time)':<82} {'':>4} {1000 * args.think:>7.0f}")
    for part, label in PARTS:
        values = figures[part]
        if not values["count"]:
            print(f"   {label:<82} {0:>4}")
            continue
        print(f"   {label:<82} {values['count']:>4} {values['p50']:>7.1f} {values['p90']:>7.1f} "
              f"{values['p99']:>7.1f} {values['max']:>7.1f}")
    measured = row["turns_measured"]
    print(f"   first packet with sound was the response's first packet (marker bit) in "
          f"{figures['first_sound_was_talkspurt_start']} of {measured} turns")
    aligned, nominal = figures["server_aligned"], figures["server_nominal"]
    if aligned["count"]:
        passed = aligned["p99"] < GOAL * 1000 and not row["turns_failed"]
        print(f"   {'PASS' if passed else 'FAIL'}: the server's own share (VAD-aligned) p99 {aligned['p99']:.1f} ms, "
              f"goal < {GOAL * 1000:.0f} ms" + (f"; {row['turns_failed']} turns failed" if row["turns_failed"] else ""))
        edge = figures["vad_edge"]
        span = f"{edge['min']:+.0f} ms" if edge["min"] == edge["max"] else f"{edge['min']:+.0f} to {edge['max']:+.0f} ms"
        print(f"   nominal share p99 {nominal['p99']:.1f} ms ({'<' if nominal['p99'] < GOAL * 1000 else '>='} "
              f"{GOAL * 1000:.0f} ms): it also holds where the server's VAD put the end of speech against the "
              f"client's (−45 dBFS) edge, {span} of audio here")
    metrics = row["server_metrics"]
    for part, values in metrics["voice_turn_seconds"].items():
        print(f"   server /metrics rtcgate_voice_turn_seconds{{part=\"{part}\"}}: n={values.get('count')}, "
              f"mean {values.get('mean_ms')} ms, p50 ≤ {values.get('p50_at_most_ms')} ms, "
              f"p99 ≤ {values.get('p99_at_most_ms')} ms")
    drops = ", ".join(f"{reason} {count}" for reason, count in sorted(metrics["drops"].items())) or "none"
    print(f"   server drops: {drops}; client send errors: {row['client_send_errors']}")


# -- main ----------------------------------------------------------------------------------------


def interrupted(signum, frame) -> None:
    """SIGTERM: cancel the row in progress (its sessions close), or stop at once between rows;
    the server is stopped either way."""
    task = Row.task
    if task is None:
        raise KeyboardInterrupt
    task.get_loop().call_soon_threadsafe(task.cancel)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    parser.add_argument("--sessions", type=whole, nargs="+", default=[1, 50],
                        help="concurrent sessions on the one port, one row per value")
    parser.add_argument("--turns", type=whole, default=4, help="turns per session")
    parser.add_argument("--min-turns", type=whole, default=30,
                        help="at least this many turns per row: small rows take more turns each")
    parser.add_argument("--silence-ms", type=whole, default=500,
                        help="server VAD silence_duration_ms: a multiple of 20 (the VAD frame), up to 10000")
    parser.add_argument("--prefix-ms", type=non_negative_whole, default=300, help="server VAD prefix_padding_ms")
    parser.add_argument("--think", type=non_negative_number, default=0.2,
                        help="the model's think time in seconds, up to 5")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the kernel place the client and the server (default: one CPU each); on a "
                             "machine others load, a pinned server cannot move away from their work")
    parser.add_argument("--seed", type=integer, default=1, help="seed for pauses and staggering")
    return parser


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    if args.silence_ms % 20 or not 0 < args.silence_ms <= 10_000:
        parser.error("--silence-ms must be a multiple of 20 ms (the VAD frame), up to 10000")
    if not 0 <= args.think <= 5:
        parser.error("--think must be from 0 to 5 seconds")

    pinned = None if args.no_pin else pin_client()
    os.environ[THINK_ENV] = repr(args.think)
    os.environ[TAIL_ENV] = str(TAIL_MS)
    command = serve_command("voice", "--model", "bench.voice_latency:model", "--log-level", "warning")
    speech = first_sentence()
    rows = []
    with Children() as children:
        for number, sessions in enumerate(args.sessions):
            try:
                server = children.start(f"reference server {sessions}", command, server_cpu(pinned))
                row = uvloop.run(run_row(server, sessions, args, args.seed + number))
                histograms, drops = server_metrics(server.http_url)
            except TimeoutError:
                raise BenchError(f"the {sessions}-session row ran past its time limit") from None
            except asyncio.CancelledError:
                raise KeyboardInterrupt from None
            finally:
                children.stop_all()
            good = [turn for turn in row.turns if turn.failure is None]
            rows.append({
                "sessions": sessions, "turns_per_session": row.turns_per_session,
                "turns_measured": len(good), "turns_failed": len(row.turns) - len(good),
                "failures": dict(Counter(turn.failure for turn in row.turns if turn.failure)),
                "load_before": row.load_before, "load_during_max": row.load_during_max,
                "cpu_share": row.cpu_share, "client_send_errors": row.client_send_errors,
                "client_send_lateness_ms": row.client_send_lateness_ms,
                "figures": row_figures(row),
                "server_metrics": {"voice_turn_seconds": histograms, "drops": dict(drops)},
                "turns": [asdict(turn) for turn in row.turns],
            })

    machine = machine_facts(pinned)
    machine["pinned_cpus"] = None if pinned is None else {"client": pinned[0], "server": pinned[1]}
    settings = {"silence_duration_ms": args.silence_ms, "prefix_padding_ms": args.prefix_ms,
                "think_time_s": args.think, "tone_tail_ms": TAIL_MS, "vad": "webrtcvad",
                "utterance": "first sentence of toolkit/corpora/audio/speech_en.ogg (\"Hello there.\")",
                "utterance_packets": len(speech.packets), "speech_end_packet": speech.end,
                "pause_ms": [20 * n for n in PAUSE_PACKETS], "stagger_s": STAGGER,
                "sound_floor_dbfs": SOUND_FLOOR_DBFS, "goal_ms": GOAL * 1000, "seed": args.seed,
                "arrival_clock": "kernel receive timestamps (SO_TIMESTAMPNS, CLOCK_REALTIME)"}
    print(f"{machine_line(machine)}; " + (f"client on CPU {pinned[0]}, server on CPU {pinned[1]}" if pinned
                                      else "not pinned (one CPU)"))
    print(f"settings: server VAD webrtcvad, silence_duration {args.silence_ms} ms, prefix padding {args.prefix_ms} ms; "
          f"ToneModel think_time {1000 * args.think:.0f} ms; utterance \"Hello there.\" "
          f"({len(speech.packets)} packets, speech ends at packet {speech.end}); first response audio = first "
          f"RTP packet decoding louder than {SOUND_FLOOR_DBFS:g} dBFS; arrivals stamped by the kernel")
    for row in rows:
        print_row(row, args)
    print()
    write_results(args.json, {"machine": machine, "settings": settings, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("voice_latency", main))
