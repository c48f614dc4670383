"""Legit latency and loss under attack: each PERF-02 attack kind at 50 % of the port's measured
capacity, against a quiet window measured right before it on the same sessions.

1. The reference server (`rtcgate serve --media echo`) runs pinned to one CPU, this client on
   the other. The port's capacity is measured first: SRTP echo round trips per second at
   saturation (bench/echo_client.py, as srtp_echo runs it: 10 sessions, 32 packets in flight) — the legit media
   packets per second the one port can take in and answer.
2. For each attack kind, a `rtcgate load` run (toolkit/load): S legit sessions at 50 pps each,
   a quiet window, then a window with the attack at --share × capacity packets per second from
   64 source ports (bad-tag SRTP from the legit sessions' own 5-tuples). Repeated --rounds
   times; quiet and attack windows alternate, so load from elsewhere hits both alike.
3. Per kind: legit p99 RTT under attack / quiet p99 (goal < 2), legit packets lost (goal 0),
   server sessions flat (goal: no growth), resident memory before/after, and the server's drop
   counters for the attack (each attack datagram should show up as a drop with its reason).

Writes reports/bench/attack_latency.json (machine facts included) and the last round's full
load report per kind (HTML with CDF plots) under reports/bench/attack_latency/.

Usage: python -m bench.attack_latency [--sessions 100] [--duration 5] [--share 0.5] [--rounds 2]
                                      [--kinds garbage ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import sys

import uvloop

from bench.common import (
    REPORTS,
    Child,
    Children,
    CpuSnapshot,
    benchmark_parser,
    machine_facts,
    pin_client,
    run_benchmark,
    serve_command,
    server_cpu,
    shown_path,
    write_results,
)
from bench.echo_client import srtp_run
from toolkit.commands.arguments import integer, positive_number, whole
from toolkit.load.attacks import ATTACK_KINDS, AttackSpec
from toolkit.load.report import write_report
from toolkit.load.run import LoadConfig, LoadRun

P99_GOAL = 2.0


async def capacity(server: Child) -> dict:
    """SRTP echo round trips/s at saturation: the port's legit packet capacity."""
    settings = argparse.Namespace(window=32, warmup=1.0, duration=3.0)
    row = await srtp_run(server, 10, settings)
    return {"round_trips_per_s": row["round_trips_per_s"], "server_cpu": row["cpu_share"]["server"],
            "client_cpu": row["cpu_share"]["client"]}


async def one_pair(server: Child, kind: str, pps: float, args: argparse.Namespace, report_dir: pathlib.Path) -> dict:
    """Quiet, then `kind` at `pps`, on the same fresh sessions; CPU shares per window."""
    shares: dict[str, dict] = {}
    starts: dict[str, CpuSnapshot] = {}

    def on_window(name: str, edge: str) -> None:
        if edge == "start":
            starts[name] = CpuSnapshot.take(server)
        else:
            shares[name] = CpuSnapshot.take(server).share_since(starts[name])

    spec = AttackSpec((kind,), pps)
    config = LoadConfig(whip_url=f"{server.http_url}/whip", sessions=args.sessions, duration=args.duration,
                        attacks=(spec,), setup_concurrency=32, seed=args.seed)
    result = await LoadRun(config, on_window=on_window).run()
    write_report(result, report_dir, kind)
    quiet, attacked = result["scenarios"]
    ratio = None
    if quiet["media"]["rtt"]["p99"] and attacked["media"]["rtt"]["p99"] is not None:
        ratio = attacked["media"]["rtt"]["p99"] / quiet["media"]["rtt"]["p99"]
    server_state = attacked["server"]
    return {
        "quiet": {"p50": quiet["media"]["rtt"]["p50"], "p99": quiet["media"]["rtt"]["p99"],
                  "lost": quiet["media"]["lost"], "cpu": shares.get("quiet")},
        "attack": {"p50": attacked["media"]["rtt"]["p50"], "p99": attacked["media"]["rtt"]["p99"],
                   "lost": attacked["media"]["lost"], "sent_legit": attacked["media"]["sent"],
                   "attack_sent": attacked["attack"]["sent"], "replies": attacked["attack"]["replies"],
                   "cpu": shares.get(str(spec))},
        "ratio_p99": ratio,
        "sessions": [server_state["sessions_start"], server_state["sessions_max"], server_state["sessions_end"]],
        "rss_mib": [None if v is None else round(v / (1 << 20), 1)
                    for v in (server_state["rss_start_bytes"], server_state["rss_end_bytes"])],
        "drops": server_state["drops"],
        "setup_failed": result["setup"]["failed"],
    }


