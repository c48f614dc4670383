"""`rtcgate check`: the conformance gate — run the catalog against a target, write the reports.

Exit status (`EXIT_STATUS`): 0 when nothing FAILs or XPASSes, 1 when something does, 2 when there is no verdict:
the arguments are wrong, the target cannot be reached, or rtcgate itself failed (the one-line
message says which). The reports are written whenever the run started, a stopped one included
(they say why it stopped; rtcgate's own failures are errors in them, never failures). By default
only a broken MUST FAILs; SHOULD and POLICY findings are WARNs unless `--strict` or `--profile
hardened` says so.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from toolkit.commands.arguments import (
    did_you_mean,
    host_port,
    http_header,
    integer,
    non_negative_number,
    positive_number,
    whole,
)
from toolkit.conformance.model import RFC_CONSENT_TIMEOUT, PerfThresholds, Settings, perf_option

EXIT_STATUS = {
    0: "nothing FAILed or XPASSed (WARNs do not gate unless --strict or --profile hardened says so)",
    1: "a check FAILed or XPASSed",
    2: "no verdict: bad arguments, the target cannot be reached or started, or rtcgate itself failed "
       "(the reports say why)",
}
DEFAULT_CONSENT_TIMEOUT = RFC_CONSENT_TIMEOUT
REFERENCE_CONSENT_TIMEOUT = 3.0
"""The reference server is started with a short consent timeout so ICE-06 takes seconds, not half a minute."""


@dataclass(frozen=True)
class PerfOption:
    """The `--perf-*` option of one `PerfThresholds` field, made from the field's metadata: the
    command line's, the pytest plugin's (`--rtc-perf-*`), and what replay lines say."""

    name: str
    """The PerfThresholds field."""
    flag: str
    parse: Callable[[str], float]
    metavar: str
    help: str
    default: float

    @property
    def dest(self) -> str:
        return "perf_" + self.name


def perf_options() -> tuple[PerfOption, ...]:
    """One option per PerfThresholds field: a whole number ≥ 1 for an int, else a positive number
    (≥ 0 where the metadata allows zero); the unit is the metavar."""

    def parser(threshold: dataclasses.Field) -> Callable[[str], float]:
        if isinstance(threshold.default, int):
            return whole
        return non_negative_number if threshold.metadata["zero"] else positive_number

    return tuple(PerfOption(threshold.name, perf_option(threshold.name), parser(threshold),
                            threshold.metadata["unit"], threshold.metadata["help"], threshold.default)
                 for threshold in dataclasses.fields(PerfThresholds))


def perf_thresholds(values: dict[str, float | None]) -> PerfThresholds:
    """The PerfThresholds the options give (`values`: option dest → parsed value, None when not
    given); a threshold not given keeps its default."""
    given = {option.name: values.get(option.dest) for option in perf_options()}
    return PerfThresholds(**{name: value for name, value in given.items() if value is not None})


def register(commands) -> None:
    check = commands.add_parser(
        "check", help="run the conformance catalog against a WebRTC server",
        description="Run the conformance catalog (rtcgate check --list; docs/checks.md) against a target and "
                    "write JUnit XML, JSON, SARIF and HTML reports, with a pcap, key log and replay command for "
                    "every failure.")
    target = check.add_argument_group("target (exactly one, unless --list)")
    target.add_argument("--whip", metavar="URL", help="WHIP endpoint (RFC 9725)")
    target.add_argument("--calls-url", metavar="URL", help="realtime-calls endpoint (POST an SDP offer, get the answer)")
    target.add_argument("--signaling", metavar="MODULE:FUNCTION",
                        help="your Python callable: offer SDP in, answer SDP out (sync or async)")
    target.add_argument("--reference", action="store_true",
                        help="start the reference server on free loopback ports and check it")
    target.add_argument("--header", metavar="'NAME: VALUE'", type=http_header, action="append", default=[],
                        help="an HTTP header for every WHIP request of --whip or --calls-url (repeatable), e.g. "
                             "'Authorization: Bearer TOKEN' (RFC 9725 §4.5); values never appear in reports")
    check.add_argument("--expect-echo", action="store_true",
                       help="the target is an echo server: the run stops (exit 2) unless it sends our media back; "
                            "by default the first sanity conversation learns whether it echoes, and against one "
                            "that does not (a realtime voice service) the checks that judge by echoes SKIP")
    check.add_argument("--profile", metavar="NAMES",
                       help="comma-separated profiles to run: core,lite,security,voice,perf; 'hardened' runs "
                            "them all (or those named with it) and gates on every level, as --strict policy")
    check.add_argument("--strict", choices=("must", "should", "policy"), default=None,
                       help="the weakest requirement level that FAILs the run: must (default: SHOULD and POLICY "
                            "findings are WARN, exit 0), should (SHOULD fails too), policy (everything fails)")
    check.add_argument("--only", metavar="ID", nargs="+", action="extend", help="run only these check IDs")
    check.add_argument("--xfail", metavar="FILE", help="expected-failures file: one 'CHECK-ID  # why' per line")
    check.add_argument("--report-dir", metavar="DIR", default="reports", help="where reports go")
    check.add_argument("--seed", type=integer, help="seed for everything random (default: a fresh one, printed)")
    check.add_argument("--list", action="store_true", help="list the selected checks and exit")
    check.add_argument("--consent-timeout", type=positive_number, metavar="S",
                       help=f"the target's ICE consent timeout, for ICE-06 (default: {DEFAULT_CONSENT_TIMEOUT:g}; "
                            f"--reference starts its server with {REFERENCE_CONSENT_TIMEOUT:g})")
    check.add_argument("--silence", type=positive_number, default=Settings().silence, metavar="S",
                       help="how long 'no answer' is waited for; raise it for distant targets")
    check.add_argument("--dtls-role", choices=["auto", "client", "server"], default="auto",
                       help="the probe's DTLS role: auto offers a=setup:actpass and takes the role the answer "
                            "leaves; client offers active, server offers passive (with --reference, "
                            "the reference server then answers active)")
    check.add_argument("--remote", type=host_port, metavar="HOST:PORT",
                       help="send media to this address instead of the answer's candidate (NAT, containers)")
    perf = check.add_argument_group("PERF thresholds (the user's)")
    for option in perf_options():
        perf.add_argument(option.flag, dest=option.dest, type=option.parse, metavar=option.metavar,
                          help=f"{option.help} (default: {option.default:g})".replace("%", "%%"))
    check.set_defaults(handler=run)


HARDENED = "hardened"
"""The profile of the reference server's own standard: the whole catalog, every level gating."""


