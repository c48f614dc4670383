"""Run a harness under libFuzzer, follow its progress, hand its artifacts to triage.

A time-budgeted campaign collects every bug it meets instead of stopping at the first:
one job is restarted after each crash, several run in libFuzzer's fork mode with crashes,
timeouts and OOMs ignored. `--runs` asks for a fixed number of inputs in one process and
stops at the first crash. The working corpus (where libFuzzer adds inputs) is separate from
the committed seeds, which are only read.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit import resources

from .harness import ENV_EXPECT, ENV_INSTRUMENT, ENV_TARGET, ENV_TEXT
from .registry import target_name

HARNESSES = Path(__file__).with_name("harnesses")
GENERIC_HARNESS = HARNESSES / "any_target.py"
ARTIFACT_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")
MAX_LEN = {"sdp_offer": 8192, "server_receive": 4096, "dtls_records": 4096, "sctp_dcep": 4096, "ice_request": 2048,
           "rtp_parse": 1500, "rtcp_parse": 1500}
"""Longest input per built-in target; others get libFuzzer's default (from the corpus). RTP
and RTCP reach their parsers only after libsrtp, whose buffer holds 1500 bytes."""
EXEC_TIME_SCALED = frozenset({"ice_request", "dtls_records", "sctp_dcep", "server_receive"})
"""Stateful targets whose inputs differ in cost by an order of magnitude: one that ends a
session pays for reopening it (a DTLS handshake, ~4 ms under instrumentation) where most
take a fraction of a millisecond. libFuzzer's entropic schedule then gives each corpus entry
energy in inverse proportion to its time (-entropic_scale_per_exec_time), so the costly ones
are still mutated, only less often."""
INPUT_TIMEOUT = 10
"""Seconds one input may take before libFuzzer calls it a hang (Python is slow, not that slow)."""

# Fork mode: "#123: cov: 1 ft: 2 corp: 3 exec/s 4 oom/timeout/crash: 0/0/1 time: 5s job: 6 ..."
_FORK_LINE = re.compile(
    r"#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s (\d+) oom/timeout/crash: (\d+)/(\d+)/(\d+) time: (\d+)s")
# In-process: "#123\tNEW    cov: 1 ft: 2 corp: 3/40b lim: 4 exec/s: 5 rss: ..."
_LINE = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?exec/s: (\d+)")
_STAT = re.compile(r"stat::(\w+):\s+(\d+)")


def repository_root() -> Path:
    """The checkout this toolkit runs from (editable install), else the working directory."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


@dataclass(slots=True)
class Progress:
    execs: int = 0
    exec_per_s: int = 0
    coverage: int = 0
    features: int = 0
    corpus: int = 0
    crashes: int = 0
    elapsed: float = 0.0

    def line(self, name: str) -> str:
        return (f"[{name}] {self.elapsed:5.0f}s  {self.execs:>10,} execs  {self.exec_per_s:>7,} exec/s  "
                f"cov {self.coverage}  ft {self.features}  corpus {self.corpus}  crashes {self.crashes}")


@dataclass(slots=True)
class Campaign:
    """Everything one run needs; `spec` is a built-in name or module:function."""

    spec: str
    expect: list[str] | None = None
    instrument: list[str] | None = None
    seconds: float | None = 60.0
    runs: int | None = None
    jobs: int = 1
    corpus: Path | None = None
    dictionary: Path | None = None
    corpora: Path = field(default_factory=resources.corpora)
    reports: Path = field(default_factory=lambda: repository_root() / "reports" / "fuzz")
    text: bool = False
    extra_seeds: list[Path] = field(default_factory=list)
    extra_flags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return target_name(self.spec)

    @property
    def builtin(self) -> bool:
        return ":" not in self.spec

    @property
    def harness(self) -> Path:
        return HARNESSES / f"{self.spec}_fuzzer.py" if self.builtin else GENERIC_HARNESS

    @property
    def seeds(self) -> list[Path]:
        own = [self.corpora / self.name, self.corpora / "regressions" / self.name]
        return [d for d in own + self.extra_seeds if d.is_dir()]

    @property
    def regressions(self) -> Path:
        return self.corpora / "regressions" / self.name

    @property
    def work(self) -> Path:
        return self.reports / self.name

    def environment(self) -> dict[str, str]:
        """The harness's environment: target spec and options, this Python first on PATH
        (libFuzzer runs the harness's shebang, `/usr/bin/env python3`, through a shell), and
        the current directory on PYTHONPATH."""
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # module:function specs resolve from where rtcgate was started, as with `python -m`.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
        env[ENV_TARGET] = self.spec
        env[ENV_TEXT] = "1" if self.text else "0"
        for key, values in ((ENV_EXPECT, self.expect), (ENV_INSTRUMENT, self.instrument)):
            if values is None:
                env.pop(key, None)
            else:
                env[key] = ",".join(values)
        return env

    def dictionary_path(self) -> Path | None:
        if self.dictionary is not None:
            return self.dictionary
        default = self.corpora / f"{self.name}.dict"
        return default if default.is_file() else None


