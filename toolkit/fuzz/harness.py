"""The libFuzzer entry point of every harness under toolkit/fuzz/harnesses/.

A harness is run as `python harness.py FLAGS...` (`harness_command`): no run bit and no
shebang are needed, so it works from an installed wheel, which drops the run bit. libFuzzer's
-fork, -merge and -minimize_crash modes re-run argv[0] through a shell with new flags; the
harness therefore hands libFuzzer "python harness.py" (quoted for the shell) as argv[0], and
those children start through the same interpreter. Everything a harness needs beyond its
flags comes from the environment, which children inherit:

    RTCGATE_FUZZ_TARGET      the target spec (generic harness only): a built-in name or module:function
    RTCGATE_FUZZ_EXPECT      comma-separated declared exceptions, replacing the target's own
    RTCGATE_FUZZ_INSTRUMENT  comma-separated packages to collect coverage from; `rtcgate fuzz` sets it
                             to --instrument, else to the target's declared packages plus its own
                             module's (unset: the reference server for built-ins, else the module's)
    RTCGATE_FUZZ_TEXT        "1": the function takes str (input decoded as UTF-8, else Latin-1)
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from .registry import default_instrumentation, resolve

ENV_TARGET = "RTCGATE_FUZZ_TARGET"
ENV_EXPECT = "RTCGATE_FUZZ_EXPECT"
ENV_INSTRUMENT = "RTCGATE_FUZZ_INSTRUMENT"
ENV_TEXT = "RTCGATE_FUZZ_TEXT"


def environment_list(name: str) -> list[str] | None:
    """None when the variable is unset; otherwise its comma-separated items (maybe none)."""
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def harness_command(harness: Path) -> list[str]:
    """How to start a harness file: through this interpreter, whatever its mode bits."""
    return [sys.executable, str(harness)]


def libfuzzer_argv(argv: list[str]) -> list[str]:
    """argv for libFuzzer, whose argv[0] re-runs this harness through the interpreter. A
    frozen harness (PyInstaller, as OSS-Fuzz builds them) is its own executable: kept as is."""
    if getattr(sys, "frozen", False) or not argv:
        return list(argv)
    script = os.path.abspath(argv[0])
    return [f"{shlex.quote(sys.executable)} {shlex.quote(script)}", *argv[1:]]


def main(name: str | None = None) -> None:
    """Fuzz target `name` (or $RTCGATE_FUZZ_TARGET) under atheris with sys.argv as libFuzzer flags."""
    import atheris

    spec = name or os.environ.get(ENV_TARGET)
    if not spec:
        sys.exit(f"{sys.argv[0]}: set {ENV_TARGET} to a built-in target name or module:function")
    instrument = environment_list(ENV_INSTRUMENT)
    if instrument is None:
        instrument = list(default_instrumentation(spec))
    options = {"expect": environment_list(ENV_EXPECT), "instrument": instrument,
               "text": os.environ.get(ENV_TEXT) == "1"}
    if instrument:
        with atheris.instrument_imports(include=instrument):
            target = resolve(spec, **options)
    else:
        target = resolve(spec, **options)
    atheris.Setup(libfuzzer_argv(sys.argv), target)
    atheris.Fuzz()
