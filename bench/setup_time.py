"""Session setup time, offer → first SRTP, of the reference server against aiortc.

Two servers run as child processes on loopback: the reference server (`rtcgate serve --media
echo`: ICE-lite, one UDP port for every session) and the aiortc WHIP answerer of the
third-party tests (tests/answerers/aiortc_whip.py: full ICE, one UDP port per session), the
peer a Python user would pick instead. Both echo RTP payloads. The client is this process:
the toolkit's load sessions (toolkit.load.sessions.open_session), which offer over WHIP, run
ICE and DTLS with the probe peer, then send probe RTP every 20 ms until the first echo comes
back, and time each phase on the way:

    signaling   WHIP POST sent → answer received
    first_stun  answer → first connectivity check sent
    ice         first check → our nominating check answered
    dtls        → DTLS handshake done
    first_srtp  → first SRTP packet from the server
    total       the sum: offer → first SRTP

Two modes, each once per round for each server; the rounds alternate which server goes
first so that load drifting on the machine hits both alike:
- sequential: N sessions one after another, each closed after its first SRTP;
- burst: M sessions opened at once, closed when all are up (or failed). Here the client's
  own loop is busy: a phase ends when the session's task resumes, so a late resumption moves
  time into the earlier phase (DTLS may already be done when ICE is marked complete). The
  total stays exact; the client's queueing is reported alongside (loop lag).

Then traced sessions per server (--trace one after another and one burst, outside the timed
figures) record when each datagram went out or came in and what it was (STUN request/response,
DTLS handshake flight, RTP). Every gap in that timeline belongs to whoever acted next: waiting for the server
(a datagram came in: the server's work plus loopback transit), the client's own work (a
datagram went out), or a client timer (a retransmission went out). Wherever the reference is
slower than aiortc, a line says which of these bounds it, with the measured figures. For
signaling, a POST the server refuses before any work (415) splits the HTTP exchange itself
from building the answer. Per mode, CPU time of each side (per thread, to the nanosecond), the
time each side was runnable while another process had its CPU (the machine's other load), and
the client's loop lag (how long a callback waits in its ready queue) show which side was busy.

The client runs on the stock asyncio loop, whose clock has sub-microsecond resolution (uvloop's
loop.time() counts whole milliseconds). On a machine with two or more CPUs the client is pinned
to one and both servers to another.

Prints a table per mode (p50/p90/p99 per phase, ms), the reference/aiortc ratios of the total's
p50 and p99 (the goal is ≤ 1.0), failures with their reasons, and writes it all, with machine
facts, to reports/bench/setup_time.json.

Usage: python -m bench.setup_time [--sessions 30] [--burst 20] [--rounds 2] [--trace 5]
                                  [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import pathlib
import re
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from bench.common import (
    BUSY_MACHINE,
    BenchError,
    Child,
    Children,
    benchmark_parser,
    cpu_seconds_self,
    load_average,
    machine_busy_seconds,
    machine_facts,
    machine_line,
    percentile,
    pin_client,
    pinning_line,
    run_benchmark,
    serve_command,
    server_cpu,
    write_results,
)
from toolkit.commands.arguments import non_negative_whole, whole
from toolkit.load.sessions import open_session
from toolkit.peer import PeerConnection, PeerError, ProbePeer, RtpReceived, connect_whip

PHASES = ("signaling", "first_stun", "ice", "dtls", "first_srtp", "total")
ICE_TO_FIRST_SRTP = "ice_to_first_srtp"
"""ice + dtls + first_srtp: immune to a boundary between them moving with the client's queueing."""
TRACED_PHASES = ("ice", "dtls", "first_srtp")
MODES = ("sequential", "burst")
REFERENCE = "reference"
AIORTC = "aiortc"
CONNECT_TIMEOUT = 10.0
LAG_PROBE_INTERVAL = 0.001
RTP_INTERVAL = 0.02
"""open_session sends one probe packet per 20 ms until the first echo; the traced sessions too."""
FIRST_ECHO_TIMEOUT = 5.0
CPU_BOUND = 0.9
"""CPU share from which a side counts as bound by its CPU."""
AIORTC_READY = re.compile(rb"listening whip=(?P<whip>\S+)")
DTLS_HANDSHAKE_NAMES = {
    1: "ClientHello", 2: "ServerHello", 3: "HelloVerifyRequest", 11: "Certificate",
    12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
    15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished",
}
DTLS_CONTENT_NAMES = {20: "ChangeCipherSpec", 21: "Alert", 23: "ApplicationData"}
BUCKETS = ("server", "client", "timer")
BUCKET_MEANINGS = {
    "server": "waiting for the server (its work plus loopback transit)",
    "client": "the client's own work",
    "timer": "a client timer (a retransmission, or the next 20 ms probe packet while no echo came)",
}


