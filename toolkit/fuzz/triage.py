"""Turn a campaign's artifacts into findings: replay, deduplicate, minimize, store, report.

Artifacts are replayed in a child process (`python -m toolkit.fuzz.replay`), so a hard
crash or a hang in the target is recorded rather than suffered. Findings with the same
exception type and innermost frames are one bug; of each, only the smallest input is
minimized (libFuzzer's -minimize_crash, kept only if it still fails the same way), the
others are counted. Minimization is bounded: so many seconds per finding, a total budget
for the whole triage, and two at a time. Each finding's reproducer is stored under
`<corpus_dir>/regressions/<target>/`, where every later replay runs it, and its replay
command names it relative to the current directory (or absolutely, when outside it).
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .campaign import INPUT_TIMEOUT, Campaign, CampaignResult
from .replay import Outcome

REPLAY_TIMEOUT = 120.0
"""Seconds for one child to replay a batch of artifacts (per 50 of them)."""
SINGLE_REPLAY_TIMEOUT = 3 * INPUT_TIMEOUT
"""Seconds for one artifact alone, after a batch died or hung: three times what libFuzzer let
an input take, so each hang costs that much, not a batch's allowance."""
MINIMIZE_SECONDS = 10
"""Wall seconds of -minimize_crash per distinct finding."""
TRIAGE_BUDGET = 30
"""Wall seconds of minimization in all (a shallow target can yield dozens of distinct bugs);
findings whose turn comes after it are stored as found."""
MINIMIZE_STEP = 3
"""Seconds each -minimize_crash step searches for a smaller crash; the first step that finds
none ends the minimization, so an input already minimal costs one step, not the whole budget."""
MINIMIZE_WORKERS = 2
SMALL_ENOUGH = 32
"""Inputs this short are stored as found."""
HEX_LIMIT = 512
"""Reproducers up to this many bytes are written into the report in hex."""


@dataclass(slots=True)
class Finding:
    signature: str
    error: str
    message: str
    frames: list[tuple[str, int, str]]
    reproducer: str
    size: int
    artifacts: int  # how many campaign artifacts showed this signature
    minimized: bool
    replay: str  # the command that replays it
    hex: str | None = None


@dataclass(slots=True)
class Report:
    target: str
    spec: str
    expect: list[str] | None
    seconds: float
    execs: int
    exec_per_s: int
    coverage: int
    corpus: int
    artifacts: int
    findings: list[Finding] = field(default_factory=list)
    started: str = ""


