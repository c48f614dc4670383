"""Round trips per second of SRTP echo through the reference server, against raw uvloop UDP echo.

Both servers run as child processes on loopback: `rtcgate serve --media echo` (the reference
server, on uvloop) and a minimal uvloop DatagramProtocol that sends every datagram straight back
(this module with --raw-echo-server). The client is this process, on uvloop (bench/echo_client.py):
a fixed window of packets in flight, each echo answered by the next packet on the same socket, for
a fixed time after a warm-up. Raw datagrams are as long as the SRTP ones on the wire (12-byte RTP
header, 160-byte Opus-sized payload, 16-byte AEAD tag). The SRTP client connects with the
toolkit's probe peer (WHIP, ICE, DTLS), then protects and unprotects with pylibsrtp on a
lean path of its own; STUN and RTCP still go to the peer, which keeps consent alive.

Every payload carries a packet number: each echo is decrypted and compared byte for byte,
and gives one RTT sample. On a machine with two or more CPUs the client is pinned to one
and the servers to another, so both runs split the cores the same way.

Prints a table (and writes it as JSON to reports/bench/srtp_echo.json): round trips/s, the
SRTP/raw ratio, RTT p50/p99, losses, mismatches, CPU use of each side, and the server's
/metrics drop counters as a sanity check.

Usage: python -m bench.srtp_echo [--duration 5] [--warmup 1] [--window 32] [--sessions 1 10]
                                 [--rounds 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections import Counter

import uvloop

from bench.common import (
    BUSY_MACHINE,
    CLIENT_BOUND,
    Child,
    Children,
    benchmark_parser,
    drop_counts,
    machine_facts,
    machine_line,
    metric_samples,
    pin_client,
    pinning_line,
    run_benchmark,
    serve_command,
    server_cpu,
    write_results,
)
from bench.echo_client import (
    FILLER,
    LOSS_TIMEOUT,
    PAYLOAD_BYTES,
    PAYLOAD_TYPE,
    RTP_HEADER,
    Flow,
    Run,
    add_run_options,
    best_of_rounds,
    drive,
    rtt_cells,
    srtp_run,
    summary,
)
from toolkit.commands.arguments import whole

RAW_DATAGRAM_PAD = bytes(16)
"""Makes a raw datagram as long as an SRTP one with a 16-byte AEAD-AES-GCM tag."""
SOCKET_BUFFER = 4 << 20
"""The reference server's receive and send buffer sizes; the raw echo server uses the same."""


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
    return best_of_rounds(rounds)


def server_totals(http_url: str) -> dict[str, Counter]:
    """The server's drops by reason, and its packets received and sent by kind."""
    samples = metric_samples(http_url)
    totals = {"drops": drop_counts(samples), "received": Counter(), "sent": Counter()}
    families = {"rtcgate_packets_received_total": "received", "rtcgate_packets_sent_total": "sent"}
    for sample in samples:
        if sample.name in families and len(sample.labels) == 1:
            totals[families[sample.name]][next(iter(sample.labels.values()))] = int(sample.value)
    return totals


# -- report ----------------------------------------------------------------------------------


def print_report(machine: dict, settings: dict, results: list[dict], totals: dict[str, Counter]) -> None:
    print(machine_line(machine, "uvloop", "pylibsrtp"))
    print(pinning_line(machine["pinned_cpus"]))
    print(f"settings: {settings['window']} packets in flight, {settings['payload_bytes']}-byte payloads, "
          f"{settings['duration_s']:g} s measured after {settings['warmup_s']:g} s warm-up, "
          f"best of {settings['rounds']} round(s), loopback")
    print()
    print(f"{'run':<24} {'round trips/s':>13} {'vs raw':>7} {'RTT p50':>9} {'RTT p99':>9} "
          f"{'lost':>5} {'bad':>5} {'server CPU':>10} {'client CPU':>10} {'others':>6}")
    for result in results:
        p50, p99 = rtt_cells(result)
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


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    add_run_options(parser)
    parser.add_argument("--sessions", type=whole, nargs="+", default=[1, 10],
                        help="SRTP sessions sharing the window, one run per value")
    parser.add_argument("--rounds", type=whole, default=1,
                        help="repeat all runs this many times, interleaved; each row keeps its best")
    parser.add_argument("--raw-echo-server", action="store_true", help=argparse.SUPPRESS)
    return parser


def main() -> int:
    args = build_parser().parse_args()
    if args.raw_echo_server:
        uvloop.run(raw_echo_server("127.0.0.1"))
        return 0

    pinned = pin_client()
    with Children() as children:
        raw_echo = [sys.executable, "-m", "bench.srtp_echo", "--raw-echo-server"]
        raw_server = children.start("raw echo server", raw_echo, server_cpu(pinned))
        reference = children.start("reference server", serve_command("echo"), server_cpu(pinned))
        results = uvloop.run(client(raw_server, reference, args))
        totals = server_totals(reference.http_url)

    raw_rate = results[0]["round_trips_per_s"]
    for result in results:
        result["ratio_to_raw"] = round(result["round_trips_per_s"] / raw_rate, 3) if raw_rate else 0.0
    machine = machine_facts(pinned)
    settings = {"window": args.window, "payload_bytes": PAYLOAD_BYTES, "duration_s": args.duration,
                "warmup_s": args.warmup, "rounds": args.rounds, "loss_timeout_s": LOSS_TIMEOUT}
    print_report(machine, settings, results, totals)
    write_results(args.json, {
        "machine": machine, "settings": settings, "runs": results,
        "server_metrics_after_all_runs": {name: dict(counter) for name, counter in totals.items()},
    })
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("srtp_echo", main))