@dataclass(slots=True)
class CampaignResult:
    campaign: Campaign
    progress: Progress
    artifacts: list[Path]
    log: Path
    seconds: float
    returncode: int


def command(campaign: Campaign, corpus: Path, artifacts: Path, seconds: float | None = None) -> list[str]:
    flags = [f"-artifact_prefix={artifacts}{os.sep}", f"-timeout={INPUT_TIMEOUT}", "-rss_limit_mb=2048",
             "-print_final_stats=1"]
    if campaign.runs is not None:
        flags.append(f"-runs={campaign.runs}")
    elif campaign.jobs > 1:
        flags += [f"-fork={campaign.jobs}", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1"]
    seconds = campaign.seconds if seconds is None else seconds
    if seconds is not None:
        flags.append(f"-max_total_time={max(1, int(seconds))}")
    if campaign.builtin:
        flags += target_flags(campaign.spec)
    dictionary = campaign.dictionary_path()
    if dictionary is not None:
        flags.append(f"-dict={dictionary}")
    return [str(campaign.harness), *flags, *campaign.extra_flags, str(corpus), *map(str, campaign.seeds)]


def target_flags(name: str) -> list[str]:
    """The libFuzzer flags a built-in target always runs with."""
    flags = [f"-max_len={MAX_LEN[name]}"] if name in MAX_LEN else []
    if name in EXEC_TIME_SCALED:
        flags.append("-entropic_scale_per_exec_time=1")
    return flags


def options_file(name: str) -> str:
    """target_flags as an OSS-Fuzz/ClusterFuzzLite `<harness>.options` file."""
    lines = ["[libfuzzer]"] + [" = ".join(flag[1:].split("=", 1)) for flag in target_flags(name)]
    return "\n".join(lines) + "\n"


MAX_RESTARTS = 1000
"""A single-process campaign restarts after each crash; this many crashes end it early."""


def run(campaign: Campaign, on_progress: Callable[[Progress], None] | None = None) -> CampaignResult:
    """Fuzz until the time or run budget is spent; return progress and the artifacts written.

    With one job, libFuzzer runs in this process's child directly (fork mode would restart
    the interpreter, and rebuild the target's world, every few seconds) and is started again
    after each crash with the time left, on the corpus it has grown so far. With more jobs,
    libFuzzer's fork mode runs them and carries on past crashes itself.
    """
    corpus = campaign.corpus or campaign.work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    artifacts = campaign.work / "artifacts" / stamp
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = campaign.work / f"fuzz-{stamp}.log"
    progress = Progress()
    started = time.monotonic()
    earlier_execs = 0
    returncode = 0
    with open(log_path, "w") as log:
        for _ in range(MAX_RESTARTS):
            left = None if campaign.seconds is None else campaign.seconds - (time.monotonic() - started)
            if left is not None and left < 1:
                break
            with subprocess.Popen(
                command(campaign, corpus, artifacts, left), env=campaign.environment(), cwd=campaign.work,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            ) as process:
                for line in process.stdout:
                    log.write(line)
                    if _update(progress, line, earlier_execs):
                        progress.elapsed = time.monotonic() - started
                        progress.crashes = max(progress.crashes, _count(artifacts))
                        if on_progress is not None:
                            on_progress(progress)
                returncode = process.wait()
            earlier_execs = progress.execs
            if returncode == 0 or campaign.runs is not None or campaign.jobs > 1:
                break
    progress.elapsed = time.monotonic() - started
    found = sorted(p for p in artifacts.iterdir() if p.name.startswith(ARTIFACT_PREFIXES))
    progress.crashes = max(progress.crashes, len(found))
    return CampaignResult(campaign, progress, found, log_path, progress.elapsed, returncode)


def _count(artifacts: Path) -> int:
    return sum(1 for p in artifacts.iterdir() if p.name.startswith(ARTIFACT_PREFIXES))


def _update(progress: Progress, line: str, earlier_execs: int = 0) -> bool:
    if match := _FORK_LINE.search(line):
        execs, cov, ft, corp, rate, ooms, timeouts, crashes, _ = map(int, match.groups())
        progress.execs, progress.coverage, progress.features, progress.corpus = execs, cov, ft, corp
        progress.exec_per_s, progress.crashes = rate, ooms + timeouts + crashes
        return True
    if match := _LINE.search(line):
        execs, cov, ft, corp, rate = map(int, match.groups())
        progress.execs, progress.coverage, progress.features = earlier_execs + execs, cov, ft
        progress.corpus, progress.exec_per_s = corp, rate
        return True
    if match := _STAT.search(line):
        key, value = match.group(1), int(match.group(2))
        if key == "number_of_executed_units":
            progress.execs = earlier_execs + value
        elif key == "average_exec_per_sec":
            progress.exec_per_s = value
        return True
    return False
