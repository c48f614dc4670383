"""The `rtcgate` command line: one subcommand per module in toolkit.commands."""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "toolkit.commands.serve",
    "toolkit.commands.relay",
    "toolkit.commands.worker",
    "toolkit.commands.check",
    "toolkit.commands.load",
    "toolkit.commands.fuzz",
    "toolkit.commands.interop",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtcgate",
        description="Prove a single-UDP-port WebRTC server correct, robust and fast.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args, parser)


if __name__ == "__main__":
    sys.exit(main())
