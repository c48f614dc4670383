"""The zoo: faulty variants of the reference server, each with one bug a conformance check must catch.

A check that has never been seen to FAIL proves nothing. Each variant here is the reference
server with one plausible bug put in from outside; `tests/zoo/test_zoo.py` runs every check a
variant names against it (the check must FAIL) and against the unmodified server (it must PASS).

The convention, for anyone adding variants:

- A variant lives in `tests/zoo/variants_<family>.py` (e.g. `variants_dc.py`); every module named
  `variants_*` is found and imported by `variants()`, nothing else needs registering.
- Decorate the faulty class (or hook) with `@variant(name, checks=(...), why="the bug, in one line")`:

      @variant("answers-indications", checks=("STUN-09",),
               why="answers a Binding indication as if it were a request")
      @intercept("_receive_stun")
      def answers_indications(datagram: Datagram) -> bytes | None:
          ...  # the bytes the reference handler gets instead (None: the hook took them)

  The decorated object is the faulty part itself where one part is faulty (a `DtlsEndpoint`,
  `seams.ZooSrtpSession`, `SessionTable`, `VoiceEndpoint` or `Conversation` subclass: the server
  uses it instead of its own), a `ServerCore` subclass (the usual case: override one method,
  often a private one; the hook helpers in `tests/zoo/seams.py` make one from a function, e.g.
  `@intercept("_receive_stun")`), a `ReferenceServer` subclass (to swap `voice_service_class`, or
  anything else `start()` builds), or a function `config -> ReferenceServer`. A factory's result is
  registered by calling `variant(...)(dtls_core(...))`; one class may be registered twice (the
  same bug in the other DTLS role). `name` is kebab-case and unique; `checks` are catalog IDs;
  `why` names the bug the way a bug report would. `host="::1"` runs the variant (and its reference twin) on
  IPv6 loopback, for checks that need an IPv6 candidate. `dtls_role="client"` runs the variant
  (and its reference twin) with `--dtls-role client`: it answers a=setup:active, so the checks
  play their DTLS-client counterparts. `reference="other-variant"` names the correct server the
  variant's checks must PASS against instead of the reference server, for checks that do not apply
  to it (ICE-10 judges only targets that send connectivity checks of their own): a variant whose
  bug lies elsewhere, correct for these checks.
- The bug stays in the variant. Never edit `reference_server/` for it: if no seam fits, override
  a private method in the subclass. `tests/zoo/seams.py` has one helper for each shape bugs keep
  taking (a hook before a handler, after a check or a drop, a datagram that ends its session, an
  SRTP failure taken after all, a DTLS context built differently, a rebuilt STUN message, a
  modelled crash): use it rather than writing the override again.
- A crash of a server written in C (a segfault) is modelled with `seams.crash()`, which ends the
  process at once; a Python exception would only be logged and served past.
- Name only checks the bug should make FAIL, and keep each one cheap: `test_zoo.py` runs each
  variant once, as its own process, with every check it names.
- Run one by hand: `python -m tests.zoo.serve NAME [rtcgate serve options]` (same ready line as
  `rtcgate serve`); check it with `ReferenceTarget(command=[sys.executable, "-m",
  "tests.zoo.serve", NAME])`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reference_server.core import ServerCore
from reference_server.shell.server import ReferenceServer, ServerConfig
from tests.zoo.seams import core_with, voice_endpoint_with

_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_CHECK_ID = re.compile(r"[A-Z]+-\d\d")


@dataclass(frozen=True)
class Variant:
    name: str
    checks: tuple[str, ...]
    why: str
    build: Callable[[ServerConfig], ReferenceServer]
    """Makes the faulty server for `rtcgate serve`'s config (its `server_factory`)."""
    host: str = "127.0.0.1"
    module: str = ""
    dtls_role: str = "server"
    """The server's `--dtls-role`: "client" answers a=setup:active."""
    reference: str = ""
    """The variant its checks must PASS against, when the reference server is not a target they apply to."""


_REGISTRY: dict[str, Variant] = {}


def variant(name: str, *, checks: tuple[str, ...], why: str, host: str = "127.0.0.1",
            dtls_role: str = "server", reference: str = "") -> Callable[[Any], Any]:
    """Register the decorated ServerCore subclass, ReferenceServer subclass or factory as a variant."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"variant name {name!r} is not kebab-case")
    if isinstance(checks, str) or not checks or not all(_CHECK_ID.fullmatch(c) for c in checks):
        raise ValueError(f"variant {name}: checks must be a non-empty tuple of check IDs, got {checks!r}")
    if not why or "\n" in why:
        raise ValueError(f"variant {name}: why must be one line saying what the bug is")
    if dtls_role not in ("server", "client"):
        raise ValueError(f"variant {name}: dtls_role must be 'server' or 'client', got {dtls_role!r}")

    def register(target: Any) -> Any:
        if name in _REGISTRY:
            raise ValueError(f"variant {name} is registered twice ({_REGISTRY[name].module} and {target.__module__})")
        _REGISTRY[name] = Variant(name, tuple(checks), why, _builder(target), host, target.__module__, dtls_role,
                                  reference)
        return target

    return register


def _builder(target: Any) -> Callable[[ServerConfig], ReferenceServer]:
    if isinstance(target, type) and (endpoint := voice_endpoint_with(target)) is not None:
        return type(f"{target.__name__}Server", (ReferenceServer,), {"voice_endpoint_class": endpoint})
    if isinstance(target, type) and (core := core_with(target)) is not None:
        target = core
    if isinstance(target, type) and issubclass(target, ServerCore):
        server_class = type(f"{target.__name__}Server", (ReferenceServer,), {"core_class": target})
        return server_class
    if isinstance(target, type) and issubclass(target, ReferenceServer):
        return target
    if callable(target) and not isinstance(target, type):
        return target
    raise TypeError(f"{target!r} is not a server part, a ServerCore subclass, a ReferenceServer subclass or a "
                    "factory function")


def variants() -> dict[str, Variant]:
    """Every registered variant by name, after importing each `tests/zoo/variants_*` module."""
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("variants_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(_REGISTRY)
