"""`rtcgate fuzz`: coverage-guided fuzzing of the reference server's parsers and core, or of
any parser, with crash triage and replay.

Reads seeds from the corpora shipped with rtcgate and from the user's corpus directory;
writes only under the current directory (or the folders the options name): reports, logs,
artifacts and the working corpus under `<report-dir>/fuzz/<target>/`, new reproducers under
`<corpus-dir>/regressions/<target>/`. Exit 0: no findings; 1: findings; 2: an error (bad
usage, a target that cannot be imported, a harness that ran nothing, nothing to replay).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.commands.arguments import integer, non_negative_number, non_negative_whole, positive_number, whole

EXIT_STATUS = {
    0: "no findings (every replayed input passed)",
    1: "findings (reproducers stored, report written), or a network finding",
    2: "bad usage, a target that cannot be imported, a harness that ran no input or failed without an "
       "artifact, nothing to replay, an unreachable --whip target",
}

_EXAMPLES = """\
examples:
  rtcgate fuzz --list
  rtcgate fuzz stun_parse --time 300
  rtcgate fuzz server_receive --time 600 --jobs 2
  rtcgate fuzz --target aiortc.rtp:RtpPacket.parse --expect ValueError --time 300
  rtcgate fuzz --target aiortc.sdp:SessionDescription.parse --text --expect ValueError --seeds my-sdp-seeds/
  rtcgate fuzz --target tests/my_targets.py:fuzz_my_parser --time 60
  rtcgate fuzz --replay                      (every built-in target's seeds and regressions)
  rtcgate fuzz --replay demux --input corpora/regressions/demux/IndexError-0123456789ab
  rtcgate fuzz stun_parse --corpus-dir toolkit/corpora   (rtcgate's own developers: commit the reproducers)
  rtcgate fuzz --whip http://127.0.0.1:8080/whip --batches 20 --batch-size 50 --seed 7
  rtcgate fuzz --whip http://127.0.0.1:8080/whip --seed 7 --only-batch 3   (replay a network finding)

where things go (relative paths are to the current directory):
  seeds, read:        the corpora shipped with rtcgate (or --corpora), and <corpus-dir>/<target>/ and
                      <corpus-dir>/regressions/<target>/, and every --seeds folder
  reproducers:        <corpus-dir>/regressions/<target>/ (default ./corpora/regressions/<target>/);
                      every later --replay runs them; the printed replay commands work from here
  reports and logs:   <report-dir>/fuzz/<target>/ (default ./reports/fuzz/<target>/): findings.md,
                      findings.json, the libFuzzer log, artifacts/, and the working corpus (--corpus)

"""


def register(commands) -> None:
    fuzz = commands.add_parser(
        "fuzz", help="fuzz the reference server's parsers and core, or any parser (atheris/libFuzzer)",
        description="Fuzz a target with atheris (libFuzzer), triage what it finds (deduplicate, minimize, "
                    "store reproducers, write a report), or replay saved inputs. A target's contract: only "
                    "its declared exceptions may escape. Findings are printed as they are found.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    fuzz.add_argument("targets", nargs="*", metavar="TARGET",
                      help="built-in target name (see --list); with --replay, any number (default: all)")
    fuzz.add_argument("--list", action="store_true", help="list the built-in targets and exit")
    fuzz.add_argument("--target", metavar="MODULE:FUNCTION",
                      help="fuzz any function of bytes: a dotted module or a .py path (relative to the current "
                           "directory), then the attribute (e.g. aioice.stun:parse_message, tests/t.py:fuzz_x)")
    fuzz.add_argument("--expect", action="append", metavar="EXCEPTION",
                      help="declared exception the target may raise (repeatable; builtins by name, others "
                           "dotted); replaces the target's own declaration")
    fuzz.add_argument("--instrument", action="append", metavar="PACKAGE",
                      help="package to collect coverage from (repeatable; default: what the target declares "
                           "with @fuzz_target(instrument=...), plus its own top package)")
    fuzz.add_argument("--text", action="store_true",
                      help="the function parses text: hand it the input decoded as UTF-8 (else Latin-1)")
    fuzz.add_argument("--time", type=positive_number, default=None, metavar="S",
                      help="seconds to fuzz (default 60, unless --runs is given)")
    fuzz.add_argument("--runs", type=whole, default=None, metavar="N",
                      help="run N inputs in one process instead (stops at the first crash)")
    fuzz.add_argument("--jobs", type=whole, default=1, metavar="N", help="parallel fuzzing processes (-fork=N)")
    fuzz.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR",
                      help="reports, logs, artifacts and the working corpus go under DIR/fuzz/<target>/")
    fuzz.add_argument("--corpus-dir", type=Path, default=Path("corpora"), metavar="DIR",
                      help="your corpora: DIR/<target>/ and DIR/regressions/<target>/ are read as seeds, new "
                           "reproducers are written to DIR/regressions/<target>/, DIR/<target>.dict is the "
                           "default dictionary")
    fuzz.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                      help="working corpus libFuzzer adds to (default <report-dir>/fuzz/<target>/corpus)")
    fuzz.add_argument("--seeds", action="append", type=Path, default=[], metavar="DIR",
                      help="more read-only seed directories (repeatable)")
    fuzz.add_argument("--dict", type=Path, default=None, metavar="FILE", dest="dictionary",
                      help="libFuzzer dictionary (default <corpus-dir>/<target>.dict, else the shipped one)")
    fuzz.add_argument("--corpora", type=Path, default=None, metavar="DIR",
                      help="read-only root of seed corpora, regressions and dictionaries in place of the ones "
                           "shipped with rtcgate (never written)")
    fuzz.add_argument("--minimize-time", type=non_negative_number, default=10.0, metavar="S",
                      help="wall seconds of -minimize_crash per distinct finding (0: keep inputs as found)")
    fuzz.add_argument("--triage-time", type=non_negative_number, default=30.0, metavar="S",
                      help="wall seconds of minimization in all, two findings at a time; "
                           "findings past it are stored as found")
    fuzz.add_argument("--replay", action="store_true",
                      help="replay saved inputs instead of fuzzing: every seed and regression of the target "
                           "(shipped and under --corpus-dir), or the --input paths")
    fuzz.add_argument("--input", action="append", type=Path, metavar="PATH",
                      help="with --replay: a file or directory to replay (repeatable)")
    network = fuzz.add_argument_group(
        "network mutation fuzzing", "mutate STUN, SRTP, SRTCP and DTLS inside live sessions of a WHIP target; "
        "after each batch a fresh session must get its RTP echoed. Exit 0: no finding, 1: finding "
        "(<report-dir>/fuzz/network/finding-<batch>.json), 2: target unreachable")
    network.add_argument("--whip", metavar="URL", help="fuzz this live WHIP endpoint instead of a parser")
    network.add_argument("--batches", type=whole, default=20, metavar="N", help="batches (default 20)")
    network.add_argument("--batch-size", type=whole, default=50, metavar="M",
                         help="mutated datagrams per batch (default 50)")
    network.add_argument("--seed", type=integer, default=0, metavar="S", help="batch N is seeded with S + N")
    network.add_argument("--only-batch", type=non_negative_whole, default=None, metavar="N", help="run only batch N (a replay)")
    fuzz.set_defaults(handler=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from toolkit import resources
    from toolkit.fuzz.registry import TargetError

    try:
        if args.whip:
            return _network(args)
        if args.list:
            return _list()
        corpora = (args.corpora or resources.corpora()).resolve()
        if args.replay:
            return _replay(args, corpora)
        return _fuzz(args, parser, corpora)
    except (TargetError, OSError) as exc:
        print(f"rtcgate fuzz: {exc}", file=sys.stderr)
        return 2


def _network(args: argparse.Namespace) -> int:
    import asyncio

    from toolkit.fuzz.network import mutate_live

    result = asyncio.run(mutate_live(args.whip, batches=args.batches, batch_size=args.batch_size, seed=args.seed,
                                     only_batch=args.only_batch, report_dir=args.report_dir / "fuzz" / "network",
                                     progress=lambda line: print(line, flush=True)))
    if result.unreachable is not None:
        print(f"rtcgate fuzz: target unreachable: {result.unreachable}", file=sys.stderr)
        return 2
    print(f"{result.batches_run} batch(es), {result.datagrams_sent} datagrams, "
          f"{result.sanity_checks} sanity conversations")
    if result.finding is None:
        print("no findings")
        return 0
    print(f"finding: batch {result.finding.batch}: {result.finding.reason}")
    print(f"  reproducer {result.finding.report}")
    print(f"  replay: {result.finding.replay}")
    return 1


def _list() -> int:
    from toolkit.fuzz.registry import builtin_targets

    for name, target in builtin_targets().items():
        declared = ", ".join(cls.__name__ for cls in target.expect) or "nothing"
        print(f"{name:16} {target.description}  [may raise: {declared}]")
    return 0


def _specs(args: argparse.Namespace) -> list[str]:
    return [args.target] if args.target else list(args.targets)


def _replay(args: argparse.Namespace, corpora: Path) -> int:
    from toolkit.fuzz.campaign import seed_directories
    from toolkit.fuzz.registry import builtin_targets, resolve, target_name
    from toolkit.fuzz.replay import replay
    from toolkit.fuzz.triage import shown_path

    missing = [path for path in args.input or [] if not path.exists()]
    if missing:
        print(f"rtcgate fuzz: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    specs = _specs(args) or list(builtin_targets())
    failed, empty = 0, []
    for spec in specs:
        target = resolve(spec, expect=args.expect, text=args.text)
        name = target_name(spec)
        paths = args.input or seed_directories(name, [corpora, args.corpus_dir.resolve()])
        outcomes = replay(target, paths)
        if not outcomes:
            looked = ", ".join(shown_path(path) for path in paths) if paths else (
                f"no {name}/ or regressions/{name}/ under {shown_path(corpora)} or {shown_path(args.corpus_dir)}")
            empty.append(f"{name} ({looked})")
            continue
        bad = [outcome for outcome in outcomes if outcome.error is not None]
        failed += len(bad)
        print(f"{name}: {len(outcomes)} inputs, {len(bad)} failing")
        for outcome in bad:
            frame = outcome.frames[-1] if outcome.frames else ("?", 0, "?")
            message = outcome.message.splitlines()[0] if outcome.message else ""
            print(f"  {shown_path(Path(outcome.path))}: {outcome.error}: {message}"
                  f"  (at {frame[0]}:{frame[1]} in {frame[2]})")
    if empty:
        print(f"rtcgate fuzz: nothing to replay for {'; '.join(empty)}", file=sys.stderr)
        return 2
    return 1 if failed else 0


def _fuzz(args: argparse.Namespace, parser: argparse.ArgumentParser, corpora: Path) -> int:
    from toolkit.fuzz.campaign import Campaign
    from toolkit.fuzz.campaign import run as run_campaign
    from toolkit.fuzz.display import CampaignDisplay
    from toolkit.fuzz.registry import builtin_targets
    from toolkit.fuzz.triage import shown_path, triage, write_report

    specs = _specs(args)
    if len(specs) != 1:
        parser.error("fuzz needs exactly one TARGET (or --target MODULE:FUNCTION); see --list")
    spec = specs[0]
    if ":" not in spec and spec not in builtin_targets():
        parser.error(f"no built-in target {spec!r}; see --list, or use --target MODULE:FUNCTION")
    seconds = args.time if args.time is not None else (None if args.runs else 60.0)
    campaign = Campaign(spec=spec, expect=args.expect, instrument=args.instrument, seconds=seconds, runs=args.runs,
                        jobs=args.jobs, corpus=args.corpus.resolve() if args.corpus else None,
                        dictionary=args.dictionary.resolve() if args.dictionary else None, corpora=corpora,
                        corpus_dir=args.corpus_dir.resolve(), reports=(args.report_dir / "fuzz").resolve(),
                        text=args.text, extra_seeds=[path.resolve() for path in args.seeds])
    campaign.prepare()  # a target that cannot be imported fails here, before any fuzzing
    budget = f"{seconds:g} s" if seconds else f"{args.runs} runs"
    print(f"fuzzing {campaign.name} for {budget} with {args.jobs} job(s); coverage from "
          f"{', '.join(campaign.instrument) or 'nothing'}; seeds "
          f"{', '.join(shown_path(path) for path in campaign.seeds) or 'none'}", flush=True)
    with CampaignDisplay(campaign.name) as display:
        result = run_campaign(campaign, display.progress, display.finding)
    print(result.progress.line(campaign.name))
    if result.failure is not None:
        print(f"rtcgate fuzz: {result.failure} (log {shown_path(result.log)})", file=sys.stderr)
        return 2
    print(f"libFuzzer log: {shown_path(result.log)}")
    report = triage(result, minimize_seconds=args.minimize_time, budget=args.triage_time,
                    on_step=lambda text: print(text, file=sys.stderr, flush=True))
    _json_path, markdown_path = write_report(report, campaign.work)
    if not report.findings:
        print(f"no findings; report {shown_path(markdown_path)}")
        return 0
    print(f"{len(report.findings)} distinct finding(s) from {report.artifacts} artifact(s); "
          f"report {shown_path(markdown_path)}")
    for finding in report.findings:
        print(f"  {finding.error}: {finding.message.splitlines()[0] if finding.message else ''}")
        print(f"    reproducer {finding.reproducer} ({finding.size} bytes{', minimized' if finding.minimized else ''})")
        print(f"    replay: {finding.replay}")
    return 1
