"""The whole catalog against several answerers at once, in two phases, as one report per answerer.

A catalog run mostly waits (silence windows, ICE-06's 30 s consent timeout), so the checks of the
untimed profiles (`UNTIMED_PROFILES`) run against every answerer at the same time, each answerer
in its own `rtcgate check` process; the checks judged by the clock (TIMED_PROFILES: pacing,
latency, load) then run against one answerer at a time, so no other run's traffic can make them
late. Both phases play against the same answerer process (unless the untimed checks ended it:
`revived`), voice and perf last as in a whole-catalog run. A check's seed depends only on the
run's seed and its ID, so each check plays as it would in one run, and `--only ID --seed N`
replays it either way.

Each phase writes its reports into its own folder of the answerer's report folder; `merged_report`
joins the two rtcgate.json files into the one a whole-catalog run would have written (results in
catalog order, evidence paths relative to the answerer's report folder), saved as its
rtcgate.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.answerers.answerers import Answerer
from toolkit.conformance.checks import CATALOG
from toolkit.conformance.model import PROFILES, TIMED_PROFILES

SEED = 1
UNTIMED_PROFILES = tuple(profile for profile in PROFILES if profile not in TIMED_PROFILES)
PHASES = {"untimed": UNTIMED_PROFILES, "timed": TIMED_PROFILES}
"""Each phase's folder name and the profiles it plays, in the order they play."""
RUN_BUDGET = {"untimed": 300.0, "timed": 120.0}
"""Hang guards per `rtcgate check` process: the untimed checks take 70–100 s against one answerer
here (ICE-06 alone waits out a 30 s consent), longer beside the others on a shared 2-core machine;
the timed ones take 10–30 s."""


@dataclass
class CatalogRun:
    """One answerer's two phases: their exit statuses and stderr, the merged report, and what
happened to the answerer between them."""

    answerer: Answerer
    report_dir: Path
    exits: dict[str, int] = field(default_factory=dict)
    stderr: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0
    report: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_command(answerer: Answerer, phase: str, report_dir: Path) -> list[str]:
    return [*answerer.run_prefix, sys.executable, "-m", "toolkit.cli", "check", "--whip", answerer.url,
            "--profile", ",".join(PHASES[phase]), "--seed", str(SEED), "--report-dir", str(report_dir / phase)]


def play_phase(run: CatalogRun, phase: str) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run(check_command(run.answerer, phase, run.report_dir), capture_output=True, text=True,
                              timeout=RUN_BUDGET[phase])
        run.exits[phase], run.stderr[phase] = done.returncode, done.stderr
    except subprocess.TimeoutExpired as exc:
        run.exits[phase] = -1
        run.stderr[phase] = f"still running after {RUN_BUDGET[phase]:g} s\n{exc.stderr or ''}"
    run.elapsed += time.monotonic() - started


def play_catalogs(answerers: list[Answerer], report_root: Path) -> dict[str, CatalogRun]:
    """The untimed phase against every answerer at once, then the timed phase against each in turn;
    each answerer's merged report (when both phases wrote one) as its rtcgate.json."""
    runs = {answerer.name: CatalogRun(answerer, report_root / answerer.name) for answerer in answerers}
    if runs:
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            list(pool.map(lambda run: play_phase(run, "untimed"), runs.values()))
    for run in runs.values():
        if revived(run):
            play_phase(run, "timed")
        parts = {phase: run.report_dir / phase / "rtcgate.json" for phase in PHASES}
        if all(path.is_file() for path in parts.values()):
            run.report = merged_report({phase: json.loads(path.read_text()) for phase, path in parts.items()})
            (run.report_dir / "rtcgate.json").write_text(json.dumps(run.report, indent=1, ensure_ascii=False) + "\n")
    return runs


def revived(run: CatalogRun) -> bool:
    """Whether the answerer is up for the timed phase: one that died in the untimed phase (werift:
    DC-03 ends its process, and the rest of that phase FAILs saying it is gone) is started again on
    its port, so the timed checks judge it rather than its absence."""
    process = run.answerer.process
    if process.running:
        return True
    run.notes.append(f"the answerer exited during the untimed checks (exit {process.process.returncode}) "
                     "and was started again for the timed ones")
    try:
        process.start()
    except AssertionError as exc:
        run.exits["timed"], run.stderr["timed"] = -1, f"the answerer did not start again: {exc}"
        return False
    return True


def merged_report(parts: dict[str, dict]) -> dict:
    """One rtcgate.json from the phases' (folder name → report): results in catalog order, each
    evidence path led by its phase's folder, the sanity conversations of both, the summary, exit
    code and duration of the whole; a stop in either phase stops the whole."""
    order = {check.id: index for index, check in enumerate(CATALOG)}
    results, sanity = [], []
    for phase, report in parts.items():
        for result in (*report["sanity"], *report["results"]):
            result["artifacts"] = {kind: f"{phase}/{path}" for kind, path in result["artifacts"].items()}
        results += report["results"]
        sanity += report["sanity"]
    first, *_ = parts.values()
    return {
        **first,
        "duration": round(sum(report["duration"] for report in parts.values()), 3),
        "exit_code": max(report["exit_code"] for report in parts.values()),
        "stopped": "; ".join(report["stopped"] for report in parts.values() if report["stopped"]) or None,
        "summary": dict(sorted(Counter(result["status"] for result in results).items())),
        "sanity": sanity,
        "results": sorted(results, key=lambda result: order.get(result["id"], len(order))),
    }
