"""The conformance gate: the check catalog (docs/checks.md) as data, one runner, targets, evidence.

Write a check the way the catalog does — a conversation of steps with alternatives::

    from toolkit.conformance import Alive, Check, Connect, Send, Expect, StunError, Silence, check_request

    MY_CHECK = Check("MY-01", "security", "RFC 8489 §9.2.4", "wrong password → 401 or silence",
                     (Connect(), Send(check_request(password="not-it")), Expect((StunError(401), Silence())), Alive()))

(`Alive()`: the session still works — an echo from an echo server, a sign of life from a voice
service; `Echo()` judges by echoes only, and SKIPs against a target that does not echo.)

and run it with `await run_check(target, MY_CHECK, Settings(seed=1))`, or from pytest with the
`rtc_check` fixture of the rtcgate plugin.
"""

from __future__ import annotations

from toolkit.conformance.checks import CATALOG, SANITY
from toolkit.conformance.checks.common import check_request, crafted_check
from toolkit.conformance.model import Check, CheckFailed, CheckResult, CheckSkipped, Datagram, Status
from toolkit.conformance.runner import RunResult, Settings, TargetUnreachable, run_check, run_checks
from toolkit.conformance.steps import (
    Alive,
    Close,
    Connect,
    Do,
    DtlsAlert,
    Echo,
    Expect,
    Offer,
    Rebind,
    Require,
    Send,
    Silence,
    Socket,
    StunError,
    StunSuccess,
    Wait,
)
from toolkit.conformance.targets import (
    CallableTarget,
    CallsTarget,
    ReferenceTarget,
    Target,
    TargetError,
    WhipTarget,
    make_target,
)

__all__ = [
    "Alive", "CATALOG", "SANITY", "CallableTarget", "CallsTarget", "Check", "CheckFailed", "CheckResult",
    "CheckSkipped",
    "Close", "Connect", "Datagram", "Do", "DtlsAlert", "Echo", "Expect", "Offer", "Rebind", "ReferenceTarget",
    "Require", "RunResult", "Send", "Settings", "Silence", "Socket", "Status", "StunError", "StunSuccess",
    "Target", "TargetError", "TargetUnreachable", "Wait", "WhipTarget", "check_request", "crafted_check",
    "make_target", "run_check", "run_checks",
]
