"""Executions per second of each fuzz target under atheris/libFuzzer (one process each).

    .venv/bin/python -m bench.fuzz_exec [--time S] [--json PATH] [TARGET|MODULE:FUNCTION ...]

Each target runs in-process (no -fork) on a scratch copy of its seed corpus for S seconds,
with the flags `rtcgate fuzz` gives it (campaign.target_flags).
The rate printed is the steady one: executions between the first progress line after a
warm-up and the last, over the wall time between them, so interpreter start-up and world
set-up do not count. Goals (issue 4): >= 20k exec/s for parsers, >= 2k for server_receive
and the other stateful targets (ice_request, dtls_records, sctp_dcep: an aiortc association
on an event loop).
Writes reports/bench/fuzz_exec.json.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import benchmark_parser, run_benchmark, write_results
from toolkit.commands.arguments import positive_number
from toolkit.fuzz.campaign import Campaign, copy_seeds, target_flags
from toolkit.fuzz.targets import NAMES

WARMUP = 3.0
GOALS = {"server_receive": 2_000, "ice_request": 2_000, "dtls_records": 2_000, "sctp_dcep": 2_000}
DEFAULT_GOAL = 20_000
_EXECS = re.compile(r"^#(\d+)\s")


def measure(spec: str, seconds: float, expect: list[str] | None) -> dict:
    campaign = Campaign(spec=spec, expect=expect)
    campaign.prepare()  # instruments what the target declares, as `rtcgate fuzz` does
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        copy_seeds(campaign.seeds, corpus)
        command = [*campaign.harness_command(), f"-max_total_time={int(seconds)}", "-print_final_stats=1",
                   str(corpus)]
        if campaign.builtin:
            command += target_flags(spec)  # what `rtcgate fuzz` runs the target with
        if (dictionary := campaign.dictionary_path()) is not None:
            command.append(f"-dict={dictionary}")
        started = time.monotonic()
        samples: list[tuple[float, int]] = []
        with subprocess.Popen(command, env=campaign.environment(), cwd=scratch, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, errors="replace") as process:
            for line in process.stderr:
                if match := _EXECS.match(line):
                    samples.append((time.monotonic() - started, int(match.group(1))))
                elif line.startswith("stat::number_of_executed_units:"):
                    samples.append((time.monotonic() - started, int(line.split()[-1])))
            crashed = process.wait() != 0
    warm = [sample for sample in samples if sample[0] >= WARMUP] or samples
    (t0, n0), (t1, n1) = warm[0], samples[-1]
    rate = (n1 - n0) / (t1 - t0) if t1 > t0 else float(n1) / max(t1, 1e-9)
    return {"target": spec, "seconds": round(samples[-1][0], 1) if samples else 0, "execs": n1,
            "exec_per_s": round(rate), "crashed": crashed}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    parser.add_argument("targets", nargs="*", help="built-in names or module:function (default: every built-in)")
    parser.add_argument("--time", type=positive_number, default=20.0, help="seconds per target")
    parser.add_argument("--expect", action="append", help="declared exception for module:function targets")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    results = []
    print(f"{'target':34} {'exec/s':>9} {'goal':>7}  execs       note")
    for spec in args.targets or NAMES:
        result = measure(spec, args.time, args.expect if ":" in spec else None)
        goal = GOALS.get(spec, DEFAULT_GOAL)
        result["goal"] = goal
        note = "stopped on a finding (see rtcgate fuzz)" if result["crashed"] else (
            "ok" if result["exec_per_s"] >= goal else "below goal")
        print(f"{spec:34} {result['exec_per_s']:>9,} {goal:>7,}  {result['execs']:<11,} {note}", flush=True)
        results.append(result)
    write_results(args.json, {"time_per_target": args.time, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("fuzz_exec", main))
