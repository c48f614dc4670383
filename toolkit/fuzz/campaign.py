"""Run a harness under libFuzzer, follow its progress, hand its artifacts to triage.

A time-budgeted campaign collects every bug it meets instead of stopping at the first:
one job is restarted after each crash, several run in libFuzzer's fork mode with crashes,
timeouts and OOMs ignored. `--runs` asks for a fixed number of inputs in one process and
stops at the first crash.

Where things are, all absolute so that every child process agrees:
- seeds, only read: the shipped corpora (`corpora/<target>/`, `corpora/regressions/<target>/`)
  and the same two folders under the user's corpus directory (`corpus_dir`, default
  `./corpora`), plus any extra folders; a campaign fuzzes a scratch copy of them, from which
  an input that crashes is dropped before the next restart;
- new reproducers: `<corpus_dir>/regressions/<target>/` (triage writes them);
- the working corpus libFuzzer grows, artifacts and logs: `<reports>/<target>/` (default
  `./reports/fuzz/<target>/`).
Nothing is written into the installed package.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit import resources

from .harness import ENV_EXPECT, ENV_INSTRUMENT, ENV_TARGET, ENV_TEXT, harness_command
from .registry import FuzzTarget, absolute_spec, coverage_packages, resolve, target_name

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
RATE_WINDOW = 5.0
"""exec/s is measured over the last this-many seconds of progress lines (libFuzzer's own figure
is an integer division by whole seconds since its process started: 0 after each restart)."""

# Fork mode: "#123: cov: 1 ft: 2 corp: 3 exec/s 4 oom/timeout/crash: 0/0/1 time: 5s job: 6 ..."
_FORK_LINE = re.compile(
    r"#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s (\d+) oom/timeout/crash: (\d+)/(\d+)/(\d+) time: (\d+)s")
# In-process: "#123\tNEW    cov: 1 ft: 2 corp: 3/40b lim: 4 exec/s: 5 rss: ..."
_LINE = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+")
_STAT = re.compile(r"stat::number_of_executed_units:\s+(\d+)")
_WRITTEN = re.compile(r"Test unit written to (\S+)")
_PYTHON_EXCEPTION = " === Uncaught Python exception: ==="
_LIBFUZZER_ERROR = "ERROR: libFuzzer: "
_ERROR_LINE = re.compile(r"^(?:[\w.]+(?:Error|Exception|Exit)\b.*|ERROR: .*|.*[Ee]rror: .*)$")


@dataclass(slots=True)
class Progress:
    execs: int = 0
    exec_per_s: int = 0
    coverage: int = 0
    features: int = 0
    corpus: int = 0
    crashes: int = 0
    elapsed: float = 0.0
    _samples: deque = field(default_factory=deque, repr=False)

    def timed(self, elapsed: float) -> None:
        """Record the time of the latest count and update exec/s over the recent window."""
        self.elapsed = elapsed
        self._samples.append((elapsed, self.execs))
        while len(self._samples) > 2 and elapsed - self._samples[1][0] >= RATE_WINDOW:
            self._samples.popleft()
        start, execs_then = self._samples[0]
        if elapsed - start >= 0.5:
            self.exec_per_s = round((self.execs - execs_then) / (elapsed - start))
        elif elapsed > 0:
            self.exec_per_s = round(self.execs / elapsed)

    def line(self, name: str, elapsed: float | None = None) -> str:
        """One status line; `elapsed` overrides the time of the latest report (a ticking clock)."""
        elapsed = self.elapsed if elapsed is None else elapsed
        return (f"[{name}] {elapsed:5.0f}s  {self.execs:>10,} execs  {self.exec_per_s:>7,} exec/s  "
                f"cov {self.coverage}  ft {self.features}  corpus {self.corpus}  crashes {self.crashes}")


@dataclass(slots=True)
class LiveFinding:
    """An artifact as libFuzzer writes it, before triage: the path and, when the log had it,
    the exception line atheris printed."""

    path: Path
    summary: str = ""


def _cwd_path(*parts: str) -> Callable[[], Path]:
    return lambda: Path.cwd().joinpath(*parts)


@dataclass(slots=True)
class Campaign:
    """Everything one run needs; `spec` is a built-in name or module:function, as the user wrote it."""

    spec: str
    expect: list[str] | None = None
    instrument: list[str] | None = None
    seconds: float | None = 60.0
    runs: int | None = None
    jobs: int = 1
    corpus: Path | None = None
    dictionary: Path | None = None
    corpora: Path = field(default_factory=resources.corpora)
    corpus_dir: Path = field(default_factory=_cwd_path("corpora"))
    reports: Path = field(default_factory=_cwd_path("reports", "fuzz"))
    text: bool = False
    extra_seeds: list[Path] = field(default_factory=list)
    extra_flags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return target_name(self.spec)

    @property
    def child_spec(self) -> str:
        """The spec as child processes (started in other folders) must see it."""
        return absolute_spec(self.spec)

    @property
    def builtin(self) -> bool:
        return ":" not in self.spec

    @property
    def harness(self) -> Path:
        return HARNESSES / f"{self.spec}_fuzzer.py" if self.builtin else GENERIC_HARNESS

    def harness_command(self) -> list[str]:
        return harness_command(self.harness)

    @property
    def seeds(self) -> list[Path]:
        return seed_directories(self.name, [self.corpora, self.corpus_dir], self.extra_seeds)

    @property
    def regressions(self) -> Path:
        return self.corpus_dir / "regressions" / self.name

    @property
    def work(self) -> Path:
        return self.reports / self.name

    def prepare(self) -> FuzzTarget:
        """Import the target here first, so a spec that names nothing, a module that fails to
        import or an unknown exception fails before any fuzzing (TargetError); and settle what
        the harness instruments: --instrument, else what the target declares plus its module."""
        target = resolve(self.spec, expect=self.expect, text=self.text)
        if self.instrument is None:
            self.instrument = list(coverage_packages(self.spec, target))
        return target

    def environment(self) -> dict[str, str]:
        """The harness's environment: target spec and options, and the current directory on
        PYTHONPATH (module:function specs resolve from where rtcgate was started, as with
        `python -m`)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
        env[ENV_TARGET] = self.child_spec
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
        for root in (self.corpus_dir, self.corpora):
            if (default := root / f"{self.name}.dict").is_file():
                return default
        return None


