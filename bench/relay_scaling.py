"""SRTP echo round trips per second on one public port: one process, `--workers 1`, `--workers 2`.

Each configuration is `rtcgate serve --media echo` started as a child process: alone (one
process owns the port and every session), and with `--workers N` (a relay process owns the
port and forwards to N worker processes that hold the sessions). The client is srtp_echo's
(bench/echo_client.py), unchanged: probe-peer sessions (WHIP, ICE, DTLS) through the public port,
a fixed window of SRTP packets in flight, each echo decrypted, checked and answered by the
next packet. Every configuration gets the same client load; runs are interleaved round by
round, so load from elsewhere hits them alike, and each configuration keeps its best round.

Nothing is pinned: the relay, the workers and the client share the machine's cores as the
kernel schedules them. CPU use of every process is measured over each run, so the figures
say what bounds them: the client, the relay, the workers, or the cores themselves.

Prints a table with ratios and writes it as JSON to reports/bench/relay_scaling.json.

Usage: python -m bench.relay_scaling [--duration 5] [--window 32] [--sessions 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field

import uvloop

from bench.common import (
    BenchError,
    Child,
    Children,
    benchmark_parser,
    load_average,
    machine_facts,
    machine_line,
    process_cpu_seconds,
    run_benchmark,
    serve_command,
    write_results,
)
from bench.echo_client import add_run_options, best_of_rounds, rtt_cells, srtp_run
from toolkit.commands.arguments import whole

CONFIGURATIONS = (("single process", 0), ("--workers 1", 1), ("--workers 2", 2))
WORKER_PIDS = re.compile(rb"relay in front of \d+ workers?, PIDs (?P<pids>[\d ]+)\)")
SATURATED = 0.9
"""CPU share of one core from which a process is taken to be what bounds a run."""


@dataclass
class ServerGroup:
    """The serve process and its workers, standing in for a Child: CPU is their sum.

    echo_client's `drive` reads `cpu_seconds()` when measuring starts and when it stops; each
    read also keeps every process's own figure, so a run's CPU can be split by process."""

    name: str
    serve: Child
    worker_pids: list[int]
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return self.serve.http_url

    def log_tail(self) -> str:
        return self.serve.log_tail()

    def cpu_seconds(self) -> float:
        role = "relay" if self.worker_pids else "server"
        per_process = {role: process_cpu_seconds(self.serve.process.pid)}
        for index, pid in enumerate(self.worker_pids):
            per_process[f"worker {index}"] = process_cpu_seconds(pid)
        self.samples.append((time.perf_counter(), per_process))
        return sum(per_process.values())

    def last_run_shares(self) -> dict[str, float]:
        """CPU per second of wall time of each process, over the last measured interval."""
        (start, before), (end, after) = self.samples[-2:]
        return {name: round((after[name] - before[name]) / (end - start), 3) for name in after}


def start_group(name: str, workers: int, children: Children) -> ServerGroup:
    command = serve_command("echo", "--log-level", "warning")
    if workers:
        command += ["--workers", str(workers)]
    serve = children.start(name, command)
    pids: list[int] = []
    if workers:
        match = WORKER_PIDS.search(serve.log.read_bytes())
        if match is None:
            raise BenchError(f"{name}: the ready line names no worker PIDs:\n{serve.log_tail()}")
        pids = [int(pid) for pid in match["pids"].split()]
    return ServerGroup(name, serve, pids)


async def client(groups: list[ServerGroup], args: argparse.Namespace) -> list[dict]:
    rounds: dict[str, list[dict]] = {group.name: [] for group in groups}
    for _ in range(args.rounds):
        for group in groups:
            result = await srtp_run(group, args.sessions, args)
            result["name"] = group.name
            result["cpu_by_process"] = group.last_run_shares()
            rounds[group.name].append(result)
    return best_of_rounds(rounds)


def cost_model(row: dict) -> dict:
    """CPU microseconds each process spends per round trip, and the rates they allow on an idle
    machine: each process can use at most one core, and all together at most every core."""
    rate = row["round_trips_per_s"]
    if not rate:
        return {}
    shares = {"client": row["cpu_share"]["client"], **row["cpu_by_process"]}
    micros = {name: round(share / rate * 1e6, 1) for name, share in shares.items()}
    cores = os.cpu_count() or 1
    busiest = max(micros, key=micros.get)
    return {"cpu_us_per_round_trip": micros,
            "ceiling_one_core_per_process": {"process": busiest, "round_trips_per_s": round(1e6 / micros[busiest])},
            "ceiling_all_cores": round(cores * 1e6 / sum(micros.values()))}


def bound_by(row: dict) -> str:
    """What the CPU figures say limited this run."""
    cpu = row["cpu_share"]
    saturated = [name for name, share in row["cpu_by_process"].items() if share >= SATURATED]
    if cpu["client"] >= SATURATED:
        saturated.insert(0, "client")
    cores = os.cpu_count() or 1
    total = cpu["client"] + cpu["server"] + cpu["others"]
    if total >= SATURATED * cores:
        saturated.append(f"all {cores} cores busy ({total:.0%} of one core in all)")
    return ", ".join(saturated) or ("nothing saturated: the processes wait on each other or on the "
                                    "scheduler (raise --window, or measure on a quieter machine)")


def print_report(machine: dict, settings: dict, rows: list[dict], ratios: dict[str, float]) -> None:
    print(f"{machine_line(machine, 'uvloop')}; load average before {settings['load_before']}, "
          f"after {settings['load_after']}")
    print(f"settings: {settings['sessions']} SRTP sessions sharing {settings['window']} packets in flight, "
          f"{settings['duration_s']:g} s measured after {settings['warmup_s']:g} s warm-up, best of "
          f"{settings['rounds']} interleaved round(s), loopback, nothing pinned")
    print()
    print(f"{'configuration':<16} {'round trips/s':>13} {'each round':>17} {'RTT p50':>9} {'RTT p99':>9} "
          f"{'lost':>5} {'bad':>4} {'client':>7} {'others':>7}  server processes (share of one core)")
    for row in rows:
        p50, p99 = rtt_cells(row)
        each = "/".join(f"{n:,}" for n in row["round_trips_per_s_each_round"])
        processes = ", ".join(f"{name} {share:.0%}" for name, share in row["cpu_by_process"].items())
        print(f"{row['name']:<16} {row['round_trips_per_s']:>13,} {each:>17} {p50:>9} {p99:>9} "
              f"{row['lost']:>5} {row['mismatches']:>4} {row['cpu_share']['client']:>7.0%} "
              f"{row['cpu_share']['others']:>7.0%}  {processes}")
    print()
    for name, ratio in ratios.items():
        print(f"ratio {name}: {ratio:.2f}")
    print()
    print("CPU µs per round trip, and the rates that allows on an idle machine "
          "(one core per process at most; every core shared by all):")
    for row in rows:
        model = row["cost_model"]
        if not model:
            continue
        micros = ", ".join(f"{name} {value:g}" for name, value in model["cpu_us_per_round_trip"].items())
        busiest = model["ceiling_one_core_per_process"]
        print(f"  {row['name']:<16} {micros}; total {sum(model['cpu_us_per_round_trip'].values()):.1f} µs -> "
              f"{model['ceiling_all_cores']:,}/s on all cores, {busiest['round_trips_per_s']:,}/s "
              f"by its busiest process ({busiest['process']})")
    for row in rows:
        print(f"bound ({row['name']}): {bound_by(row)}")
        if row["server_drops"]:
            print(f"  drops during the run: {row['server_drops']}")
    print("CPU columns: share of one core during the measured interval; 'others' is every other "
          "process on the machine (other load makes the figures unreliable)")


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    add_run_options(parser)
    parser.add_argument("--sessions", type=whole, default=8,
                        help="SRTP sessions sharing the window; spread over the workers")
    parser.add_argument("--rounds", type=whole, default=2,
                        help="interleaved rounds; each configuration keeps its best")
    return parser


def main() -> int:
    args = build_parser().parse_args()

    load_before = load_average()
    with Children() as children:
        groups = [start_group(name, workers, children) for name, workers in CONFIGURATIONS]
        rows = uvloop.run(client(groups, args))

    rate = {row["name"]: row["round_trips_per_s"] for row in rows}

    def ratio(a: str, b: str) -> float:
        return round(rate[a] / rate[b], 3) if rate[b] else 0.0

    ratios = {"--workers 2 / --workers 1": ratio("--workers 2", "--workers 1"),
              "--workers 1 / single process": ratio("--workers 1", "single process"),
              "--workers 2 / single process": ratio("--workers 2", "single process")}
    machine = machine_facts(None)
    settings = {"sessions": args.sessions, "window": args.window, "duration_s": args.duration,
                "warmup_s": args.warmup, "rounds": args.rounds, "load_before": load_before,
                "load_after": load_average()}
    for row in rows:
        row["bound_by"] = bound_by(row)
        row["cost_model"] = cost_model(row)
    print_report(machine, settings, rows, ratios)
    write_results(args.json, {"machine": machine, "settings": settings, "runs": rows, "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("relay_scaling", main))
