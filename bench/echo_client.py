"""The echo client of the throughput benchmarks (srtp_echo, relay_scaling, attack_latency): a fixed
window of packets in flight, each echo checked and answered by the next packet on its socket.

A `Run` is timed after a warm-up; every payload carries a packet number, so each echo is checked
byte for byte against the packet it answers and gives one RTT sample. A packet not echoed within
LOSS_TIMEOUT is lost and replaced. `Flow` subclasses say how a number goes on the wire: here SRTP
through probe-peer sessions (`SrtpFlow`, `srtp_run`), in srtp_echo also plain datagrams. The hot
path is kept lean: the client shares the machine with the server and should cost it as little as
it can.
"""
from __future__ import annotations

import argparse
import asyncio
import struct
from dataclasses import dataclass, field
from time import perf_counter_ns

import pylibsrtp

from bench.common import BenchError, CpuSnapshot, drop_counts, metric_samples, percentile
from toolkit.commands.arguments import non_negative_number, positive_number, whole
from toolkit.peer import PeerConnection, PeerError, connect_whip

PAYLOAD_BYTES = 160
"""One 20 ms Opus frame at about 64 kbit/s."""
FILLER = bytes(range(PAYLOAD_BYTES - 8))
"""What follows the 8-byte packet number in every payload."""
RTP_HEADER = struct.Struct("!BBHII")
PAYLOAD_TYPE = 111
LOSS_TIMEOUT = 1.0
"""A packet not echoed within this many seconds is lost; a new one takes its place."""
REAP_INTERVAL = 0.05
CONNECT_TIMEOUT = 10.0


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """--duration, --warmup and --window: how each timed run goes (`srtp_run`'s `settings`)."""
    parser.add_argument("--duration", type=positive_number, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=non_negative_number, default=1.0, help="seconds before measuring starts")
    parser.add_argument("--window", type=whole, default=32, help="packets in flight per run")


@dataclass
class Run:
    """One timed run: the window of packets in flight and what came back."""

    name: str
    window: int
    warmup: float
    duration: float
    server: object
    """The Child (or group of them) echoing: `name`, `log_tail()` and `cpu_seconds()`."""
    flows: list[Flow] = field(default_factory=list)
    in_flight: dict[int, tuple[int, Flow]] = field(default_factory=dict)
    """packet number → (send time in ns, flow it went out on)"""
    next_number: int = 0
    """Packets sent so far; the next one carries this number."""
    measure_from: int = 0
    stop_at: int = 0
    echoed: int = 0
    rtts: list[int] = field(default_factory=list)
    """RTT in ns of every echo that arrived inside the measured interval."""
    lost: int = 0
    mismatches: int = 0
    """Echoes that failed to decrypt, had a wrong length or payload, or answered no packet."""
    to_peer: int = 0
    """STUN, DTLS and RTCP datagrams handed to the probe peer."""
    socket_errors: int = 0

    def reap(self, now: int) -> None:
        """Count packets older than LOSS_TIMEOUT as lost and, while sending, replace them."""
        oldest = now - int(LOSS_TIMEOUT * 1e9)
        for number, (sent_at, flow) in list(self.in_flight.items()):
            if sent_at < oldest:
                del self.in_flight[number]
                self.lost += 1
                if now < self.stop_at:
                    flow.send()


class Flow(asyncio.DatagramProtocol):
    """One client socket: checks each echo against the packet it answers, sends the next.

    Subclasses say how a packet number goes on the wire (`seal`), how the bytes from the
    number on come back off it (`open`, None for a datagram that is no echo), and what must
    follow the number (`trailer`).
    """

    trailer = FILLER

    def __init__(self, run: Run, remote: tuple[str, int]) -> None:
        self.run = run
        self.remote = remote
        self.in_flight = run.in_flight
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self) -> None:
        run = self.run
        number = run.next_number
        run.next_number = number + 1
        datagram = self.seal(number.to_bytes(8, "big"))
        self.in_flight[number] = (perf_counter_ns(), self)
        self.transport.sendto(datagram, self.remote)

    def datagram_received(self, data: bytes, addr) -> None:
        now = perf_counter_ns()
        body = self.open(data, addr)
        if body is None:
            return
        run = self.run
        entry = self.in_flight.pop(int.from_bytes(body[:8], "big"), None)
        if entry is None or entry[1] is not self or body[8:] != self.trailer:
            run.mismatches += 1
            return
        if now < run.stop_at:
            if now >= run.measure_from:
                run.echoed += 1
                run.rtts.append(now - entry[0])
            self.send()

    def error_received(self, exc: OSError) -> None:
        self.run.socket_errors += 1


