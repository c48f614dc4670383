"""What a running campaign shows: progress on stderr, findings on stdout as they are found.

On a terminal, progress is one live line (rich) rewritten in place, its clock ticking between
libFuzzer's reports (which come at each new coverage and at powers of two executions, so
minutes apart late in a long campaign); elsewhere (CI logs, a pipe) it is a plain line every
`interval` seconds.

Each artifact libFuzzer writes is announced at once, before triage, with the exception line
when the log had it (one job). An exception already announced (the same line but for numbers
and quoted values: "KeyError: 63" and "KeyError: 7") is not repeated; without an exception
line (fork mode) only the first artifact of each kind (crash, timeout, oom) is; past
`LIVE_LIMIT` lines the rest wait for triage, which deduplicates them all by exception and stack.
"""
from __future__ import annotations

import re
import sys
import time
from typing import TextIO

from .campaign import LiveFinding, Progress

PLAIN_INTERVAL = 10.0
LIVE_LIMIT = 20
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|0x[0-9a-fA-F]+|\d+")


class CampaignDisplay:
    """A context manager; `progress` and `finding` are the callbacks `campaign.run` takes."""

    def __init__(self, name: str, *, stream: TextIO | None = None, interval: float = PLAIN_INTERVAL,
                 live: bool | None = None) -> None:
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.live = self.stream.isatty() if live is None else live
        self._live = None
        self._line = _LiveLine(name)
        self._last_plain = 0.0
        self._announced: set[str] = set()
        self._lines = 0

    def __enter__(self) -> CampaignDisplay:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True)
            # stdout is drawn above the live line only when it is the terminal too; redirected,
            # it goes to its file untouched.
            self._live = Live(self._line, console=console, transient=True,
                              refresh_per_second=4, redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._live is not None:
            self._live.__exit__(*exc_info)
            self._live = None

    def progress(self, progress: Progress) -> None:
        if self._live is not None:
            self._line.latest(progress)
        elif progress.elapsed - self._last_plain >= self.interval:
            self._last_plain = progress.elapsed
            print(progress.line(self.name), file=self.stream, flush=True)

    def finding(self, found: LiveFinding) -> None:
        # Without the exception line (fork mode), one line per kind of artifact: crash, timeout, oom.
        kind = _VARYING.sub("…", found.summary) or found.path.name.partition("-")[0]
        if kind in self._announced:
            return
        if self._lines >= LIVE_LIMIT:
            if self._lines == LIVE_LIMIT:
                print("found: more artifacts; triage deduplicates them all at the end", flush=True)
                self._lines += 1
            return
        self._announced.add(kind)
        self._lines += 1
        size = found.path.stat().st_size if found.path.exists() else 0
        what = found.summary or f"a {kind} (details after triage; more of them counted in the progress line)"
        print(f"found: {what}  [{found.path.name[:20]}, {size} bytes]", flush=True)


class _LiveLine:
    """The live line: the latest progress with the clock advanced to now."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.progress: Progress | None = None
        self.started = time.monotonic()
        self.reported_at = self.started

    def latest(self, progress: Progress) -> None:
        self.progress, self.reported_at = progress, time.monotonic()

    def __rich__(self):
        from rich.text import Text

        if self.progress is None:
            return Text(f"[{self.name}] {time.monotonic() - self.started:5.0f}s  starting")
        return Text(self.progress.line(self.name, elapsed=self.progress.elapsed + time.monotonic() - self.reported_at))