def verdict(kind: str, pairs: list[dict]) -> dict:
    ratios = [pair["ratio_p99"] for pair in pairs if pair["ratio_p99"] is not None]
    ratio = statistics.median(ratios) if ratios else None
    lost = sum(pair["attack"]["lost"] for pair in pairs)
    flat = all(pair["sessions"][0] == pair["sessions"][1] == pair["sessions"][2] for pair in pairs)
    return {"kind": kind, "median_ratio_p99": ratio, "legit_lost": lost, "sessions_flat": flat,
            "ok": ratio is not None and ratio < P99_GOAL and lost == 0 and flat}


def fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


async def client(server: Child, args: argparse.Namespace, report_dir: pathlib.Path) -> dict:
    cap = await capacity(server)
    pps = args.share * cap["round_trips_per_s"]
    print(f"port capacity: {cap['round_trips_per_s']:,} SRTP echo round trips/s (server CPU "
          f"{cap['server_cpu']:.0%}); attacks at {args.share:.0%} = {pps:,.0f} packets/s; "
          f"{args.sessions} legit sessions × 50 pps", flush=True)
    pairs: dict[str, list[dict]] = {kind: [] for kind in args.kinds}
    for round_number in range(args.rounds):
        for kind in args.kinds:
            pair = await one_pair(server, kind, pps, args, report_dir)
            pairs[kind].append(pair)
            q, a = pair["quiet"], pair["attack"]
            cpu = a["cpu"] or {}
            print(f"round {round_number + 1} {kind:<22} quiet p99 {fmt(q['p99'])} ms → attack p99 {fmt(a['p99'])} ms "
                  f"(×{fmt(pair['ratio_p99'])}), lost {a['lost']}/{a['sent_legit']}, attack sent {a['attack_sent']:,}, "
                  f"sessions {pair['sessions']}, server CPU {cpu.get('server', 0):.0%} client "
                  f"{cpu.get('client', 0):.0%} others {cpu.get('others', 0):.0%}", flush=True)
    return {"capacity": cap, "attack_pps": pps, "pairs": pairs,
            "verdicts": [verdict(kind, kind_pairs) for kind, kind_pairs in pairs.items()]}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    parser.add_argument("--sessions", type=whole, default=100, help="legit sessions")
    parser.add_argument("--duration", type=positive_number, default=5.0, help="seconds per window")
    parser.add_argument("--share", type=positive_number, default=0.5, help="attack rate as a share of capacity")
    parser.add_argument("--rounds", type=whole, default=2, help="quiet/attack pairs per kind")
    parser.add_argument("--kinds", nargs="+", choices=list(ATTACK_KINDS), default=list(ATTACK_KINDS),
                        help="attack kinds")
    parser.add_argument("--seed", type=integer, default=1, help="seed of the attack traffic")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    pinned = pin_client()
    uvloop.install()
    report_dir = REPORTS / "attack_latency"
    with Children() as children:
        server = children.start("reference server", serve_command("echo", "--log-level", "warning"),
                                server_cpu(pinned))
        results = asyncio.run(client(server, args, report_dir))
    print()
    print(f"{'attack':<22} {'p99 ratio (median)':>18} {'legit lost':>10} {'sessions flat':>13}  verdict")
    for row in results["verdicts"]:
        print(f"{row['kind']:<22} {fmt(row['median_ratio_p99']):>18} {row['legit_lost']:>10} "
              f"{str(row['sessions_flat']):>13}  {'met' if row['ok'] else 'NOT met'} (goal: < {P99_GOAL:g}, 0 lost, flat)")
    write_results(args.json, {"machine": machine_facts(pinned), "settings": vars(args), **results})
    print(f"load reports: {shown_path(report_dir)}/<kind>.html")
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("attack_latency", main))
