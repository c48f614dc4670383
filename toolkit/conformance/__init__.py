"""The conformance gate: the check catalog (docs/checks.md) as data, one runner, targets, evidence.

Write a check the way the catalog does — a conversation of steps with alternatives::

    from toolkit.conformance import Alive, Check, Connect, Send, Expect, StunError, Silence, check_request

    MY_CHECK = Check("MY-01", "security", "RFC 8489 §9.2.4", "wrong password → 401 or silence",
                     (Connect(), Send(check_request(password="not-it")), Expect((StunError(401), Silence())), Alive()))

(`Alive()`: the session still works — an echo from an echo server, a sign of life from a voice
service; `Echo()` judges by echoes only, and SKIPs against a target that does not echo.)

and run it with `await run_check(target, MY_CHECK, Settings(seed=1))`, or from pytest with the
`rtc_check` fixture of the rtcgate plugin.

The names above are imported when first used (PEP 562): `import toolkit.conformance.model` (what
the command line needs to build its options) does not load the catalog, the peer or the targets.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "toolkit.conformance.checks": ("CATALOG", "SANITY"),
    "toolkit.conformance.checks.common": ("check_request", "crafted_check"),
    "toolkit.conformance.model": ("Check", "CheckFailed", "CheckResult", "CheckSkipped", "Datagram", "Settings",
                                  "Status"),
    "toolkit.conformance.runner": ("RunResult", "TargetUnreachable", "run_check", "run_checks"),
    "toolkit.conformance.steps": ("Alive", "BindsNothing", "Close", "Connect", "Connected", "Do", "DtlsAlert", "Echo",
                                  "Expect", "NoMediaTo", "Offer", "Rebind", "Renegotiate", "Require", "Send", "Silence",
                                  "Socket", "SrtpProfile", "StunError", "StunSuccess", "Wait"),
    "toolkit.conformance.targets": ("CallableTarget", "CallsTarget", "ReferenceTarget", "Target", "TargetError",
                                    "WhipTarget", "make_target"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
