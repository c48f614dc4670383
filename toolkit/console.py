"""The CLI's terminal output through rich: colour and live progress for a person, plain lines for a log.

- `stdout()`: where summaries and tables go. On a terminal: colours at the terminal's width.
  Anywhere else (a pipe, a CI log, a test): no colour and no control codes, and wide enough that
  no table or line is wrapped, so the output stays parseable line by line.
- `stderr()`: where progress goes. `is_live(console)` is true only when stderr is a terminal;
  only then do commands draw rich progress displays, otherwise they write plain lines.
- `STATUS_STYLES`: one colour per verdict word, shared by every command.

Liveness follows `isatty()` of the stream itself (not FORCE_COLOR or TTY_COMPATIBLE), so a CI
log never receives cursor movements whatever its environment says. Markup is off: messages from
targets (`[MUST]`, URLs with brackets) print as they are.
"""
from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

PLAIN_WIDTH = 1000
"""Columns of a console that is not a terminal: wider than any line the toolkit writes."""

STATUS_STYLES = {
    "PASS": "bold green", "FAIL": "bold red", "WARN": "bold yellow", "SKIP": "dim", "XFAIL": "yellow",
    "XPASS": "bold red", "N/A": "dim", "green": "bold green", "NOT green": "bold red",
}


def console_for(stream: TextIO) -> Console:
    """A rich console on `stream`: a terminal one only if the stream is a terminal."""
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    return Console(file=stream, force_terminal=terminal, force_interactive=terminal,
                   width=None if terminal else PLAIN_WIDTH, soft_wrap=not terminal,
                   markup=False, highlight=False, emoji=False)


def stdout() -> Console:
    return console_for(sys.stdout)


def stderr() -> Console:
    return console_for(sys.stderr)


def is_live(console: Console) -> bool:
    """Whether live displays (progress bars, spinners) may be drawn on this console."""
    return console.is_terminal and console.is_interactive