def replay_in_child(campaign: Campaign, paths: list[Path]) -> dict[Path, Outcome]:
    """Replay files in one child; if it dies or hangs, fall back to one child per file."""
    outcomes = _replay_batch(campaign, paths, REPLAY_TIMEOUT * (len(paths) // 50 + 1))
    if outcomes is not None:
        return outcomes
    results = {}
    for path in paths:
        single = _replay_batch(campaign, [path], SINGLE_REPLAY_TIMEOUT)
        results[path] = single[path] if single else _dead(path)
    return results


def _replay_batch(campaign: Campaign, paths: list[Path], timeout: float) -> dict[Path, Outcome] | None:
    command = [sys.executable, "-m", "toolkit.fuzz.replay", campaign.child_spec, *map(str, paths)]  # expect: from the environment
    try:
        done = subprocess.run(command, env=campaign.environment(), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        if len(paths) == 1:
            return {paths[0]: _dead(paths[0], done.returncode, done.stderr)}
        return None
    outcomes = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            record.pop("signature", None)
            record["frames"] = [tuple(frame) for frame in record["frames"]]
            outcome = Outcome(**record)
            outcomes[Path(outcome.path)] = outcome
    return outcomes if len(outcomes) == len(paths) else None


def _dead(path: Path, returncode: int | None = None, stderr: str = "") -> Outcome:
    """An input that kills or hangs the interpreter: the signal (or the hang) is the finding."""
    if returncode is None:
        return Outcome(str(path), "hang", f"no result within {SINGLE_REPLAY_TIMEOUT:.0f} s")
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return Outcome(str(path), f"signal {name}", stderr.strip().splitlines()[-1] if stderr.strip() else name)
    return Outcome(str(path), f"exit {returncode}", stderr.strip()[-500:])


def minimize(campaign: Campaign, path: Path, seconds: float = MINIMIZE_SECONDS) -> bytes | None:
    """libFuzzer's -minimize_crash on one input for at most `seconds` of wall time; None if
    it could not make it smaller. libFuzzer runs each step in a child of its own, so the whole
    process group is stopped when the time is up; the smallest input found so far is kept."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "minimized"
        command = [*campaign.harness_command(), "-minimize_crash=1", f"-max_total_time={MINIMIZE_STEP}",
                   f"-exact_artifact_path={out}", f"-timeout={INPUT_TIMEOUT}", str(path)]
        with subprocess.Popen(command, env=campaign.environment(), cwd=scratch, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True) as process:
            try:
                process.wait(timeout=max(1.0, seconds))
            except subprocess.TimeoutExpired:
                pass
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)  # the group this call started: libFuzzer and its steps
                    process.wait()
        if out.is_file() and out.stat().st_size < path.stat().st_size:
            return out.read_bytes()
    return None


def shown_path(path: Path) -> str:
    """A path as the user can paste it where they ran rtcgate: relative when under the
    current directory, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def replay_command(campaign: Campaign, reproducer: Path) -> str:
    shown = shlex.quote(shown_path(reproducer))
    if campaign.builtin:
        return f"rtcgate fuzz --replay {campaign.spec} --input {shown}"
    options = "".join(f" --expect {shlex.quote(item)}" for item in campaign.expect or [])
    options += " --text" if campaign.text else ""
    return f"rtcgate fuzz --target {shlex.quote(campaign.spec)}{options} --replay --input {shown}"


def triage(result: CampaignResult, *, minimize_seconds: float = MINIMIZE_SECONDS, budget: float = TRIAGE_BUDGET,
           workers: int = MINIMIZE_WORKERS, on_step: Callable[[str], None] | None = None) -> Report:
    """Replay every artifact, group them by signature, minimize the smallest of each group
    within the time bounds, store one reproducer per group. `on_step` hears what is going on."""
    campaign = result.campaign
    progress = result.progress
    report = Report(target=campaign.name, spec=campaign.spec, expect=campaign.expect, seconds=round(result.seconds, 1),
                    execs=progress.execs, exec_per_s=progress.exec_per_s, coverage=progress.coverage,
                    corpus=progress.corpus, artifacts=len(result.artifacts), started=time.strftime("%Y-%m-%d %H:%M:%S"))
    if not result.artifacts:
        return report
    say = on_step or (lambda _text: None)
    say(f"triage: replaying {len(result.artifacts)} artifact(s)")
    outcomes = replay_in_child(campaign, result.artifacts)
    groups: dict[str, list[tuple[Path, Outcome]]] = {}
    for path in result.artifacts:
        outcome = outcomes[path]
        if outcome.error is None:
            # Passes alone: it needed state from earlier inputs, or it was a hang or OOM that
            # a lone replay does not repeat. Kept under the artifact's own kind.
            kind = path.name.split("-", 1)[0]
            outcome = Outcome(str(path), f"unreproduced {kind}", "fails only after earlier inputs (or only under libFuzzer)")
        groups.setdefault(outcome.signature or outcome.error, []).append((path, outcome))
    chosen = {signature: min(members, key=lambda member: member[0].stat().st_size)
              for signature, members in groups.items()}
    smaller = _minimize_all(campaign, chosen, minimize_seconds, budget, workers, say)
    for signature, members in groups.items():
        path, outcome = chosen[signature]
        data, minimized = (smaller[signature], True) if signature in smaller else (path.read_bytes(), False)
        if outcome.error.startswith("unreproduced"):
            reproducer = path  # a regression that passes alone would guard nothing: keep the artifact only
        else:
            parts = outcome.error.split(".")
            stem = ".".join(parts[-2:] if parts[-1][:1].islower() else parts[-1:])  # struct.error, KeyError
            stem = stem.replace(" ", "-").replace("[", "-").replace("]", "")
            campaign.regressions.mkdir(parents=True, exist_ok=True)
            reproducer = campaign.regressions / f"{stem}-{outcome.signature_id}"
            if not reproducer.exists() or reproducer.stat().st_size > len(data):
                reproducer.write_bytes(data)
        report.findings.append(Finding(
            signature=signature, error=outcome.error, message=outcome.message, frames=outcome.frames,
            reproducer=shown_path(reproducer), size=len(data), artifacts=len(members), minimized=minimized,
            replay=replay_command(campaign, reproducer),
            hex=data.hex() if len(data) <= HEX_LIMIT else None))
    return report


def _minimize_all(campaign: Campaign, chosen: dict[str, tuple[Path, Outcome]], seconds: float, budget: float,
                  workers: int, say: Callable[[str], None]) -> dict[str, bytes]:
    """Minimize each group's chosen input, `workers` at a time, none past the budget; return
    the smaller inputs that still fail with the same signature, by signature."""
    wanted = {signature: path for signature, (path, outcome) in chosen.items()
              if outcome.frames and not outcome.error.startswith("unreproduced")
              and path.stat().st_size > SMALL_ENOUGH}
    if not wanted or seconds <= 0 or budget <= 0:
        return {}
    say(f"triage: minimizing {len(wanted)} distinct finding(s), at most {seconds:g} s each and {budget:g} s in all")
    deadline = time.monotonic() + budget

    def shrink(path: Path) -> bytes | None:
        left = deadline - time.monotonic()
        return minimize(campaign, path, min(seconds, left)) if left >= 1 else None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = dict(zip(wanted, pool.map(shrink, wanted.values())))
    candidates = {signature: data for signature, data in results.items() if data is not None}
    if not candidates:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        files = {}
        for number, (signature, data) in enumerate(candidates.items()):
            files[signature] = Path(scratch) / f"minimized-{number}"
            files[signature].write_bytes(data)
        checks = replay_in_child(campaign, list(files.values()))
        return {signature: candidates[signature] for signature, file in files.items()
                if checks[file].signature == chosen[signature][1].signature}


def write_report(report: Report, directory: Path) -> tuple[Path, Path]:
    """findings.json and findings.md for one campaign, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = directory / "findings.json", directory / "findings.md"
    json_path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    lines = [f"# Fuzz findings: {report.target}", "",
             f"Target `{report.spec}`" + (f", declared errors: {', '.join(report.expect)}" if report.expect else "")
             + f". Campaign of {report.seconds:.0f} s started {report.started}: {report.execs:,} executions "
             f"({report.exec_per_s:,}/s), coverage {report.coverage}, corpus {report.corpus}, "
             f"{report.artifacts} artifacts, {len(report.findings)} distinct findings.", ""]
    for number, finding in enumerate(report.findings, 1):
        lines += [f"## {number}. {finding.error}: {finding.message.splitlines()[0] if finding.message else ''}", "",
                  f"- reproducer: `{finding.reproducer}` ({finding.size} bytes"
                  f"{', minimized' if finding.minimized else ''}; {finding.artifacts} artifacts)",
                  f"- replay: `{finding.replay}`"]
        if finding.hex is not None:
            lines.append(f"- input (hex): `{finding.hex}`")
        if finding.frames:
            lines += ["- innermost frames:", ""]
            lines += [f"      {file}:{line} in {function}" for file, line, function in finding.frames[-6:]]
        lines.append("")
    markdown_path.write_text("\n".join(lines))
    return json_path, markdown_path