def selected_profiles(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def strictness(strict: str | None, profile: str | None):
    """The `Level` that gates: --strict's, or POLICY under --profile hardened, or MUST."""
    from toolkit.conformance.model import STRICTNESS, Level

    if strict is not None:
        return STRICTNESS[strict]
    return Level.POLICY if HARDENED in selected_profiles(profile) else Level.MUST


class SelectionError(ValueError):
    """--profile and --only name no check, or one that does not exist; the message says which."""


def choose_checks(profile: str | None, only: Sequence[str] | None, *, profile_option: str = "--profile",
                  only_option: str = "--only"):
    """The catalog checks that --profile and --only select, in catalog order. `--only SANITY`
    selects none: the run is the sanity conversation alone (the replay of a sanity finding).
    Shared with the pytest plugin, whose options are named differently."""
    from toolkit.conformance.checks import CATALOG, SANITY
    from toolkit.conformance.model import PROFILES

    checks = list(CATALOG)
    profiles = [name for name in selected_profiles(profile) if name != HARDENED]
    unknown = [name for name in profiles if name not in PROFILES]
    if unknown:
        known = (*PROFILES, HARDENED)
        raise SelectionError(f"{profile_option}: unknown profile {', '.join(unknown)}"
                             f"{did_you_mean(unknown[0], known)} (known: {', '.join(known)})")
    if profiles:
        checks = [c for c in checks if c.profile in profiles]
    if only:
        wanted = [name.upper() for name in only]
        known = {c.id for c in CATALOG} | {SANITY.id}
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise SelectionError(f"{only_option}: no check {', '.join(unknown)} in the catalog"
                                 f"{did_you_mean(unknown[0], known)} (rtcgate check --list lists them)")
        checks = [c for c in checks if c.id in wanted]
        if not checks and SANITY.id in wanted:
            return []
    if not checks:
        raise SelectionError(f"no check matches {profile_option} and {only_option} together")
    return checks


def select_checks(args: argparse.Namespace, parser: argparse.ArgumentParser):
    try:
        return choose_checks(args.profile, args.only)
    except SelectionError as exc:
        parser.error(str(exc))


class Progress:
    """One line per finished check on stderr (all a log gets); on a terminal, also a rich
    progress bar naming the running check, and the verdicts in colour."""

    def __init__(self, console=None) -> None:
        from toolkit import console as terminal

        self.console = console or terminal.stderr()
        self.styles = terminal.STATUS_STYLES
        self.bar = None
        if terminal.is_live(self.console):
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=self.console, transient=True)
            self.task = self.bar.add_task("checks", total=None)

    def __call__(self, index: int, total: int, check, result) -> None:
        from rich.text import Text

        width = len(str(total))
        prefix = f"[{index:>{width}}/{total}] {check.id:<11}"
        if result is None:
            if self.bar is not None:
                self.bar.start()
                self.bar.update(self.task, description=f"{check.id} running…", completed=index - 1, total=total)
            return
        status = result.status.value
        reason = f"  {result.message}" if result.message and status != "PASS" else ""
        line = Text(f"{prefix} ")
        line.append(f"{status:<5}", style=self.styles.get(status, ""))
        line.append(f" {result.duration:6.2f}s{reason[:160]}")
        self.console.print(line)
        if self.bar is not None:
            self.bar.update(self.task, completed=index)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def summary_table(run):
    """Results per family and status, with the totals: a rich Table."""
    from collections import Counter

    from rich import box
    from rich.table import Table

    from toolkit.conformance.model import Status
    from toolkit.console import STATUS_STYLES

    families: dict[str, Counter] = {}
    for result in run.results:
        families.setdefault(result.check.family, Counter())[result.status] += 1
    totals = run.counts()
    table = Table(box=box.SIMPLE, show_edge=False, show_footer=True, pad_edge=False, header_style="bold", footer_style="bold")
    table.add_column("family", footer="total")
    for status in Status:
        table.add_column(status.value, justify="right", footer=str(totals.get(status, 0)),
                         header_style=STATUS_STYLES.get(status.value, ""))
    for family, counts in families.items():
        table.add_row(family, *(str(counts.get(status, 0)) for status in Status))
    return table


