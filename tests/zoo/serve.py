"""`python -m tests.zoo.serve VARIANT [rtcgate serve options]`: the reference server CLI with one bug.

Same options and same output as `rtcgate serve` (the ready line is its first line: `ReferenceTarget`
reads lines with select() on the pipe, so a line printed just before it could leave it unread in the
pipe's buffer), so `ReferenceTarget(command=[sys.executable, "-m", "tests.zoo.serve", VARIANT])`
starts it like the real one.
"""

from __future__ import annotations

import argparse
import sys

from tests.zoo import variants
from toolkit.commands import serve


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    zoo = variants()
    if not argv or argv[0].startswith("-") or argv[0] not in zoo:
        given = f"unknown variant {argv[0]!r}; " if argv and not argv[0].startswith("-") else ""
        print(f"usage: python -m tests.zoo.serve VARIANT [rtcgate serve options]\n{given}variants:", file=sys.stderr)
        for name, entry in sorted(zoo.items()):
            print(f"  {name:<38} {', '.join(entry.checks):<22} {entry.why}", file=sys.stderr)
        return 2
    name, options = argv[0], argv[1:]
    parser = argparse.ArgumentParser(prog=f"python -m tests.zoo.serve {name}")
    commands = parser.add_subparsers(dest="command")
    serve.register(commands)
    args = parser.parse_args(["serve", *options])
    return serve.run(args, commands.choices["serve"], server_factory=zoo[name].build)


if __name__ == "__main__":
    sys.exit(main())
