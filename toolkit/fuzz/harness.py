"""The libFuzzer entry point of every harness executable under toolkit/fuzz/harnesses/.

libFuzzer's -fork, -merge and -minimize_crash modes re-run argv[0] through a shell with
new flags, so a harness must be an executable file and everything it needs beyond its
flags comes from the environment, which children inherit:

    RTCGATE_FUZZ_TARGET      the target spec (generic harness only): a built-in name or module:function
    RTCGATE_FUZZ_EXPECT      comma-separated declared exceptions, replacing the target's own
    RTCGATE_FUZZ_INSTRUMENT  comma-separated packages to collect coverage from
    RTCGATE_FUZZ_TEXT        "1": the function takes str (input decoded as UTF-8, else Latin-1)
"""
from __future__ import annotations

import os
import sys

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
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
