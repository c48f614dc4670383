"""Run saved inputs through a target without libFuzzer, and say what escaped.

Used three ways: by pytest (corpora and regressions as ordinary tests), by
`rtcgate fuzz --replay`, and by triage, which runs `python -m toolkit.fuzz.replay` in a
child process so a hard crash or a hang in the target cannot take the runner down.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .harness import ENV_EXPECT, ENV_TEXT, environment_list
from .registry import FuzzTarget, resolve

TOP_FRAMES = 3
"""Findings with the same exception type and the same innermost frames are one bug."""
_OWN_FILES = (str(Path(__file__).with_name("registry.py")), __file__)
_SKIPPED_SUFFIXES = (".dict", ".md", ".txt", ".json")


@dataclass(slots=True)
class Outcome:
    """One input's verdict: `error` is None when only declared exceptions (or none) escaped."""

    path: str
    error: str | None = None
    message: str = ""
    frames: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, function), innermost last

    @property
    def signature(self) -> str:
        """Exception type and innermost frames; stable across inputs that hit the same bug."""
        if self.error is None:
            return ""
        top = ";".join(f"{file}:{function}:{line}" for file, line, function in self.frames[-TOP_FRAMES:])
        return f"{self.error}|{top}"

    @property
    def signature_id(self) -> str:
        return hashlib.sha1(self.signature.encode()).hexdigest()[:12]


def check(target: FuzzTarget, data: bytes, path: str = "<bytes>") -> Outcome:
    """Call the target once; an undeclared exception becomes the Outcome's error."""
    try:
        target(data)
    except Exception as exc:  # the whole point: anything undeclared is a finding
        return Outcome(path, _error_name(exc), str(exc)[:500], _frames(exc))
    return Outcome(path)


def inputs(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files under the given files and directories, sorted; dictionaries and notes skipped."""
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.startswith(".") and child.suffix not in _SKIPPED_SUFFIXES:
                    yield child
        elif path.is_file():
            yield path


def replay(target: FuzzTarget, paths: Iterable[str | os.PathLike]) -> list[Outcome]:
    """Every input under `paths`, each on a freshly reset target."""
    outcomes = []
    for path in inputs(paths):
        if target.reset is not None:
            target.reset()
        outcomes.append(check(target, path.read_bytes(), str(path)))
    return outcomes


def _error_name(exc: BaseException) -> str:
    """Qualified class name, plus the rule's code for invariant violations ("...[code]")."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    code = getattr(exc, "code", None)
    return f"{name}[{code}]" if isinstance(code, str) else name


def _frames(exc: BaseException) -> list[tuple[str, int, str]]:
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in _OWN_FILES:
            continue
        frames.append((short_path(frame.filename), frame.lineno or 0, frame.name))
    return frames


def short_path(filename: str) -> str:
    """site-packages/aiortc/rtp.py -> aiortc/rtp.py; files under the working directory relative to it."""
    marker = "site-packages" + os.sep
    if marker in filename:
        return filename.split(marker, 1)[1]
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay inputs through a fuzz target; one JSON line each.")
    parser.add_argument("target")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--expect", action="append", help=f"declared exception (default: ${ENV_EXPECT}, else the target's)")
    args = parser.parse_args(argv)
    target = resolve(args.target, expect=args.expect if args.expect is not None else environment_list(ENV_EXPECT),
                     text=os.environ.get(ENV_TEXT) == "1")
    for outcome in replay(target, args.inputs):
        print(json.dumps({**asdict(outcome), "signature": outcome.signature}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
