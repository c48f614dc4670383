"""`rtcgate load`: legit sessions at a fixed rate, measured quiet and under each attack mix."""
from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from toolkit.commands.arguments import integer, positive_number, whole

EXIT_STATUS = {
    0: "every verdict holds",
    1: "a verdict does not hold",
    2: "bad arguments, or the target cannot be reached or started",
}


def register(commands) -> None:
    load = commands.add_parser(
        "load",
        help="measure setup time, RTT, jitter and loss of N sessions, quiet and under attack",
        description="Set up N sessions (WHIP, ICE, DTLS, SRTP), send 20 ms media from each, and measure "
        "RTT, jitter and loss per session in windows: quiet first, then under each --attack mix. "
        "Writes JSON and a self-contained HTML report.",
        epilog="attack kinds: garbage, stun-unknown-ufrag, stun-bad-credentials, clienthello-unbound, "
        "srtp-bad-tag; 'mix' is all five. Examples: --attack garbage@2000 --attack mix@5k",
    )
    target = load.add_argument_group("target (exactly one)")
    target.add_argument("--whip", metavar="URL", help="WHIP endpoint (RFC 9725) of the server under test")
    target.add_argument("--reference", action="store_true",
                        help="start the reference server (rtcgate serve) on free ports and load it")
    load.add_argument("--sessions", type=whole, default=10, metavar="N", help="legit sessions")
    load.add_argument("--duration", type=positive_number, default=10.0, metavar="S",
                      help="seconds per measured window: the quiet one and each attack's")
    load.add_argument("--attack", metavar="MIX@PPS", action="append", default=[],
                      help="an attack window: KIND[+KIND...]@PPS or mix@PPS (repeatable)")
    load.add_argument("--pps", type=positive_number, default=50.0, help="packets per second per session")
    load.add_argument("--payload-bytes", type=whole, default=160, metavar="B",
                      help="RTP payload size (one Opus frame at ~64 kbit/s is 160)")
    load.add_argument("--media", choices=("probe", "speech"), default=None,
                      help="probe: timestamped payloads an echo target sends back (RTT per packet); "
                      "speech: the speech sample for voice targets (RTT from RTCP). Default: probe, "
                      "or speech with --reference --server-media voice")
    load.add_argument("--server-media", choices=("echo", "voice"), default="echo",
                      help="with --reference: what the started server does with audio")
    load.add_argument("--metrics-url", metavar="URL", help="the target's Prometheus /metrics (default: on the WHIP origin)")
    load.add_argument("--setup-concurrency", type=whole, default=16, metavar="N",
                      help="sessions set up at once")
    load.add_argument("--source-ports", type=whole, default=64, metavar="N",
                      help="source ports the attack traffic comes from")
    load.add_argument("--p99-goal", type=positive_number, default=2.0, metavar="X",
                      help="verdict: legit p99 RTT under attack below X times quiet")
    load.add_argument("--seed", type=integer, default=0, help="seed of the attack traffic")
    load.add_argument("--report-dir", metavar="DIR", default="reports", help="where reports go")
    load.add_argument("--name", default="load", help="file name stem of the report")
    load.add_argument("--quiet", action="store_true", help="no live progress display")
    load.set_defaults(handler=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from toolkit.load.accounting import LoadError
    from toolkit.load.attacks import parse_attack

    if bool(args.whip) == bool(args.reference):
        print("rtcgate load: give exactly one target: --whip URL or --reference", file=sys.stderr)
        return 2
    try:
        attacks = tuple(parse_attack(text) for text in args.attack)
    except LoadError as exc:
        print(f"rtcgate load: {exc}", file=sys.stderr)
        return 2
    media = args.media or ("speech" if args.reference and args.server_media == "voice" else "probe")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_run(args, attacks, media))


async def _run(args: argparse.Namespace, attacks: tuple, media: str) -> int:
    from toolkit.conformance.targets import ReferenceTarget, TargetError
    from toolkit.load.accounting import LoadError
    from toolkit.load.report import write_report
    from toolkit.load.run import LoadConfig, LoadRun

    reference = None
    whip = args.whip
    if args.reference:
        reference = ReferenceTarget(media=args.server_media, consent_timeout=30.0)
        try:
            await asyncio.to_thread(reference.start)
        except TargetError as exc:
            print(f"rtcgate load: {exc}", file=sys.stderr)
            return 2
        whip = reference.whip_url
        print(f"rtcgate load: started the reference server ({args.server_media}) at {reference.http_url}")
    try:
        config = LoadConfig(
            whip_url=whip, sessions=args.sessions, duration=args.duration, attacks=attacks, pps=args.pps,
            payload_bytes=args.payload_bytes, media=media, metrics_url=args.metrics_url,
            setup_concurrency=args.setup_concurrency, source_ports=args.source_ports, seed=args.seed,
            p99_goal=args.p99_goal, command=shlex.join(["rtcgate", *sys.argv[1:]]))
        windows = 1 + len(attacks)
        print(f"rtcgate load: {args.sessions} sessions × {args.pps:g} pps against {whip}; "
              f"{windows} window(s) of {args.duration:g} s ({'quiet' if not attacks else 'quiet, ' + ', '.join(map(str, attacks))})")
        if args.quiet:
            result = await LoadRun(config).run()
        else:
            display = LoadDisplay(args.sessions)
            run = LoadRun(config, display.tick, display.window)
            display.watch(run.progress)
            try:
                result = await run.run()
            finally:
                display.close()
    except LoadError as exc:
        print(f"rtcgate load: {exc}", file=sys.stderr)
        return 2
    finally:
        if reference is not None:
            await asyncio.to_thread(reference.stop)
    json_path, html_path = write_report(result, Path(args.report_dir), args.name)
    from toolkit import console as terminal

    console = terminal.stdout()
    console.print()
    print_summary(result, console)
    console.print(f"report: {html_path} (JSON: {json_path})")
    return 0 if all(verdict["ok"] for verdict in result["verdicts"]) else 1