def seed_directories(name: str, roots: Iterable[Path], extra: Iterable[Path] = ()) -> list[Path]:
    """`<root>/<name>/` and `<root>/regressions/<name>/` of each root, then `extra`: those that
    exist, each once."""
    candidates = [folder for root in roots for folder in (root / name, root / "regressions" / name)]
    unique = {path.resolve(): path for path in [*candidates, *extra] if path.is_dir()}
    return list(unique.values())


@dataclass(slots=True)
class CampaignResult:
    campaign: Campaign
    progress: Progress
    artifacts: list[Path]
    log: Path
    seconds: float
    returncode: int

    @property
    def failure(self) -> str | None:
        """Why the campaign proved nothing, or None: the harness never ran an input, or it
        exited in error without leaving an artifact. The reason is the log's last error line."""
        if self.artifacts:
            return None
        if self.progress.execs == 0:
            return f"the harness ran no input (exit {self.returncode}): {last_error(self.log)}"
        if self.returncode != 0:
            return f"the harness exited {self.returncode} without writing an artifact: {last_error(self.log)}"
        return None


def last_error(log: Path) -> str:
    """The last line of a libFuzzer log that reads like an error, else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.match(line) and not line.startswith("WARNING")]
    return (errors or lines or ["no output"])[-1][:300]


def command(campaign: Campaign, corpus: Path, artifacts: Path, seconds: float | None = None,
            seeds: list[Path] | None = None) -> list[str]:
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
    seeds = campaign.seeds if seeds is None else seeds
    return [*campaign.harness_command(), *flags, *campaign.extra_flags, str(corpus), *map(str, seeds)]


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


def copy_seeds(folders: Iterable[Path], into: Path) -> int:
    """Copy every seed file into `into`, named by its SHA-1 as libFuzzer names inputs, so a
    crashing one can be dropped by its artifact's name. Returns how many distinct seeds."""
    from .replay import inputs

    for path in inputs(folders):
        data = path.read_bytes()
        (into / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return sum(1 for _ in into.iterdir())


MAX_RESTARTS = 1000
"""A single-process campaign restarts after each crash; this many crashes end it early."""


def run(campaign: Campaign, on_progress: Callable[[Progress], None] | None = None,
        on_finding: Callable[[LiveFinding], None] | None = None) -> CampaignResult:
    """Fuzz until the time or run budget is spent; return progress and the artifacts written.

    With one job, libFuzzer runs in this process's child directly (fork mode would restart
    the interpreter, and rebuild the target's world, every few seconds) and is started again
    after each crash with the time left, on the corpus it has grown so far, without the
    input that crashed (a crashing seed would otherwise end every restart while loading).
    With more jobs, libFuzzer's fork mode runs them and carries on past crashes itself.
    `on_finding` hears of each new artifact as soon as it is written.
    """
    if campaign.instrument is None:
        campaign.prepare()
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
    reported: set[str] = set()
    with open(log_path, "w") as log, tempfile.TemporaryDirectory(prefix="rtcgate-seeds-") as scratch:
        seeds = Path(scratch)
        copy_seeds(campaign.seeds, seeds)
        for _ in range(MAX_RESTARTS):
            left = None if campaign.seconds is None else campaign.seconds - (time.monotonic() - started)
            if left is not None and left < 1:
                break
            summary = ""
            expecting_summary = False
            execs_before = progress.execs
            with subprocess.Popen(
                command(campaign, corpus, artifacts, left, [seeds]), env=campaign.environment(), cwd=campaign.work,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            ) as process:
                for line in process.stdout:
                    log.write(line)
                    if expecting_summary and line.strip():
                        summary, expecting_summary = line.strip(), False
                    elif line.startswith(_PYTHON_EXCEPTION):
                        expecting_summary = True
                    elif _LIBFUZZER_ERROR in line and not summary and campaign.jobs == 1:
                        # A timeout, an OOM, a deadly signal (fork mode's lines name no job's input).
                        summary = line.split(_LIBFUZZER_ERROR, 1)[1].strip()
                    if _update(progress, line, earlier_execs) or _WRITTEN.search(line):
                        progress.timed(time.monotonic() - started)
                        for path in _new_artifacts(artifacts, reported):
                            progress.crashes = len(reported)
                            if on_finding is not None:
                                on_finding(LiveFinding(path, summary if _WRITTEN.search(line) else ""))
                        if on_progress is not None:
                            on_progress(progress)
                returncode = process.wait()
            earlier_execs = progress.execs
            for path in _new_artifacts(artifacts, reported):
                progress.crashes = len(reported)
                if on_finding is not None:
                    on_finding(LiveFinding(path, summary))
            if returncode == 0 or campaign.runs is not None or campaign.jobs > 1:
                break
            if progress.execs == execs_before:
                break  # it failed before running an input (the harness broke): restarting would fail again
            _drop_crashing_inputs(artifacts, [seeds, corpus])
        log.flush()
    progress.timed(time.monotonic() - started)
    if progress.elapsed > 0:
        progress.exec_per_s = round(progress.execs / progress.elapsed)  # the campaign's average, for the report
    found = sorted(p for p in artifacts.iterdir() if p.name.startswith(ARTIFACT_PREFIXES))
    progress.crashes = max(progress.crashes, len(found))
    return CampaignResult(campaign, progress, found, log_path, progress.elapsed, returncode)


def _new_artifacts(artifacts: Path, reported: set[str]) -> list[Path]:
    fresh = sorted(p for p in artifacts.iterdir() if p.name.startswith(ARTIFACT_PREFIXES) and p.name not in reported)
    reported.update(p.name for p in fresh)
    return fresh


def _drop_crashing_inputs(artifacts: Path, folders: list[Path]) -> None:
    """Remove from the scratch seeds and the working corpus every input an artifact names
    (crash-<sha1>): libFuzzer loads those first on a restart and would stop on them again."""
    for artifact in artifacts.iterdir():
        digest = artifact.name.partition("-")[2]
        for folder in folders:
            (folder / digest).unlink(missing_ok=True)


def _update(progress: Progress, line: str, earlier_execs: int = 0) -> bool:
    if match := _FORK_LINE.search(line):
        execs, cov, ft, corp, _rate, ooms, timeouts, crashes, _ = map(int, match.groups())
        progress.execs, progress.coverage, progress.features, progress.corpus = execs, cov, ft, corp
        progress.crashes = max(progress.crashes, ooms + timeouts + crashes)
        return True
    if match := _LINE.search(line):
        execs, cov, ft, corp = map(int, match.groups())
        progress.execs, progress.coverage, progress.features = earlier_execs + execs, cov, ft
        progress.corpus = corp
        return True
    if match := _STAT.search(line):
        progress.execs = earlier_execs + int(match.group(1))
        return True
    return False