@dataclass(slots=True)
class Target:
    """A server under test and where to offer to it."""

    name: str
    child: Child
    whip_url: str


# -- servers ---------------------------------------------------------------------------------


def start_aiortc(children: Children, cpu: int | None) -> Target:
    """The aiortc answerer, which opens a port per session and names its WHIP URL when ready."""
    child = children.start("aiortc answerer", [sys.executable, "-m", "tests.answerers.aiortc_whip", "--host",
                                               "127.0.0.1", "--port", "0"], cpu, ready=AIORTC_READY)
    return Target(AIORTC, child, child.ready["whip"].decode())


def start_reference(children: Children, cpu: int | None) -> Target:
    child = children.start("reference server", serve_command("echo"), cpu)
    return Target(REFERENCE, child, f"{child.http_url}/whip")


# -- timed sessions --------------------------------------------------------------------------


@dataclass
class ModeRun:
    """One mode against one server in one round: the setup times and failures it gave."""

    server: str
    mode: str
    round: int
    times: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_share: dict[str, float] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    server_run_queue_s: float = 0.0
    """Time the server was runnable but another process had its CPU."""
    client_run_queue_s: float = 0.0
    loop_lags: list[float] = field(default_factory=list)
    """How late each 1 ms sleep of a watcher task woke up meanwhile, in seconds."""


def failure_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


async def open_timed(whip_url: str, index: int) -> tuple[object | None, str | None]:
    """(session, None) once its first SRTP came back, or (None, why it failed)."""
    try:
        return await open_session(whip_url, index, media="probe", timeout=CONNECT_TIMEOUT), None
    except (TimeoutError, PeerError, OSError) as exc:
        return None, failure_reason(exc)