class LoadDisplay:
    """The run's progress on stderr. On a terminal: a rich progress bar (sessions set up, then
    each window's seconds) with the live figures. Elsewhere: one plain line when setup is done
    and one when each window ends, with its figures (a CI log gets a handful of lines)."""

    def __init__(self, sessions: int, console=None) -> None:
        from toolkit import console as terminal

        self.console = console or terminal.stderr()
        self.progress = None  # the run's live figures, once `watch` names them
        self.set_up = False
        self.bar = None
        if terminal.is_live(self.console):
            from rich.progress import BarColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[figures]}"),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("setting up", total=sessions, figures="")

    def watch(self, progress) -> None:
        self.progress = progress

    def tick(self, progress) -> None:
        """Once a second (LoadRun's on_progress): the bar follows the figures."""
        if self.bar is None:
            return
        if progress.phase == "setup":
            self.bar.update(self.task, completed=progress.sessions_up + progress.sessions_failed,
                            figures=f"{progress.sessions_up} up, {progress.sessions_failed} failed")
        else:
            self.bar.update(self.task, completed=progress.window_elapsed, figures=_figures(progress))

    def window(self, name: str, edge: str) -> None:
        """At each window's edges (LoadRun's on_window): the setup line first, a line per window end."""
        progress = self.progress
        if edge == "start":
            if not self.set_up:
                self.set_up = True
                self.console.print(f"set up: {progress.sessions_up} up, {progress.sessions_failed} failed")
            if self.bar is not None:
                self.bar.remove_task(self.task)
                self.task = self.bar.add_task(name, total=progress.window_length, figures="")
        else:
            self.console.print(f"[{name} {progress.window_elapsed:4.1f}/{progress.window_length:g} s] "
                               f"{_figures(progress)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _figures(progress) -> str:
    return (f"sessions {progress.sessions_up} · sent {progress.sent} · echoed {progress.received}"
            + (f" · attack {progress.attack_sent} pkts" if progress.attack_sent else ""))


def summary_table(result: dict):
    """The windows side by side: a rich Table."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, header_style="bold")
    for name, justify in (("window", "left"), ("sent", "right"), ("lost", "right"), ("reord", "right"),
                          ("p50 ms", "right"), ("p99 ms", "right"), ("max ms", "right"), ("jitter", "right"),
                          ("sessions", "right"), ("voice-to-voice p99", "left")):
        table.add_column(name, justify=justify)
    voice = any(scenario["media"].get("voice_to_voice") for scenario in result["scenarios"])
    if not voice:
        table.columns.pop()
    for scenario in result["scenarios"]:
        media, server = scenario["media"], scenario["server"]
        sessions = "-" if server["sessions_start"] is None else f"{server['sessions_start']}→{server['sessions_end']}"
        row = [scenario["name"], str(media["sent"]), str(media["lost"]), str(media["reordered"]),
               _ms(media["rtt"]["p50"]), _ms(media["rtt"]["p99"]), _ms(media["rtt"]["max"]),
               _ms(media["jitter"]["p50"]), sessions]
        if voice:
            v2v = media.get("voice_to_voice")
            row.append(f"{_ms(v2v['p99'])} ms ({v2v['count']} turns)" if v2v else "-")
        table.add_row(*row)
    return table


def print_summary(result: dict, console) -> None:
    """Setup figures, the windows table and the verdicts (one `PASS  name: value (goal …)` line each)."""
    from rich.text import Text

    from toolkit.console import STATUS_STYLES

    setup = result["setup"]
    total = setup["phases_ms"]["total"]
    console.print(f"setup: {setup['sessions'] - setup['failed']}/{setup['sessions']} sessions; total p50 "
                  f"{_ms(total['p50'])} p99 {_ms(total['p99'])}")
    console.print(summary_table(result))
    for verdict in result["verdicts"]:
        value = verdict["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        word = "PASS" if verdict["ok"] else "FAIL"
        line = Text(word, style=STATUS_STYLES[word])
        line.append(f"  {verdict['name']}: {shown} (goal {verdict['goal']})")
        console.print(line)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.2f}"
