"""Fuzz targets: a function of bytes plus the exceptions it declares.

A target's invariant is that only its declared exceptions escape; anything else (an
IndexError, an AssertionError from a round-trip check, a struct.error) is a finding.
Built-in targets live in `toolkit.fuzz.targets`; anyone registers more with `fuzz_target`
in their own files and runs them with `rtcgate fuzz --target path/or.module:name`.
"""
from __future__ import annotations

import builtins
import importlib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

BUILTIN_MODULE = "toolkit.fuzz.targets"
BUILTIN_INSTRUMENT = ("reference_server",)
EXTRA_INSTRUMENT = {"sctp_dcep": ("aiortc",)}
"""Built-in targets whose code under test is partly someone else's: the server's SCTP and
DCEP are aiortc's, behind reference_server.shell.datachannel."""


class TargetError(Exception):
    """A target specification that does not name a fuzzable function."""


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    """What libFuzzer calls, once per input.

    `reset` (optional) rebuilds any state the target keeps between inputs, so a replayed
    input sees the same world a fresh process would.
    """

    name: str
    function: Callable[[bytes], object]
    expect: tuple[type[BaseException], ...] = ()
    instrument: tuple[str, ...] = ()
    description: str = ""
    reset: Callable[[], None] | None = None

    def __call__(self, data: bytes) -> None:
        try:
            self.function(data)
        except self.expect:
            pass


_registry: dict[str, FuzzTarget] = {}


def fuzz_target(
    function: Callable[[bytes], object] | None = None,
    *,
    name: str | None = None,
    expect: type[BaseException] | Iterable[type[BaseException]] = (),
    instrument: Iterable[str] = (),
    reset: Callable[[], None] | None = None,
):
    """Register a function of bytes as a fuzz target; usable bare or with arguments.

        @fuzz_target(expect=(ValueError,), instrument=("mypackage",))
        def fuzz_my_parser(data: bytes) -> None:
            my_parser.parse(data)

    The decorated name becomes a FuzzTarget (still callable with bytes). Name it anything
    but test_*, so pytest does not collect it as a test.
    """

    def register(fn: Callable[[bytes], object]) -> FuzzTarget:
        target = FuzzTarget(
            name=name or fn.__name__.removeprefix("fuzz_"),
            function=fn,
            expect=_as_tuple(expect),
            instrument=tuple(instrument),
            description=" ".join((fn.__doc__ or "").strip().split("\n\n")[0].split()),
            reset=reset,
        )
        _registry[target.name] = target
        return target

    return register(function) if function is not None else register


def builtin_targets() -> dict[str, FuzzTarget]:
    """The reference server's targets, by name (importing them registers them)."""
    module = importlib.import_module(BUILTIN_MODULE)
    return {name: _registry[name] for name in module.NAMES}


def resolve(
    spec: str,
    *,
    expect: Iterable[str] | None = None,
    instrument: Iterable[str] | None = None,
    text: bool = False,
) -> FuzzTarget:
    """A built-in target by name, or `module:attr` / `path/to/file.py:attr` for any function.

    `expect` names exception classes ("ValueError", "package.module.Error") and replaces
    the target's own declaration; `instrument` likewise replaces its coverage packages;
    `text` hands the function str instead of bytes (see `as_text`), for parsers of text.
    """
    if ":" not in spec:
        targets = builtin_targets()
        if spec not in targets:
            raise TargetError(f"no built-in fuzz target {spec!r}; known: {', '.join(sorted(targets))}")
        target = targets[spec]
    else:
        module_name, _, attribute = spec.rpartition(":")
        found = _lookup(_import(module_name), attribute, spec)
        if isinstance(found, FuzzTarget):
            target = found
        elif callable(found):
            target = FuzzTarget(name=target_name(spec), function=found,
                                instrument=default_instrumentation(spec),
                                description=f"{spec} on arbitrary bytes")
        else:
            raise TargetError(f"{spec} is a {type(found).__name__}, not a function of bytes")
    changes = {}
    if expect is not None:
        changes["expect"] = tuple(exception_class(item) for item in expect)
    if instrument is not None:
        changes["instrument"] = tuple(instrument)
    if text:
        changes["function"] = _on_text(target.function)
    if changes:
        target = FuzzTarget(**{**_fields(target), **changes})
    return target


def absolute_spec(spec: str) -> str:
    """The spec with a .py file's path made absolute against the current directory, so a child
    process started elsewhere (libFuzzer runs in the report folder) imports the same file."""
    if ":" not in spec:
        return spec
    module_name, _, attribute = spec.rpartition(":")
    if not module_name.endswith(".py"):
        return spec
    return f"{Path(module_name).resolve()}:{attribute}"


def target_name(spec: str) -> str:
    """A file-system-safe name: "aiortc.rtp:RtpPacket.parse" -> "aiortc.rtp.RtpPacket.parse"."""
    if ":" not in spec:
        return spec
    module_name, _, attribute = spec.rpartition(":")
    if module_name.endswith(".py"):
        module_name = Path(module_name).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{module_name}.{attribute}")


def instrumentation(name: str) -> tuple[str, ...]:
    """The packages a built-in target gets coverage from."""
    return BUILTIN_INSTRUMENT + EXTRA_INSTRUMENT.get(name, ())


def default_instrumentation(spec: str) -> tuple[str, ...]:
    """Which modules get coverage: the reference server (and what it delegates to) for
    built-ins, else the target's top package."""
    if ":" not in spec:
        return instrumentation(spec)
    module_name = spec.rpartition(":")[0]
    if module_name.endswith(".py"):
        return (Path(module_name).stem,)
    return (module_name.split(".")[0],)


def coverage_packages(spec: str, target: FuzzTarget) -> tuple[str, ...]:
    """What a campaign instruments when the user names nothing: the packages the target
    declares (`@fuzz_target(instrument=...)`), then its own module's top package."""
    return tuple(dict.fromkeys(target.instrument + default_instrumentation(spec)))


def as_text(data: bytes) -> str:
    """UTF-8 when it decodes (what an HTTP body carries), else one code point per byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _on_text(function: Callable[[str], object]) -> Callable[[bytes], object]:
    def on_text(data: bytes) -> object:
        return function(as_text(data))

    return on_text


def exception_class(name: str) -> type[BaseException]:
    """"ValueError" -> ValueError; "aioice.stun.SomeError" -> that class."""
    if "." not in name:
        found = getattr(builtins, name, None)
    else:
        module_name, _, attribute = name.rpartition(".")
        found = getattr(_import(module_name), attribute, None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise TargetError(f"{name!r} is not an exception class")
    return found


def _import(module_name: str):
    """A dotted module, or a .py file imported by its stem from its folder (so coverage
    instrumentation, which hooks imports, sees it like any other module)."""
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        if not path.is_file():
            raise TargetError(f"no such file {module_name}")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        module_name = path.stem
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # a module that fails to import is a bad target, whatever it raises
        raise TargetError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None


def _lookup(module, attribute: str, spec: str):
    found = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise TargetError(f"{spec}: {part!r} not found") from None
    return found


def _as_tuple(expect) -> tuple[type[BaseException], ...]:
    if isinstance(expect, type):
        return (expect,)
    return tuple(expect)


def _fields(target: FuzzTarget) -> dict:
    return {name: getattr(target, name) for name in FuzzTarget.__dataclass_fields__}