def schedstat_of(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of all the process's threads, to
    the nanosecond (/proc/PID/task/*/schedstat). /proc/PID/stat counts 10 ms ticks, too coarse
    for a burst that lasts tens of ms; the run-queue wait shows other processes on its CPU."""
    running = waiting = 0
    for stat in pathlib.Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            fields = stat.read_text().split()
            running, waiting = running + int(fields[0]), waiting + int(fields[1])
        except (OSError, ValueError, IndexError):
            pass  # the thread ended meanwhile
    return running / 1e9, waiting / 1e9


@dataclass(frozen=True, slots=True)
class CpuMark:
    wall: float
    client: tuple[float, float]
    server: tuple[float, float]

    @classmethod
    def take(cls, server: Child) -> CpuMark:
        return cls(time.perf_counter(), schedstat_of(os.getpid()), schedstat_of(server.process.pid))


async def watch_loop_lag(lags: list[float]) -> None:
    """Every millisecond, note how long a callback waits in the client's ready queue before it
    runs: the client's own queueing, which every phase time measured meanwhile contains (an
    arriving datagram waits as long). A late sleep would not do: epoll rounds its timeout up
    to whole milliseconds."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(LAG_PROBE_INTERVAL)
        queued = loop.time()
        ran = loop.create_future()
        loop.call_soon(lambda ran=ran: ran.set_result(loop.time()))
        lags.append(await ran - queued)


async def run_mode(target: Target, mode: str, count: int, round_number: int) -> ModeRun:
    """Sequential: open, wait for the first SRTP, close, next. Burst: open all at once, close
    them once all are up. CPU and loop lag count while sessions are being opened."""
    run = ModeRun(target.name, mode, round_number)
    watcher = asyncio.ensure_future(watch_loop_lag(run.loop_lags))
    before = CpuMark.take(target.child)
    if mode == "sequential":
        for index in range(count):
            session, failure = await open_timed(target.whip_url, index)
            if session is None:
                run.failures.append(failure)
                continue
            run.times.append(session.setup.as_dict())
            await session.close()
        after = CpuMark.take(target.child)
        watcher.cancel()
    else:
        outcomes = await asyncio.gather(*(open_timed(target.whip_url, index) for index in range(count)))
        after = CpuMark.take(target.child)
        watcher.cancel()
        for session, failure in outcomes:
            if session is None:
                run.failures.append(failure)
            else:
                run.times.append(session.setup.as_dict())
        await asyncio.gather(*(session.close() for session, _ in outcomes if session is not None))
    run.wall_s = after.wall - before.wall
    run.server_cpu_s, run.server_run_queue_s = (a - b for a, b in zip(after.server, before.server))
    run.client_cpu_s, run.client_run_queue_s = (a - b for a, b in zip(after.client, before.client))
    run.cpu_share = {"client": round(run.client_cpu_s / run.wall_s, 3),
                     "server": round(run.server_cpu_s / run.wall_s, 3)}
    return run


# -- traced sessions -------------------------------------------------------------------------


def datagram_kind(data: bytes) -> str:
    """What a datagram is, by RFC 7983's first-byte ranges, named down to DTLS handshake messages."""
    first = data[0] if data else -1
    if 0 <= first < 4 and len(data) >= 2:
        kind = ((data[0] << 8) | data[1]) & 0x0110
        return {0x0000: "STUN request", 0x0100: "STUN response",
                0x0110: "STUN error response", 0x0010: "STUN indication"}[kind]
    if 19 < first < 64:
        return "DTLS " + "+".join(dtls_records(data))
    if 127 < first < 192 and len(data) > 1:
        return "SRTCP" if 191 < data[1] < 224 else "SRTP"
    return "other"


def dtls_records(data: bytes) -> list[str]:
    """Names of the messages in a DTLS datagram; encrypted handshake records are the Finished."""
    names: list[str] = []
    offset = 0
    while offset + 13 <= len(data):
        content_type, epoch = data[offset], (data[offset + 3] << 8) | data[offset + 4]
        length = (data[offset + 11] << 8) | data[offset + 12]
        body = data[offset + 13:offset + 13 + length]
        if content_type == 22 and epoch == 0:
            position = 0
            while position + 12 <= len(body):
                name = DTLS_HANDSHAKE_NAMES.get(body[position], f"handshake {body[position]}")
                if not names or names[-1] != name:  # one message in several fragments: named once
                    names.append(name)
                position += 12 + ((body[position + 9] << 16) | (body[position + 10] << 8) | body[position + 11])
        elif content_type == 22:
            names.append("Finished")
        else:
            names.append(DTLS_CONTENT_NAMES.get(content_type, f"record {content_type}"))
        offset += 13 + length
    return names


class TracingPeer(ProbePeer):
    """A probe peer that notes when each datagram went out or came in, and what it was."""

    def __init__(self) -> None:
        super().__init__()
        self.trace: list[tuple[float, str, str]] = []
        """(time.monotonic(), "in" or "out", datagram_kind)"""

    def receive_datagram(self, data: bytes, addr, now: float) -> None:
        self.trace.append((time.monotonic(), "in", datagram_kind(data)))
        super().receive_datagram(data, addr, now)

    def datagrams_to_send(self):
        outgoing = super().datagrams_to_send()
        now = time.monotonic()
        self.trace.extend((now, "out", datagram_kind(data)) for data, _ in outgoing)
        return outgoing


async def bare_http_exchange(whip_url: str) -> float:
    """Seconds for a POST the server refuses before any work (415, wrong Content-Type), sent
    as whip_post sends an offer (a fresh aiohttp session each time): signaling minus the answer."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT)) as http:
        async with http.post(whip_url, data=b"not sdp", headers={"Content-Type": "text/plain"}) as response:
            await response.read()
            if response.status != 415:
                raise PeerError(f"POST text/plain to {whip_url} answered {response.status}, not 415")
    return loop.time() - started


async def traced_session(whip_url: str, *, bare_http: bool = False) -> tuple[dict, str | None]:
    """One session as open_session runs it, on a tracing peer; its timeline split by phase.
    With `bare_http`, a refused POST first gives the HTTP exchange's own share of signaling."""
    peer = TracingPeer()
    try:
        http_s = await bare_http_exchange(whip_url) if bare_http else None
        connection = await connect_whip(whip_url, peer=peer, timeout=CONNECT_TIMEOUT)
    except (TimeoutError, PeerError, OSError, aiohttp.ClientError) as exc:
        return {}, failure_reason(exc)
    try:
        marks = dict(connection.phase_times)
        echoed, marks["first_srtp"] = await first_echo(connection)
    except PeerError as exc:
        return {}, failure_reason(exc)
    finally:
        await close_quietly(connection)
    analysis = split_timeline(peer.trace, marks)
    analysis["first_srtp"]["echoed_packet"] = echoed
    analysis["signaling"] = {"duration_ms": (marks["answer"] - marks["offer_sent"]) * 1e3,
                             "bare_http_ms": None if http_s is None else http_s * 1e3}
    return analysis, None


async def first_echo(connection: PeerConnection) -> tuple[int, float]:
    """Send a numbered packet every 20 ms until an echo arrives: (its number, arrival time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FIRST_ECHO_TIMEOUT
    number = 0
    while loop.time() < deadline:
        number += 1
        connection.send_rtp(struct.pack("!I", number) + bytes(156), timestamp=number * 960)
        try:
            event = await connection.wait_for(RtpReceived, RTP_INTERVAL)
        except PeerError as exc:
            if connection.peer.state != "connected":
                raise
            if "within" not in str(exc):
                raise
            continue
        arrived = loop.time()
        offset = 12 + 4 * (event.packet[0] & 0x0F)
        return struct.unpack_from("!I", event.packet, offset)[0], arrived
    raise PeerError(f"no SRTP echo within {FIRST_ECHO_TIMEOUT:g} s of DTLS completing")


async def close_quietly(connection: PeerConnection) -> None:
    try:
        await connection.close()
    except PeerError:
        pass


def split_timeline(trace: list[tuple[float, str, str]], marks: dict[str, float]) -> dict[str, dict]:
    """Per traced phase: milliseconds per bucket, round trips, and what crossed the wire.

    A gap between two moments belongs to whoever acted at its end: a datagram in → the
    server; a datagram out → the client, or its timer when that datagram repeats one already
    sent in the phase (a retransmission, or the next probe packet while no echo came); a phase
    mark (set by the client after handling the datagram before it) → the client.
    """
    bounds = {"ice": (marks["first_stun"], marks["ice_completed"]),
              "dtls": (marks["ice_completed"], marks["dtls_connected"]),
              "first_srtp": (marks["dtls_connected"], marks["first_srtp"])}
    phases = {name: {"ms": dict.fromkeys(BUCKETS, 0.0), "round_trips": 0, "retransmissions": 0,
                     "wire": [], "duration_ms": (end - start) * 1e3}
              for name, (start, end) in bounds.items()}
    moments = sorted([(when, "mark", name) for name, (_, when) in bounds.items()]
                     + [(when, direction, kind) for when, direction, kind in trace])
    previous_time, previous_direction = bounds["ice"][0], None
    sent: dict[str, set[str]] = {name: set() for name in bounds}
    for when, direction, kind in moments:
        phase = next((name for name, (start, end) in bounds.items() if start < when <= end), None)
        if phase is not None:
            record = phases[phase]
            if direction == "out":
                bucket = "timer" if kind in sent[phase] else "client"
                if bucket == "timer" and kind != "SRTP":
                    record["retransmissions"] += 1
                sent[phase].add(kind)
            else:
                bucket = "server" if direction == "in" else "client"
            if direction == "in" and previous_direction == "out":
                record["round_trips"] += 1
            record["ms"][bucket] += max(0.0, when - max(previous_time, bounds[phase][0])) * 1e3
            if direction != "mark":
                record["wire"].append(f"{direction} {kind}")
        if when >= bounds["ice"][0]:
            previous_time = when
        if direction != "mark":
            previous_direction = direction
    for record in phases.values():
        record["wire"] = collapse(record["wire"])
    return phases


def collapse(wire: list[str]) -> list[str]:
    """Consecutive repeats as one entry with a count: 'out SRTP ×3'."""
    collapsed: list[tuple[str, int]] = []
    for item in wire:
        if collapsed and collapsed[-1][0] == item:
            collapsed[-1] = (item, collapsed[-1][1] + 1)
        else:
            collapsed.append((item, 1))
    return [item if count == 1 else f"{item} ×{count}" for item, count in collapsed]


def median(values: list[float]) -> float | None:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


def trace_summary(analyses: list[dict]) -> dict:
    """Medians over the traced sessions, per phase and bucket; the first session's wire as the example."""
    summary = {}
    for phase in TRACED_PHASES:
        records = [analysis[phase] for analysis in analyses]
        summary[phase] = {
            "duration_ms_p50": rounded(median([record["duration_ms"] for record in records])),
            "ms_p50": {bucket: rounded(median([record["ms"][bucket] for record in records])) for bucket in BUCKETS},
            "round_trips_p50": median([record["round_trips"] for record in records]),
            "retransmissions_total": sum(record["retransmissions"] for record in records),
            "wire_example": records[0]["wire"],
        }
    summary["first_srtp"]["echoed_packet_numbers"] = dict(Counter(
        analysis["first_srtp"]["echoed_packet"] for analysis in analyses))
    signaling = [analysis["signaling"] for analysis in analyses]
    bare = [record for record in signaling if record["bare_http_ms"] is not None]
    summary["signaling"] = {
        "duration_ms_p50": rounded(median([record["duration_ms"] for record in signaling])),
        "bare_http_ms_p50": rounded(median([record["bare_http_ms"] for record in bare])),
        "answering_ms_p50": rounded(median([record["duration_ms"] - record["bare_http_ms"] for record in bare])),
    }
    return summary


# -- figures ---------------------------------------------------------------------------------


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def distribution(times: list[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """p50/p90/p99 in ms per phase (nearest rank, as common.percentile takes it: toolkit.percentiles)."""
    figures = {}
    for phase in PHASES + (ICE_TO_FIRST_SRTP,):
        ordered = sorted(int(sample[phase] * 1e9) for sample in times)
        figures[phase] = {name: rounded(percentile(ordered, fraction))
                          for name, fraction in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))}
    return figures


def aggregate(runs: list[ModeRun]) -> dict:
    """All rounds of one mode against one server, pooled."""
    times = [sample | {ICE_TO_FIRST_SRTP: sample["ice"] + sample["dtls"] + sample["first_srtp"]}
             for run in runs for sample in run.times]
    sessions = len(times)
    server_cpu = sum(run.server_cpu_s for run in runs)
    client_cpu = sum(run.client_cpu_s for run in runs)
    wall = sum(run.wall_s for run in runs)
    lags = sorted(int(lag * 1e9) for run in runs for lag in run.loop_lags)
    return {
        "sessions": sessions,
        "failed": sum(len(run.failures) for run in runs),
        "failure_reasons": dict(Counter(reason for run in runs for reason in run.failures)),
        "ms": distribution(times) if times else None,
        "server_cpu_ms_per_session": rounded(server_cpu / sessions * 1e3) if sessions else None,
        "client_cpu_ms_per_session": rounded(client_cpu / sessions * 1e3) if sessions else None,
        "server_run_queue_ms_per_session":
            rounded(sum(run.server_run_queue_s for run in runs) / sessions * 1e3) if sessions else None,
        "client_run_queue_ms_per_session":
            rounded(sum(run.client_run_queue_s for run in runs) / sessions * 1e3) if sessions else None,
        "cpu_share": {"server": round(server_cpu / wall, 3), "client": round(client_cpu / wall, 3)},
        "client_loop_lag_ms": {name: rounded(percentile(lags, fraction))
                               for name, fraction in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
        "rounds": [{"round": run.round, "sessions": len(run.times), "failed": len(run.failures),
                    "wall_s": round(run.wall_s, 3), "cpu_share": run.cpu_share,
                    "total_ms_p50": rounded(percentile(sorted(int(sample["total"] * 1e9) for sample in run.times),
                                                       0.5))}
                   for run in runs],
    }


def ratios(results: dict) -> dict:
    """reference/aiortc per mode: the total's p50 and p99 (the goal), and every phase's p50."""
    out = {}
    for mode in MODES:
        reference, aiortc = results[mode][REFERENCE]["ms"], results[mode][AIORTC]["ms"]
        if reference is None or aiortc is None:
            out[mode] = None
            continue

        def ratio(phase: str, stat: str, reference=reference, aiortc=aiortc) -> float | None:
            numerator, denominator = reference[phase][stat], aiortc[phase][stat]
            return round(numerator / denominator, 3) if denominator else None

        out[mode] = {"total_p50": ratio("total", "p50"), "total_p99": ratio("total", "p99"),
                     "phase_p50": {phase: ratio(phase, "p50") for phase in PHASES}}
    return out


def bounds(results: dict, ratio_table: dict, traces: dict) -> list[str]:
    """One line per place where the reference is slower than aiortc, saying what bounds it."""
    lines = []
    for mode in MODES:
        table = ratio_table[mode]
        if table is None:
            continue
        reference, aiortc = results[mode][REFERENCE], results[mode][AIORTC]
        for phase in PHASES[:-1]:
            slower = reference["ms"][phase]["p50"] - aiortc["ms"][phase]["p50"]
            if slower <= 0:
                continue
            line = (f"{mode} {phase}: reference p50 {reference['ms'][phase]['p50']:.2f} ms vs aiortc "
                    f"{aiortc['ms'][phase]['p50']:.2f} ms (+{slower:.2f} ms); ")
            ours, theirs = reference["ms"][ICE_TO_FIRST_SRTP]["p50"], aiortc["ms"][ICE_TO_FIRST_SRTP]["p50"]
            if mode == "burst" and phase in TRACED_PHASES:
                line += (f"in a burst a phase ends when the session's task resumes, so time moves between "
                         f"phases: ice+dtls+first_srtp together take reference {ours:.2f} vs aiortc "
                         f"{theirs:.2f} ms at p50; ")
            lines.append(line + phase_bound(phase, traces[mode]) + "; " + load_context(reference, aiortc)
                         + shared_cpu(reference, aiortc, slower))
        for stat in ("p50", "p99"):
            ratio = table[f"total_{stat}"]
            if ratio is not None and ratio > 1.0:
                lines.append(f"{mode} total {stat}: ratio {ratio:.2f} > 1.0; " + total_bound(mode, stat, results))
    return lines


def load_context(result: dict, aiortc: dict) -> str:
    """How busy each side was while the sessions were opened: the client's loop lag (its own
    queueing, in every phase time), the server's CPU and its waits for it."""
    lag, cpu = result["client_loop_lag_ms"], result["cpu_share"]
    lags = ("no loop lag sample" if lag["max"] is None
            else f"loop lag p50 {lag['p50']:.2f} / p99 {lag['p99']:.2f} / max {lag['max']:.2f} ms")
    text = (f"meanwhile the client used {cpu['client']:.0%} of its CPU ({result['client_cpu_ms_per_session']:.2f} "
            f"ms per session, {lags}, {result['client_run_queue_ms_per_session']:.2f} ms per session runnable "
            "while another process had its CPU) "
            f"and the server {cpu['server']:.0%} of its CPU "
            f"({result['server_cpu_ms_per_session']:.2f} ms per session, and "
            f"{result['server_run_queue_ms_per_session']:.2f} ms per session runnable while another process "
            f"had its CPU; aiortc {aiortc['server_run_queue_ms_per_session']:.2f} ms)")
    if cpu["server"] >= CPU_BOUND:
        text += ": bound by the server's CPU"
    elif cpu["client"] >= CPU_BOUND:
        text += ": bound by the client's CPU"
    return text


def shared_cpu(reference: dict, aiortc: dict, slower_ms: float) -> str:
    """A verdict when the reference server's waits for its CPU alone could cover the excess."""
    waited = reference["server_run_queue_ms_per_session"]
    if waited < slower_ms:
        return ""
    return (f": the reference server waited {waited:.2f} ms per session for its CPU (aiortc "
            f"{aiortc['server_run_queue_ms_per_session']:.2f} ms), more than the +{slower_ms:.2f} ms, so the CPU "
            "it shares with other processes can account for it; only a quiet machine tells the rest")


def phase_bound(phase: str, traces: dict) -> str:
    """What the traced sessions of the same mode say about one phase the reference is slower in."""
    ours, theirs = traces.get(REFERENCE) or {}, traces.get(AIORTC) or {}
    if phase == "first_stun":
        return "this phase is the client's own work on the answer (the same client for both), not the server's"
    if phase == "signaling":
        if ours.get("signaling", {}).get("bare_http_ms_p50") is None or \
                theirs.get("signaling", {}).get("bare_http_ms_p50") is None:
            return "the WHIP POST round trip (HTTP plus building the answer), not split in this mode"
        parts = {"bare_http_ms_p50": "the HTTP exchange itself (a POST refused with 415)",
                 "answering_ms_p50": "building the answer (the rest of the POST round trip)"}
        excess = {part: ours["signaling"][part] - theirs["signaling"][part] for part in parts}
        part = max(excess, key=excess.get)
        detail = ", ".join(f"{meaning} {ours['signaling'][name]:.2f} vs {theirs['signaling'][name]:.2f} ms"
                           for name, meaning in parts.items())
        if excess[part] <= 0:
            return (f"traced p50s, reference vs aiortc: {detail} — the traced sessions do not reproduce it: "
                    "within run-to-run spread")
        return f"traced p50s, reference vs aiortc: {detail} — bound by {parts[part]} (+{excess[part]:.2f} ms)"
    if phase not in ours or phase not in theirs:
        return "no traced sessions to say more"
    detail = ", ".join(f"{BUCKET_MEANINGS[name].split(' (')[0]} {ours[phase]['ms_p50'][name]:.2f} vs "
                       f"{theirs[phase]['ms_p50'][name]:.2f} ms" for name in BUCKETS)
    text = (f"traced p50s, reference vs aiortc: {detail}; round trips {ours[phase]['round_trips_p50']} vs "
            f"{theirs[phase]['round_trips_p50']}")
    excess = {bucket: ours[phase]["ms_p50"][bucket] - theirs[phase]["ms_p50"][bucket] for bucket in BUCKETS}
    bucket = max(excess, key=excess.get)
    if excess[bucket] <= 0:
        return (text + " — the traced sessions do not reproduce it (phase p50 "
                f"{ours[phase]['duration_ms_p50']:.2f} vs {theirs[phase]['duration_ms_p50']:.2f} ms): "
                "within run-to-run spread")
    return text + f" — bound by {BUCKET_MEANINGS[bucket]} (+{excess[bucket]:.2f} ms)"


def total_bound(mode: str, stat: str, results: dict) -> str:
    reference, aiortc = results[mode][REFERENCE], results[mode][AIORTC]
    excess = {phase: reference["ms"][phase][stat] - aiortc["ms"][phase][stat] for phase in PHASES[:-1]}
    phase = max(excess, key=excess.get)
    return (f"the largest share is {phase} (+{excess[phase]:.2f} ms at {stat}); "
            + load_context(reference, aiortc) + shared_cpu(reference, aiortc, excess[phase]))


# -- report ----------------------------------------------------------------------------------


def three_stats(figures: dict[str, float]) -> str:
    return " / ".join(f"{figures[stat]:.1f}" for stat in ("p50", "p90", "p99"))


def print_report(machine: dict, settings: dict, results: dict, ratio_table: dict, traces: dict,
                 bound_lines: list[str]) -> None:
    print(f"{machine_line(machine, 'aiortc', 'aioice')}, load average {machine['load_average_before']}")
    if machine["others_cpu_share"] >= BUSY_MACHINE:
        print(f"warning: other processes used {machine['others_cpu_share']:.0%} of a CPU during the run; "
              "figures are less trustworthy: run again on a quieter machine")
    print(pinning_line(machine["pinned_cpus"]))
    print(f"settings: sequential {settings['sequential_sessions']} sessions, burst {settings['burst_sessions']} "
          f"at once, {settings['rounds']} round(s) alternating the servers, {settings['traced_sessions']} "
          "traced sessions per server one after another and one traced burst, loopback")
    for mode in MODES:
        print()
        print(f"{mode}: setup time per phase, ms (p50 / p90 / p99)")
        print(f"{'server':<10} {'ok':>4} {'fail':>4} " + " ".join(f"{phase:>20}" for phase in PHASES)
              + f" {'srv CPU/sess':>12}")
        for server in (REFERENCE, AIORTC):
            result = results[mode][server]
            cells = (" ".join(f"{three_stats(result['ms'][phase]):>20}" for phase in PHASES)
                     if result["ms"] else "no session connected")
            cpu = result["server_cpu_ms_per_session"]
            print(f"{server:<10} {result['sessions']:>4} {result['failed']:>4} {cells} "
                  f"{'' if cpu is None else f'{cpu:.1f} ms':>12}")
        table = ratio_table[mode]
        if table is not None:
            verdict = "met" if max(table["total_p50"], table["total_p99"]) <= 1.0 else "NOT met"
            print(f"reference/aiortc total: p50 {table['total_p50']:.2f}, p99 {table['total_p99']:.2f} "
                  f"(goal ≤ 1.0: {verdict}); per phase p50: "
                  + ", ".join(f"{phase} {value:.2f}" for phase, value in table["phase_p50"].items()
                              if value is not None and phase != "total"))
        for server in (REFERENCE, AIORTC):
            for reason, count in results[mode][server]["failure_reasons"].items():
                print(f"failure ({server}, {mode}) ×{count}: {reason}")
    print()
    print("traced sessions, p50 ms per phase: waiting for the server / client work / client timers; round trips")
    for mode, server, summary in ((mode, server, summary) for mode, by_server in traces.items()
                                  for server, summary in by_server.items()):
        for reason, count in summary["failures"].items():
            print(f"traced failure ({server}, {mode}) ×{count}: {reason}")
        if not summary["sessions"]:
            continue
        print(f"{mode:<10} {server:<9} " + "; ".join(
            f"{phase} {summary[phase]['ms_p50']['server']:.2f} / {summary[phase]['ms_p50']['client']:.2f} / "
            f"{summary[phase]['ms_p50']['timer']:.2f}, {summary[phase]['round_trips_p50']} RT"
            for phase in TRACED_PHASES)
            + f"; first echo was packet {summary['first_srtp']['echoed_packet_numbers']}")
        if mode == "sequential":
            print(f"{'':<20} ice+dtls on the wire: "
                  f"{' → '.join(summary['ice']['wire_example'] + summary['dtls']['wire_example'])}")
    print()
    for line in bound_lines or ["the reference is no slower than aiortc in any phase at p50, "
                                "nor in total at p50 or p99"]:
        print(f"bound: {line}")


# -- main ------------------------------------------------------------------------------------


async def client(targets: dict[str, Target], args: argparse.Namespace) -> tuple[dict, dict, list[dict]]:
    """Warm-up, then the rounds (servers alternating), then the traced sessions: --trace one
    after another and one burst of --burst, per server."""
    warmup = []
    for target in targets.values():
        session, failure = await open_timed(target.whip_url, 0)
        if session is None:
            raise BenchError(f"warm-up session to {target.name} at {target.whip_url} failed: {failure}\n"
                             f"{target.child.name} log ends:\n{target.child.log_tail()}")
        warmup.append({"server": target.name, "ms": {phase: round(value * 1e3, 3)
                                                     for phase, value in session.setup.as_dict().items()}})
        await session.close()
    runs: dict[str, dict[str, list[ModeRun]]] = {mode: {name: [] for name in targets} for mode in MODES}
    order = [targets[REFERENCE], targets[AIORTC]]
    counts = {"sequential": args.sessions, "burst": args.burst}
    for round_number in range(1, args.rounds + 1):
        for mode in MODES:
            for target in order:
                runs[mode][target.name].append(await run_mode(target, mode, counts[mode], round_number))
        order.reverse()
    outcomes: dict[str, dict[str, list]] = {mode: {name: [] for name in targets} for mode in MODES}
    if args.trace:
        for _ in range(args.trace):
            for target in order:
                outcomes["sequential"][target.name].append(await traced_session(target.whip_url, bare_http=True))
        for target in order:
            outcomes["burst"][target.name] = await asyncio.gather(
                *(traced_session(target.whip_url) for _ in range(args.burst)))
    results = {mode: {name: aggregate(mode_runs) for name, mode_runs in by_server.items()}
               for mode, by_server in runs.items()}
    traces = {mode: {name: traces_of(found) for name, found in by_server.items()}
              for mode, by_server in outcomes.items()}
    return results, traces, warmup


def traces_of(outcomes: list[tuple[dict, str | None]]) -> dict:
    analyses = [analysis for analysis, failure in outcomes if failure is None]
    failures = dict(Counter(failure for _, failure in outcomes if failure is not None))
    return (trace_summary(analyses) if analyses else {}) | {"sessions": len(analyses), "failures": failures}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    parser.add_argument("--sessions", type=whole, default=30,
                        help="sessions one after another per server and round")
    parser.add_argument("--burst", type=whole, default=20,
                        help="sessions opened at once per server and round")
    parser.add_argument("--rounds", type=whole, default=2,
                        help="repeat both modes on both servers, alternating which goes first")
    parser.add_argument("--trace", type=non_negative_whole, default=5,
                        help="traced sessions per server, to say what bounds a slower phase")
    return parser


def main() -> int:
    args = build_parser().parse_args()

    pinned = pin_client()
    machine = machine_facts(pinned) | {
        "aiortc": importlib.metadata.version("aiortc"), "aioice": importlib.metadata.version("aioice"),
        "pyopenssl": importlib.metadata.version("pyOpenSSL"), "client_loop": "asyncio",
        "load_average_before": load_average(),
    }
    with Children() as children:
        targets = {REFERENCE: start_reference(children, server_cpu(pinned)),
                   AIORTC: start_aiortc(children, server_cpu(pinned))}
        ours_from = cpu_seconds_self() + children.cpu_seconds()
        busy_from, wall_from = machine_busy_seconds(), time.perf_counter()
        results, traces, warmup = asyncio.run(client(targets, args))
        wall = time.perf_counter() - wall_from
        ours = cpu_seconds_self() + children.cpu_seconds() - ours_from
        machine["others_cpu_share"] = round(max(0.0, (machine_busy_seconds() - busy_from - ours) / wall), 3)
        machine["bench_wall_s"] = round(wall, 2)

    machine["load_average_after"] = load_average()
    settings = {"sequential_sessions": args.sessions, "burst_sessions": args.burst, "rounds": args.rounds,
                "traced_sessions": args.trace, "connect_timeout_s": CONNECT_TIMEOUT,
                "rtp_interval_s": RTP_INTERVAL, "media": "probe"}
    ratio_table = ratios(results)
    bound_lines = bounds(results, ratio_table, traces)
    print_report(machine, settings, results, ratio_table, traces, bound_lines)
    write_results(args.json, {
        "machine": machine, "settings": settings, "goal": "reference/aiortc total p50 and p99 ≤ 1.0",
        "results": results, "ratios": ratio_table, "bounds": bound_lines, "traces": traces,
        "warmup": warmup,
    })
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("setup_time", main))
