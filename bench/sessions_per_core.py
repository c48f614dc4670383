"""Sessions per core on one port: how many legit sessions the reference server carries on one
CPU with legit p99 RTT under 10 ms and no loss — echo only, and with the voice loop.

For each level of sessions, a fresh `rtcgate serve` (pinned to one CPU; the client to the other)
gets N sessions from `rtcgate load`'s machinery (toolkit/load: WHIP, ICE, DTLS, then 50 pps of
20 ms packets each), measured for --duration seconds:
- echo: timestamped 160-byte payloads the server sends back; RTT, loss and reordering per packet;
- voice: the speech sample, looped with silence, into the voice loop (VAD, ToneModel, Opus);
  RTT from RTCP (our SR, the server's RR: LSR/DLSR), loss from the server's receiver reports and
  the gaps in its own stream, and voice-to-voice latency per turn.
The ramp goes up while a level passes and stops at the first that fails (or where the client,
not the server, is the bottleneck: the client's CPU share is printed next to the server's).

Prints a table per mode and the largest passing level — the figure the latency issue asks for
(goal: ≥ 800 echo sessions per core) — and writes everything to reports/bench/sessions_per_core.json.

Usage: python -m bench.sessions_per_core [--echo-levels 200 400 800 1000 1200] [--voice-levels 25 50 100]
                                         [--duration 5] [--p99-ms 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvloop

from bench.common import (
    CLIENT_BOUND,
    BenchError,
    Child,
    Children,
    CpuSnapshot,
    benchmark_parser,
    machine_facts,
    pin_client,
    run_benchmark,
    serve_command,
    server_cpu,
    write_results,
)
from toolkit.commands.arguments import positive_number, whole
from toolkit.load.accounting import LoadError
from toolkit.load.run import LoadConfig, LoadRun


async def measure_level(mode: str, sessions: int, args: argparse.Namespace, server: Child) -> dict:
    """One level: N sessions against a fresh server; CPU shares over the measured window."""
    snapshots: dict[str, CpuSnapshot] = {}

    def on_window(name: str, edge: str) -> None:
        snapshots[edge] = CpuSnapshot.take(server)

    config = LoadConfig(whip_url=f"{server.http_url}/whip", sessions=sessions, duration=args.duration,
                        media="probe" if mode == "echo" else "speech", setup_concurrency=32, setup_timeout=30.0)
    result = await LoadRun(config, on_window=on_window).run()
    scenario = result["scenarios"][0]
    media = scenario["media"]
    share = snapshots["end"].share_since(snapshots["start"])
    up = result["setup"]["sessions"] - result["setup"]["failed"]
    p99 = media["rtt"]["p99"]
    ok = up == sessions and media["lost"] == 0 and p99 is not None and p99 < args.p99_ms
    row = {
        "mode": mode, "sessions": sessions, "sessions_up": up, "sent": media["sent"], "lost": media["lost"],
        "rtt_ms": {key: media["rtt"][key] for key in ("p50", "p99", "max")}, "rtt_samples": media["rtt"]["count"],
        "jitter_p50_ms": media["jitter"]["p50"], "setup_total_p99_ms": result["setup"]["phases_ms"]["total"]["p99"],
        "cpu_share": share, "ok": ok, "client_bound": share["client"] >= CLIENT_BOUND,
        "setup_errors": result["setup"]["errors"][:3],
    }
    if mode == "voice":
        row["voice_to_voice_ms"] = {key: media["voice_to_voice"][key] for key in ("count", "p50", "p99")}
        row["server_stream_gaps"] = media["server_stream_gaps"]
    return row


def print_row(row: dict) -> None:
    rtt = row["rtt_ms"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    extra = ""
    if row["mode"] == "voice":
        v2v = row["voice_to_voice_ms"]
        extra = f"  v2v p99 {fmt(v2v['p99'])} ms ({v2v['count']} turns)"
    flag = "ok " if row["ok"] else "FAIL"
    bound = "  (client-bound)" if row["client_bound"] else ""
    print(f"{flag} {row['mode']:<5} {row['sessions']:>5} sessions ({row['sessions_up']} up): sent {row['sent']:>7} "
          f"lost {row['lost']:>4}  RTT p50 {fmt(rtt['p50'])} p99 {fmt(rtt['p99'])} max {fmt(rtt['max'])} ms  "
          f"server CPU {row['cpu_share']['server']:.0%} client {row['cpu_share']['client']:.0%} "
          f"others {row['cpu_share']['others']:.0%}{extra}{bound}", flush=True)


async def ramp(mode: str, levels: list[int], args: argparse.Namespace, children: Children,
               cpu: int | None) -> list[dict]:
    rows = []
    for sessions in levels:
        try:
            server = children.start(f"{mode} server {sessions}", serve_command(mode, "--log-level", "warning"), cpu)
            row = await measure_level(mode, sessions, args, server)
        except (LoadError, BenchError) as exc:
            row = {"mode": mode, "sessions": sessions, "ok": False, "error": str(exc)}
            print(f"FAIL {mode:<5} {sessions:>5} sessions: {exc}", flush=True)
        else:
            print_row(row)
        finally:
            children.stop_all()
        rows.append(row)
        if not row["ok"]:
            break
    return rows


def best(rows: list[dict]) -> int:
    passing = [row["sessions"] for row in rows if row["ok"]]
    return max(passing) if passing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    parser.add_argument("--echo-levels", type=whole, nargs="*", default=[200, 400, 800, 1000, 1200],
                        help="echo sessions per level (none: skip echo)")
    parser.add_argument("--voice-levels", type=whole, nargs="*", default=[25, 50, 100, 150],
                        help="voice sessions per level (none: skip voice)")
    parser.add_argument("--duration", type=positive_number, default=5.0, help="measured seconds per level")
    parser.add_argument("--p99-ms", type=positive_number, default=10.0, help="p99 RTT limit in ms")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    pinned = pin_client()
    uvloop.install()
    results = {}
    with Children() as children:
        for mode, levels in (("echo", args.echo_levels), ("voice", args.voice_levels)):
            if levels:
                print(f"-- {mode}: levels {levels}, {args.duration:g} s each, p99 RTT < {args.p99_ms:g} ms and no loss")
                results[mode] = asyncio.run(ramp(mode, sorted(levels), args, children, server_cpu(pinned)))
    summary = {mode: best(rows) for mode, rows in results.items()}
    print()
    for mode, count in summary.items():
        goal = "  (goal ≥ 800: " + ("met" if count >= 800 else "NOT met") + ")" if mode == "echo" else ""
        print(f"{mode}: {count} sessions on one core with p99 RTT < {args.p99_ms:g} ms and no loss{goal}")
    write_results(args.json, {"machine": machine_facts(pinned), "settings": vars(args), "levels": results,
                              "sessions_per_core": summary})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("sessions_per_core", main))