def print_summary(run, paths, console=None) -> None:
    """The summary on stdout: the family table, every finding with its evidence, the verdict."""
    from rich.text import Text

    from toolkit import console as terminal
    from toolkit.conformance.model import Status
    from toolkit.reports.common import VERDICTS

    console = console or terminal.stdout()
    console.print()
    console.print(summary_table(run))
    findings = [r for r in (*run.sanity, *run.results) if r.status.bad or r.status in (Status.WARN, Status.ERROR)]
    if findings:
        console.print()
        for result in findings:
            line = Text(result.status.value, style=terminal.STATUS_STYLES.get(result.status.value, ""))
            line.append(f" {result.check.id} [{result.check.level.value}]: {result.message}")
            console.print(line)
            if result.check.requirement:
                console.print(f"    requires: {result.check.requirement.cite}: {result.check.requirement.text}")
            console.print(f"    replay: {result.replay}")
            if "pcap" in result.artifacts:
                console.print(f"    evidence: {paths['html'].parent / 'evidence' / result.check.id}")
    console.print()
    if run.target_echoes is not None:
        console.print(f"target echoes: {'yes' if run.target_echoes else 'no: checks that judge by echoes SKIP'}")
    gates = {"MUST": "only MUST gates", "SHOULD": "MUST and SHOULD gate", "POLICY": "every level gates"}
    verdict = Text(f"{run.target}: {len(run.results)} checks in {run.duration:.1f} s, seed {run.seed} — ")
    verdict.append(VERDICTS[run.exit_code], style="bold green" if run.exit_code == 0 else "bold red")
    verdict.append(f" ({gates[run.strict.value]})")
    console.print(verdict)
    console.print(f"reports: {paths['html']} (also {paths['junit'].name}, {paths['json'].name}, {paths['sarif'].name})")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from toolkit.conformance.checks import BY_ID
    from toolkit.conformance.targets import ReferenceTarget, TargetError, make_target
    from toolkit.conformance.xfail import XfailError, load_xfail

    checks = select_checks(args, parser)
    if args.list:
        for check in checks:
            print(f"{check.id:<11} {check.profile:<9} {check.level.value:<6} {check.title}  "
                  f"[{check.requirement.cite if check.requirement else check.rfc}]")
        return 0
    try:
        target = make_target(whip=args.whip, calls_url=args.calls_url, signaling=args.signaling,
                             reference=args.reference, remote=args.remote, headers=args.header)
    except TargetError as exc:
        parser.error(str(exc))
    xfail = {}
    if args.xfail:
        try:
            xfail = load_xfail(args.xfail, known_ids=BY_ID)
        except XfailError as exc:
            parser.error(str(exc))
    if isinstance(target, ReferenceTarget):
        target.consent_timeout = args.consent_timeout or REFERENCE_CONSENT_TIMEOUT
        if args.dtls_role == "server":  # the reference then plays the client: it answers a=setup:active
            target.dtls_role = "client"
    if args.expect_echo:
        target.echoes = True
    settings = run_settings(args)
    print(f"rtcgate check: {len(checks)} checks, seed {settings.seed}", file=sys.stderr)
    result = play(target, checks, settings, xfail)
    from toolkit.reports.conformance import write_reports

    try:
        paths = write_reports(result, args.report_dir)
    except OSError as exc:
        print(f"rtcgate check: cannot write the reports to {args.report_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print_summary(result, paths)
    if result.stopped:
        print(f"rtcgate check: {result.stopped}", file=sys.stderr)
    return result.exit_code


def run_settings(args: argparse.Namespace):
    """The Settings the arguments give; without --seed, a fresh seed."""
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    return Settings(seed=seed, silence=args.silence, strict=strictness(args.strict, args.profile),
                    dtls_role=args.dtls_role, consent_timeout=args.consent_timeout or DEFAULT_CONSENT_TIMEOUT,
                    perf=perf_thresholds(vars(args)))


def play(target, checks, settings, xfail: dict[str, str]):
    """Sanity, the checks, sanity, as a RunResult. A run that stops early comes back as one too,
    saying why in `stopped` (exit 2), so its reports are written all the same: the target cannot
    be reached (it cannot be started, or the first sanity conversation fails), or rtcgate itself
    raised (a bug: the traceback goes into the reports, not onto the terminal)."""
    import datetime

    from toolkit.conformance.checks import SANITY
    from toolkit.conformance.runner import TargetUnreachable, run_checks
    from toolkit.conformance.targets import TargetError

    started_wall = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    progress = Progress()
    try:
        target.start()
        return asyncio.run(run_checks(target, checks, settings, sanity=SANITY, xfail=xfail, progress=progress))
    except TargetUnreachable as exc:
        if exc.run is not None:
            return exc.run
        reason, notes = f"the target cannot be reached: {exc}", []
    except TargetError as exc:
        reason, notes = f"the target cannot be reached: {exc}", []
    except Exception as exc:  # a bug in rtcgate: an error in the reports, never a verdict on the target
        reason, notes = f"rtcgate itself failed: {type(exc).__name__}: {exc}", [traceback.format_exc()]
    finally:
        progress.close()
        target.stop()
    return stopped_run(target, settings, reason, notes, started_wall, time.monotonic() - started)


def stopped_run(target, settings, reason: str, notes: list[str], started: str, duration: float):
    """The RunResult of a run that stopped with none of its own: one ERROR, saying why, in the
    place of the sanity conversation that could not be played (or judged)."""
    from toolkit.conformance.checks import SANITY
    from toolkit.conformance.model import CheckResult, Status
    from toolkit.conformance.runner import RunResult, replay_command

    sanity = CheckResult(check=SANITY, status=Status.ERROR, message=reason, duration=duration, seed=settings.seed,
                         notes=notes, replay=replay_command(target, SANITY.id, settings))
    return RunResult(target.description, settings.seed, started, duration, [], sanity=[sanity],
                     strict=settings.strict, stopped=reason)
