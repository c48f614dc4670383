#!/usr/bin/env python3
"""Round trips per second of SRTP echo through the reference server, against raw uvloop UDP echo.

Both servers run as child processes on loopback: `rtcgate serve --media echo` (the reference
server, on uvloop) and a minimal uvloop DatagramProtocol that sends every datagram straight back (this
file with --raw-echo-server). The client is this process, on uvloop: a fixed window of
packets in flight, each echo answered by the next packet on the same socket, for a fixed
time after a warm-up. Raw datagrams are as long as the SRTP ones on the wire (12-byte RTP
header, 160-byte Opus-sized payload, 16-byte AEAD tag). The SRTP client connects with the
toolkit's probe peer (WHIP, ICE, DTLS), then protects and unprotects with pylibsrtp on a
lean path of its own; STUN and RTCP still go to the peer, which keeps consent alive.

Every payload carries a packet number: each echo is decrypted and compared byte for byte,
and gives one RTT sample. On a machine with two or more CPUs the client is pinned to one
and the servers to another, so both runs split the cores the same way.

Prints a table (and writes it as JSON to reports/bench/srtp_echo.json): round trips/s, the
SRTP/raw ratio, RTT p50/p99, losses, mismatches, CPU use of each side, and the server's
/metrics drop counters as a sanity check.

Usage: python bench/srtp_echo.py [--duration 5] [--warmup 1] [--window 32] [--sessions 1 10]
                                [--rounds 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from time import perf_counter_ns

import pylibsrtp
import uvloop
from prometheus_client.parser import text_string_to_metric_families

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.commands.arguments import ArgumentParser, non_negative_number, positive_number, whole  # noqa: E402
from toolkit.peer import PeerConnection, PeerError, connect_whip  # noqa: E402
from toolkit.peer.srtp import SRTP_PROFILES  # noqa: E402
from toolkit.percentiles import nearest_rank  # noqa: E402

PAYLOAD_BYTES = 160
"""One 20 ms Opus frame at about 64 kbit/s."""
FILLER = bytes(range(PAYLOAD_BYTES - 8))
"""What follows the 8-byte packet number in every payload."""
RAW_DATAGRAM_PAD = bytes(16)
"""Makes a raw datagram as long as an SRTP one with a 16-byte AEAD-AES-GCM tag."""
RTP_HEADER = struct.Struct("!BBHII")
PAYLOAD_TYPE = 111
LOSS_TIMEOUT = 1.0
"""A packet not echoed within this many seconds is lost; a new one takes its place."""
REAP_INTERVAL = 0.05
SOCKET_BUFFER = 4 << 20
"""The reference server's receive and send buffer sizes; the raw echo server uses the same."""
CLIENT_BOUND = 0.95
"""Client CPU share from which a figure says more about the client than the server."""
BUSY_MACHINE = 0.25
"""CPU share of other processes from which a run's figures are not to be trusted."""
START_TIMEOUT = 20.0
CONNECT_TIMEOUT = 10.0
READY_LINE = re.compile(rb"listening udp=(?P<host>[^\s:]+):(?P<port>\d+)(?: http=(?P<http>\S+))?")


class BenchError(Exception):
    """The benchmark cannot run: a server did not start or a session did not connect."""


# -- child processes -------------------------------------------------------------------------


