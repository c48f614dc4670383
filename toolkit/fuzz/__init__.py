"""Coverage-guided fuzzing (atheris/libFuzzer) of the reference server and of anyone's parser.

    from toolkit.fuzz import fuzz_target

    @fuzz_target(expect=(ValueError,))
    def fuzz_my_parser(data: bytes) -> None:
        my_parser.parse(data)

then `rtcgate fuzz --target path/to/file.py:fuzz_my_parser --time 60`. The reference
server's own targets (`rtcgate fuzz --list`) live in toolkit.fuzz.targets, imported only on
demand: their import must happen under coverage instrumentation.
"""
from __future__ import annotations

from .registry import FuzzTarget, TargetError, builtin_targets, fuzz_target, resolve
from .replay import Outcome, check, replay

__all__ = ["FuzzTarget", "Outcome", "TargetError", "builtin_targets", "check", "fuzz_target", "replay", "resolve"]
