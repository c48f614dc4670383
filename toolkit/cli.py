"""The `rtcgate` command line: one subcommand per module in toolkit.commands.

Each command module has `register(commands)` and `EXIT_STATUS`, what its exit statuses 0, 1 and 2
mean; every command's --help ends with them, and with the ones this module adds. Whatever goes
wrong, the user gets one line on stderr and a documented status, never a traceback: argument
errors and any unexpected exception exit 2 (the traceback only with --debug or RTCGATE_DEBUG=1),
Ctrl-C exits 130, and output closed early (`rtcgate check --list | head -1`) exits 141 quietly.
"""
from __future__ import annotations

import argparse
import importlib
import os
import select
import sys
import textwrap
import traceback
from pathlib import Path

from toolkit.commands.arguments import ArgumentParser, HelpFormatter

COMMAND_MODULES = (
    "toolkit.commands.serve",
    "toolkit.commands.relay",
    "toolkit.commands.worker",
    "toolkit.commands.check",
    "toolkit.commands.load",
    "toolkit.commands.fuzz",
    "toolkit.commands.interop",
)

DEBUG_VARIABLE = "RTCGATE_DEBUG"
INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a program Ctrl-C stopped."""
EPILOG_WIDTH = 78
"""The exit-status table is laid out once, for an 80-column terminal (help keeps its lines)."""
OUTPUT_CLOSED = 141
"""128 + SIGPIPE, as a shell reports a program whose reader went away."""

COMMON_EXIT_STATUS = {
    2: f"or an unexpected rtcgate error, told in one line (--debug or {DEBUG_VARIABLE}=1 adds the traceback)",
    INTERRUPTED: "interrupted (Ctrl-C)",
    OUTPUT_CLOSED: "the output was closed early, e.g. piped into head",
}


def version() -> str:
    """`rtcgate <version>`: the installed package's, else the pyproject.toml of the checkout
    this module runs from, else 'unknown'."""
    import importlib.metadata

    try:
        return f"rtcgate {importlib.metadata.version('rtcgate')}"
    except importlib.metadata.PackageNotFoundError:
        pass
    import tomllib

    try:
        project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
        return f"rtcgate {project['version']} (source checkout, not installed)"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "rtcgate (version unknown: not installed, and no pyproject.toml beside the package)"


class _PrintVersion(argparse.Action):
    """--version, looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print rtcgate's version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(version())
        parser.exit()


def exit_status_epilog(statuses: dict[int, str]) -> str:
    """The 'exit status:' table ending a command's --help."""
    merged: dict[int, list[str]] = {}
    for table in (statuses, COMMON_EXIT_STATUS):
        for code, meaning in table.items():
            merged.setdefault(code, []).append(meaning)
    rows = [textwrap.fill("; ".join(meanings), EPILOG_WIDTH, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
            for code, meanings in sorted(merged.items())]
    return "\n".join(["exit status:", *rows])


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="rtcgate",
        description="Prove a single-UDP-port WebRTC server correct, robust and fast.",
        epilog="Exit status: 0 passed, 1 a gate failed (a check, verdict, interop cell or fuzz finding), 2 bad "
               "arguments, an unreachable target or an rtcgate error. `rtcgate COMMAND --help` lists a command's "
               "options and what each exit status means for it.")
    parser.add_argument("--version", action=_PrintVersion)
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an unexpected error (or set {DEBUG_VARIABLE}=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        before = set(commands.choices)
        module.register(commands)
        for command_name in set(commands.choices) - before:
            command = commands.choices[command_name]
            command.formatter_class = HelpFormatter  # one help layout for every command
            command.epilog = "\n\n".join(filter(None, (command.epilog, exit_status_epilog(module.EXIT_STATUS))))
            # SUPPRESS: unless given after the command, --debug keeps what the top level parsed.
            command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                 help="show the traceback of an unexpected error")
            command.set_defaults(command_parser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    prog, debug = "rtcgate", bool(os.environ.get(DEBUG_VARIABLE))
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        prog, debug = args.command_parser.prog, debug or args.debug
        return args.handler(args, args.command_parser)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError as error:
        if _output_closed():
            return OUTPUT_CLOSED
        return _unexpected(prog, error, debug)
    except Exception as error:  # the guard: one line, not a traceback
        return _unexpected(prog, error, debug)


def _output_closed() -> bool:
    """Whether the reader of stdout (or stderr) went away, rather than some socket or child's
    pipe. Such a stream then goes to /dev/null, so Python's flush at exit does not complain."""
    closed = [stream for stream in (sys.stdout, sys.stderr) if _reader_gone(stream)]
    for stream in closed:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    return bool(closed)


def _reader_gone(stream) -> bool:
    """A pipe whose read end is closed polls as an error (POLLERR); a closed socket as POLLHUP."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test's capture, or closed
        return False
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _unexpected(prog: str, error: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(error)
    text = " ".join(str(error).split()) or "(no message)"
    hint = "" if debug else f" (--debug or {DEBUG_VARIABLE}=1 shows the traceback)"
    print(f"{prog}: error: {type(error).__name__}: {text}{hint}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