class SrtpFlow(Flow):
    """Own pylibsrtp sessions from the peer's keys; STUN, DTLS and RTCP go to the peer."""

    def __init__(self, run: Run, connection: PeerConnection) -> None:
        super().__init__(run, connection.peer.remote)
        self.connection = connection
        self._tx = connection.peer.srtp_keys.outbound()
        self._rx = connection.peer.srtp_keys.inbound()
        self._ssrc = connection.peer.ssrc
        self._sequence = 0
        self._timestamp = 0
        self.transport = connection.transport
        self.transport.set_protocol(self)

    def seal(self, number: bytes) -> bytes:
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + 960) & 0xFFFFFFFF
        header = RTP_HEADER.pack(0x80, PAYLOAD_TYPE, self._sequence, self._timestamp, self._ssrc)
        return self._tx.protect(header + number + FILLER)

    def open(self, datagram: bytes, addr) -> bytes | None:
        if len(datagram) < 2 or not 127 < datagram[0] < 192 or 191 < datagram[1] < 224:
            connection = self.connection
            connection.peer.receive_datagram(datagram, addr[:2], connection.loop.time())
            connection.flush()
            self.run.to_peer += 1
            return None
        try:
            plain = self._rx.unprotect(datagram)
        except pylibsrtp.Error:
            self.run.mismatches += 1
            return None
        return plain[RTP_HEADER.size :]  # we send no CSRCs or extensions; the echo adds none


async def drive(run: Run) -> dict[str, float]:
    """Fill the window round-robin over the flows, let echoes clock the sending, drain.

    Returns CPU use over the measured interval, as shares of one CPU.
    """
    start = perf_counter_ns()
    run.measure_from = start + int(run.warmup * 1e9)
    run.stop_at = run.measure_from + int(run.duration * 1e9)
    drain_until = run.stop_at + int(LOSS_TIMEOUT * 1e9)
    for index in range(run.window):
        run.flows[index % len(run.flows)].send()
    cpu_from: CpuSnapshot | None = None
    while True:
        await asyncio.sleep(REAP_INTERVAL)
        now = perf_counter_ns()
        if cpu_from is None and now >= run.measure_from:
            cpu_from = CpuSnapshot.take(run.server)
        elif cpu_from is not None and now >= run.stop_at:
            cpu_share = CpuSnapshot.take(run.server).share_since(cpu_from)
            break
        run.reap(now)
    while run.in_flight and now < drain_until:
        await asyncio.sleep(REAP_INTERVAL)
        now = perf_counter_ns()
    run.lost += len(run.in_flight)
    run.in_flight.clear()
    if not run.echoed:
        raise BenchError(f"{run.name}: no echo came back in {run.warmup + run.duration:g} s "
                         f"({run.next_number} sent, {run.lost} lost, {run.mismatches} mismatched); "
                         f"{run.server.name} log ends:\n{run.server.log_tail()}")
    return cpu_share


def summary(run: Run, cpu: dict[str, float], extra: dict) -> dict:
    rtts = sorted(run.rtts)
    return {
        "name": run.name,
        **extra,
        "round_trips_per_s": round(run.echoed / run.duration),
        "rtt_ms": {"p50": percentile(rtts, 0.50), "p99": percentile(rtts, 0.99)},
        "sent": run.next_number,
        "lost": run.lost,
        "mismatches": run.mismatches,
        "to_peer": run.to_peer,
        "socket_errors": run.socket_errors,
        "cpu_share": {side: round(value, 3) for side, value in cpu.items()},
    }


async def srtp_run(server, sessions: int, settings: argparse.Namespace) -> dict:
    """`sessions` probe-peer sessions to `server`'s WHIP endpoint sharing `settings.window`
    packets in flight, timed as `settings` says; with the server's drops during the run."""
    run = Run(f"SRTP echo, {sessions} session{'s' * (sessions != 1)}", settings.window, settings.warmup,
              settings.duration, server)
    whip_url = f"{server.http_url}/whip"
    attempts = [asyncio.ensure_future(connect_whip(whip_url, timeout=CONNECT_TIMEOUT)) for _ in range(sessions)]
    await asyncio.gather(*attempts, return_exceptions=True)
    connections = [attempt.result() for attempt in attempts if attempt.exception() is None]
    try:
        failures = [attempt.exception() for attempt in attempts if attempt.exception() is not None]
        if failures:
            raise BenchError(f"{len(failures)} of {sessions} SRTP sessions did not connect to {whip_url}: "
                             f"{failures[0]}")
        run.flows.extend(SrtpFlow(run, connection) for connection in connections)
        before = drop_counts(metric_samples(server.http_url))
        cpu = await drive(run)
        after = drop_counts(metric_samples(server.http_url))
    finally:
        for connection in connections:
            try:
                await connection.close()
            except PeerError:
                pass
    drops = {reason: count - before[reason] for reason, count in after.items() if count != before[reason]}
    return summary(run, cpu, {"kind": "srtp", "sessions": sessions,
                              "srtp_profile": connections[0].peer.srtp_keys.profile, "server_drops": drops})


def best_of_rounds(rounds: dict[str, list[dict]]) -> list[dict]:
    """Per row, the round with the most round trips/s, noting every round's figure."""
    rows = []
    for results in rounds.values():
        best = max(results, key=lambda result: result["round_trips_per_s"])
        best["round_trips_per_s_each_round"] = [result["round_trips_per_s"] for result in results]
        rows.append(best)
    return rows


def rtt_cells(row: dict) -> tuple[str, str]:
    """A row's RTT p50 and p99 as table cells."""
    p50, p99 = (f"{value:6.3f} ms" if value is not None else "no echo" for value in row["rtt_ms"].values())
    return p50, p99