@dataclass
class Child:
    """A server process this benchmark started; its output goes to a log file."""

    name: str
    process: subprocess.Popen
    log: pathlib.Path
    udp_port: int = 0
    http_url: str | None = None

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (Linux /proc)."""
        fields = pathlib.Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM our own child by PID, SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_child(name: str, command: list[str], log_dir: pathlib.Path, cpu: int | None,
                children: list[Child]) -> Child:
    """Run `command` pinned to `cpu`, add it to `children` (to be stopped), wait until it
    prints its `listening udp=HOST:PORT` line."""
    log = log_dir / f"{name.replace(' ', '_')}.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    child = Child(name, process, log)
    children.append(child)
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = READY_LINE.search(log.read_bytes())
        if match:
            child.udp_port = int(match["port"])
            child.http_url = match["http"].decode() if match["http"] else None
            return child
        if process.poll() is not None:
            raise BenchError(f"{name} exited with status {process.returncode} before listening:\n"
                             f"{child.log_tail()}")
        time.sleep(0.02)
    raise BenchError(f"{name} printed no 'listening udp=' line within {START_TIMEOUT:g} s:\n{child.log_tail()}")


def fetch_metrics(http_url: str) -> dict[str, Counter]:
    """The server's packet and drop counters from /metrics, by label value."""
    try:
        with urllib.request.urlopen(f"{http_url}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError as exc:
        raise BenchError(f"cannot read {http_url}/metrics: {exc}") from None
    families = {"rtcgate_drops_total": "drops", "rtcgate_packets_received_total": "received",
                "rtcgate_packets_sent_total": "sent"}
    counters: dict[str, Counter] = {name: Counter() for name in families.values()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in families and len(sample.labels) == 1:
                counters[families[sample.name]][next(iter(sample.labels.values()))] = int(sample.value)
    return counters


# -- raw echo server -------------------------------------------------------------------------


class RawEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(data, addr)


async def raw_echo_server(host: str) -> None:
    """Echo every datagram on a fresh port until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.bind((host, 0))
    sock.setblocking(False)
    transport, _ = await loop.create_datagram_endpoint(RawEcho, sock=sock)
    print(f"raw uvloop echo listening udp={host}:{sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    transport.close()


# -- client ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed run: the window of packets in flight and what came back."""

    name: str
    window: int
    warmup: float
    duration: float
    server: Child
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
    follow the number (`trailer`). The hot path is kept lean: the client shares the
    machine with the server and should cost it as little as it can.
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


class RawFlow(Flow):
    """Plain datagrams shaped like SRTP ones: a fixed RTP header, the payload, a blank tag."""

    header = RTP_HEADER.pack(0x80, PAYLOAD_TYPE, 0, 0, 0)
    trailer = FILLER + RAW_DATAGRAM_PAD

    def seal(self, number: bytes) -> bytes:
        return self.header + number + self.trailer

    def open(self, datagram: bytes, addr) -> bytes | None:
        if datagram[: RTP_HEADER.size] != self.header:
            self.run.mismatches += 1
            return None
        return datagram[RTP_HEADER.size :]


class SrtpFlow(Flow):
    """Own pylibsrtp sessions from the peer's keys; STUN, DTLS and RTCP go to the peer."""

    def __init__(self, run: Run, connection: PeerConnection) -> None:
        super().__init__(run, connection.peer.remote)
        self.connection = connection
        keys = connection.peer.srtp_keys
        profile = SRTP_PROFILES[keys.profile].libsrtp_id
        self._tx = pylibsrtp.Session(pylibsrtp.Policy(
            key=keys.local, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        self._rx = pylibsrtp.Session(pylibsrtp.Policy(
            key=keys.remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
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


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent on anything but idling and waiting for I/O (Linux /proc/stat)."""
    ticks = [int(value) for value in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    wall: float
    client: float
    server: float
    machine: float

    @classmethod
    def take(cls, server: Child) -> CpuSnapshot:
        return cls(perf_counter_ns() / 1e9, cpu_seconds_self(), server.cpu_seconds(), machine_busy_seconds())

    def share_since(self, start: CpuSnapshot) -> dict[str, float]:
        """CPU used per second of wall time by the client, the server and everything else."""
        wall = self.wall - start.wall
        client = (self.client - start.client) / wall
        server = (self.server - start.server) / wall
        others = max(0.0, (self.machine - start.machine) / wall - client - server)
        return {"client": client, "server": server, "others": others}


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


def percentile(values_ns: list[int], fraction: float) -> float | None:
    """Nearest rank (toolkit.percentiles), nanoseconds in, milliseconds out; None for no values."""
    return nearest_rank(values_ns, fraction)[0] / 1e6 if values_ns else None


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


async def raw_run(server: Child, args: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    run = Run("raw uvloop UDP echo", args.window, args.warmup, args.duration, server)
    transport, flow = await loop.create_datagram_endpoint(
        lambda: RawFlow(run, ("127.0.0.1", server.udp_port)), local_addr=("127.0.0.1", 0))
    run.flows.append(flow)
    try:
        cpu = await drive(run)
    finally:
        transport.close()
    return summary(run, cpu, {"kind": "raw", "sessions": 1})


async def srtp_run(server: Child, sessions: int, args: argparse.Namespace) -> dict:
    run = Run(f"SRTP echo, {sessions} session{'s' * (sessions != 1)}", args.window, args.warmup,
              args.duration, server)
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
        before = fetch_metrics(server.http_url)
        cpu = await drive(run)
        after = fetch_metrics(server.http_url)
    finally:
        for connection in connections:
            try:
                await connection.close()
            except PeerError:
                pass
    drops = {reason: count - before["drops"][reason]
             for reason, count in after["drops"].items() if count != before["drops"][reason]}
    return summary(run, cpu, {"kind": "srtp", "sessions": sessions,
                              "srtp_profile": connections[0].peer.srtp_keys.profile, "server_drops": drops})


async def client(raw_server: Child, reference: Child, args: argparse.Namespace) -> list[dict]:
    """Every run once per round, interleaved so that load from elsewhere hits them alike;
    each row keeps its fastest round."""
    rounds: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        result = await raw_run(raw_server, args)
        rounds.setdefault(result["name"], []).append(result)
        for sessions in args.sessions:
            result = await srtp_run(reference, sessions, args)
            rounds.setdefault(result["name"], []).append(result)
    rows = []
    for results in rounds.values():
        best = max(results, key=lambda result: result["round_trips_per_s"])
        best["round_trips_per_s_each_round"] = [result["round_trips_per_s"] for result in results]
        rows.append(best)
    return rows


# -- report ----------------------------------------------------------------------------------


def machine_facts(pinned: tuple[int, int] | None) -> dict:
    model = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "uvloop": uvloop.__version__,
        "pylibsrtp": importlib.metadata.version("pylibsrtp"),
        "kernel": f"{platform.system()} {platform.release()}",
        "pinned_cpus": None if pinned is None else {"client": pinned[0], "servers": pinned[1]},
    }


def print_report(machine: dict, settings: dict, results: list[dict], totals: dict[str, Counter]) -> None:
    pinned = machine["pinned_cpus"]
    print(f"machine: {machine['cpu_count']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
          f"uvloop {machine['uvloop']}, pylibsrtp {machine['pylibsrtp']}, {machine['kernel']}")
    print("cores: " + (f"client on CPU {pinned['client']}, servers on CPU {pinned['servers']}" if pinned
                       else "not pinned (fewer than 2 CPUs available)"))
    print(f"settings: {settings['window']} packets in flight, {settings['payload_bytes']}-byte payloads, "
          f"{settings['duration_s']:g} s measured after {settings['warmup_s']:g} s warm-up, "
          f"best of {settings['rounds']} round(s), loopback")
    print()
    print(f"{'run':<24} {'round trips/s':>13} {'vs raw':>7} {'RTT p50':>9} {'RTT p99':>9} "
          f"{'lost':>5} {'bad':>5} {'server CPU':>10} {'client CPU':>10} {'others':>6}")
    for result in results:
        p50, p99 = (f"{value:6.3f} ms" if value is not None else "no echo" for value in result["rtt_ms"].values())
        print(f"{result['name']:<24} {result['round_trips_per_s']:>13,} {result['ratio_to_raw']:>7.2f} "
              f"{p50:>9} {p99:>9} "
              f"{result['lost']:>5} {result['mismatches']:>5} "
              f"{result['cpu_share']['server']:>10.0%} {result['cpu_share']['client']:>10.0%} "
              f"{result['cpu_share']['others']:>6.0%}")
    for result in results:
        if result["cpu_share"]["client"] >= CLIENT_BOUND:
            print(f"note: {result['name']}: the client used {result['cpu_share']['client']:.0%} of its CPU, "
                  "so this figure is the client's ceiling; the server could echo more")
        if result["cpu_share"]["others"] >= BUSY_MACHINE:
            print(f"warning: {result['name']}: other processes used {result['cpu_share']['others']:.0%} "
                  "of a CPU meanwhile; run again on a quiet machine or with --rounds")
    srtp = [result for result in results if result["kind"] == "srtp"]
    if srtp:
        print(f"SRTP profile negotiated: {srtp[0]['srtp_profile']}")
    drops = ", ".join(f"{reason} {count}" for reason, count in sorted(totals["drops"].items())) or "none"
    print("CPU columns: share of one CPU during the measured interval; 'others' is everything else "
          "on the machine (other load makes figures unreliable)")
    print(f"server /metrics after all runs: drops {drops}; "
          f"srtp received {totals['received']['rtp']:,}, sent {totals['sent']['srtp']:,}")


# -- main ------------------------------------------------------------------------------------


def cpu_split() -> tuple[int, int] | None:
    """(client CPU, server CPU), or None when there is only one CPU to run on."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=positive_number, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=non_negative_number, default=1.0, help="seconds before measuring starts")
    parser.add_argument("--window", type=whole, default=32, help="packets in flight per run")
    parser.add_argument("--sessions", type=whole, nargs="+", default=[1, 10],
                        help="SRTP sessions sharing the window, one run per value")
    parser.add_argument("--rounds", type=whole, default=1,
                        help="repeat all runs this many times, interleaved; each row keeps its best")
    parser.add_argument("--json", type=pathlib.Path, default=ROOT / "reports" / "bench" / "srtp_echo.json",
                        help="where to write the figures")
    parser.add_argument("--raw-echo-server", action="store_true", help=argparse.SUPPRESS)
    return parser


def main() -> int:
    args = build_parser().parse_args()
    if args.raw_echo_server:
        uvloop.run(raw_echo_server("127.0.0.1"))
        return 0

    pinned = cpu_split()
    if pinned is not None:
        os.sched_setaffinity(0, {pinned[0]})
    server_cpu = None if pinned is None else pinned[1]
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="rtcgate-bench-") as log_dir:
        try:
            raw_server = start_child("raw echo server", [sys.executable, __file__, "--raw-echo-server"],
                                     pathlib.Path(log_dir), server_cpu, children)
            reference = start_child(
                "reference server",
                [sys.executable, "-m", "toolkit.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                 "--http-port", "0", "--media", "echo"],
                pathlib.Path(log_dir), server_cpu, children)
            results = uvloop.run(client(raw_server, reference, args))
            totals = fetch_metrics(reference.http_url)
        except BenchError as exc:
            print(f"srtp_echo: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("srtp_echo: interrupted", file=sys.stderr)
            return 130
        finally:
            for child in children:
                child.stop()

    raw_rate = results[0]["round_trips_per_s"]
    for result in results:
        result["ratio_to_raw"] = round(result["round_trips_per_s"] / raw_rate, 3) if raw_rate else 0.0
    machine = machine_facts(pinned)
    settings = {"window": args.window, "payload_bytes": PAYLOAD_BYTES, "duration_s": args.duration,
                "warmup_s": args.warmup, "rounds": args.rounds, "loss_timeout_s": LOSS_TIMEOUT}
    print_report(machine, settings, results, totals)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": machine, "settings": settings, "runs": results,
        "server_metrics_after_all_runs": {name: dict(counter) for name, counter in totals.items()},
    }, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
