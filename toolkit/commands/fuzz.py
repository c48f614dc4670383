"""`rtcgate fuzz`: coverage-guided fuzzing of the reference server's parsers and core, or of
any parser, with crash triage and replay."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.commands.arguments import integer, non_negative_whole, positive_number, whole

EXIT_STATUS = {
    0: "no finding (every replayed input passes)",
    1: "a finding (or a replayed input fails)",
    2: "bad arguments, an unknown target, or a network target that cannot be reached",
}

_EXAMPLES = """\
examples:
  rtcgate fuzz --list
  rtcgate fuzz stun_parse --time 300
  rtcgate fuzz server_receive --time 600 --jobs 2
  rtcgate fuzz --target aiortc.rtp:RtpPacket.parse --expect ValueError --time 300
  rtcgate fuzz --target aiortc.sdp:SessionDescription.parse --text --expect ValueError --seeds corpora/sdp_offer
  rtcgate fuzz --target tests/my_targets.py:fuzz_my_parser --time 60
  rtcgate fuzz --replay                      (every built-in target's corpus and regressions)
  rtcgate fuzz --replay demux --input corpora/regressions/demux/IndexError-0123456789ab
  rtcgate fuzz --whip http://127.0.0.1:8080/whip --batches 20 --batch-size 50 --seed 7
  rtcgate fuzz --whip http://127.0.0.1:8080/whip --seed 7 --only-batch 3   (replay a network finding)
"""


def register(commands) -> None:
    fuzz = commands.add_parser(
        "fuzz", help="fuzz the reference server's parsers and core, or any parser (atheris/libFuzzer)",
        description="Fuzz a target with atheris (libFuzzer), triage what it finds (deduplicate, minimize, "
                    "store reproducers under corpora/regressions/<target>/, report under reports/fuzz/<target>/), "
                    "or replay saved inputs. A target's contract: only its declared exceptions may escape.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    fuzz.add_argument("targets", nargs="*", metavar="TARGET",
                      help="built-in target name (see --list); with --replay, any number (default: all)")
    fuzz.add_argument("--list", action="store_true", help="list the built-in targets and exit")
    fuzz.add_argument("--target", metavar="MODULE:FUNCTION",
                      help="fuzz any function of bytes: a dotted module or a .py path, then the attribute "
                           "(e.g. aioice.stun:parse_message, tests/t.py:fuzz_x)")
    fuzz.add_argument("--expect", action="append", metavar="EXCEPTION",
                      help="declared exception the target may raise (repeatable; builtins by name, others "
                           "dotted); replaces the target's own declaration")
    fuzz.add_argument("--instrument", action="append", metavar="PACKAGE",
                      help="package to collect coverage from (repeatable; default: the target's top package)")
    fuzz.add_argument("--text", action="store_true",
                      help="the function parses text: hand it the input decoded as UTF-8 (else Latin-1)")
    fuzz.add_argument("--time", type=positive_number, default=None, metavar="S",
                      help="seconds to fuzz (default 60, unless --runs is given)")
    fuzz.add_argument("--runs", type=whole, default=None, metavar="N",
                      help="run N inputs in one process instead (stops at the first crash)")
    fuzz.add_argument("--jobs", type=whole, default=1, metavar="N", help="parallel fuzzing processes (-fork=N)")
    fuzz.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                      help="working corpus libFuzzer adds to (default reports/fuzz/<target>/corpus); the "
                           "committed seeds corpora/<target>/ and corpora/regressions/<target>/ are read, not written")
    fuzz.add_argument("--seeds", action="append", type=Path, default=[], metavar="DIR",
                      help="more read-only seed directories (repeatable), e.g. a built-in target's corpus")
    fuzz.add_argument("--dict", type=Path, default=None, metavar="FILE", dest="dictionary",
                      help="libFuzzer dictionary (default corpora/<target>.dict when it exists)")
    fuzz.add_argument("--corpora", type=Path, default=None, metavar="DIR",
                      help="root of seed corpora and regressions (default: the checkout's corpora/)")
    fuzz.add_argument("--minimize-time", type=non_negative_whole, default=30, metavar="S",
                      help="seconds of -minimize_crash per distinct finding (0: keep inputs as found)")
    fuzz.add_argument("--replay", action="store_true",
                      help="replay saved inputs instead of fuzzing: every file under corpora/<target>/ and "
                           "corpora/regressions/<target>/, or the --input paths")
    fuzz.add_argument("--input", action="append", type=Path, metavar="PATH",
                      help="with --replay: a file or directory to replay (repeatable)")
    network = fuzz.add_argument_group(
        "network mutation fuzzing", "mutate STUN, SRTP, SRTCP and DTLS inside live sessions of a WHIP target; "
        "after each batch a fresh session must get its RTP echoed. Exit 0: no finding, 1: finding "
        "(reports/fuzz/network/finding-<batch>.json), 2: target unreachable")
    network.add_argument("--whip", metavar="URL", help="fuzz this live WHIP endpoint instead of a parser")
    network.add_argument("--batches", type=whole, default=20, metavar="N", help="batches (default 20)")
    network.add_argument("--batch-size", type=whole, default=50, metavar="M",
                         help="mutated datagrams per batch (default 50)")
    network.add_argument("--seed", type=integer, default=0, metavar="S", help="batch N is seeded with S + N (default 0)")
    network.add_argument("--only-batch", type=non_negative_whole, default=None, metavar="N", help="run only batch N (a replay)")
    fuzz.set_defaults(handler=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from toolkit import resources
    from toolkit.fuzz.registry import TargetError

    if args.whip:
        return _network(args)
    corpora = (args.corpora or resources.corpora()).resolve()
    try:
        if args.list:
            return _list()
        if args.replay:
            return _replay(args, corpora)
        return _fuzz(args, parser, corpora)
    except TargetError as exc:
        print(f"rtcgate fuzz: {exc}", file=sys.stderr)
        return 2


def _network(args: argparse.Namespace) -> int:
    import asyncio

    from toolkit.fuzz.network import mutate_live

    result = asyncio.run(mutate_live(args.whip, batches=args.batches, batch_size=args.batch_size, seed=args.seed,
                                     only_batch=args.only_batch, progress=lambda line: print(line, flush=True)))
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
    from toolkit.fuzz.registry import builtin_targets, resolve, target_name
    from toolkit.fuzz.replay import replay

    specs = _specs(args) or list(builtin_targets())
    failed = 0
    for spec in specs:
        target = resolve(spec, expect=args.expect, text=args.text)
        name = target_name(spec)
        paths = args.input or [corpora / name, corpora / "regressions" / name]
        outcomes = replay(target, paths)
        bad = [outcome for outcome in outcomes if outcome.error is not None]
        failed += len(bad)
        print(f"{name}: {len(outcomes)} inputs, {len(bad)} failing")
        for outcome in bad:
            frame = outcome.frames[-1] if outcome.frames else ("?", 0, "?")
            print(f"  {outcome.path}: {outcome.error}: {outcome.message.splitlines()[0] if outcome.message else ''}"
                  f"  (at {frame[0]}:{frame[1]} in {frame[2]})")
    return 1 if failed else 0


def _fuzz(args: argparse.Namespace, parser: argparse.ArgumentParser, corpora: Path) -> int:
    from toolkit.fuzz.campaign import Campaign, run as run_campaign
    from toolkit.fuzz.registry import builtin_targets
    from toolkit.fuzz.triage import triage, write_report

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
                        text=args.text, extra_seeds=[path.resolve() for path in args.seeds])
    budget = f"{seconds:.0f} s" if seconds else f"{args.runs} runs"
    print(f"fuzzing {campaign.name} for {budget} with {args.jobs} job(s); harness {campaign.harness.name}, "
          f"seeds {', '.join(str(path) for path in campaign.seeds) or 'none'}", flush=True)
    result = run_campaign(campaign, _progress_printer(campaign.name))
    print()
    print(result.progress.line(campaign.name))
    print(f"libFuzzer log: {result.log}")
    report = triage(result, minimize_seconds=args.minimize_time)
    json_path, markdown_path = write_report(report, campaign.work)
    if not report.findings:
        print(f"no findings; report {markdown_path}")
        return 0
    print(f"{len(report.findings)} distinct finding(s) from {report.artifacts} artifact(s); report {markdown_path}")
    for finding in report.findings:
        print(f"  {finding.error}: {finding.message.splitlines()[0] if finding.message else ''}")
        print(f"    reproducer {finding.reproducer} ({finding.size} bytes)")
        print(f"    replay: {finding.replay}")
    return 1


def _progress_printer(name: str):
    """Live progress: rewritten in place on a terminal, one line every 10 s otherwise."""
    interactive = sys.stdout.isatty()
    last = [0.0]

    def show(progress) -> None:
        if interactive:
            print("\r" + progress.line(name), end="", flush=True)
        elif progress.elapsed - last[0] >= 10.0:
            last[0] = progress.elapsed
            print(progress.line(name), flush=True)

    return show
