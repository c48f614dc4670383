"""Drop and close reasons are published metric labels: the enums must keep their exact strings."""
from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

from reference_server.reasons import CloseReason, DropReason

PACKAGE = Path(__file__).resolve().parents[2] / "reference_server"
COUNTING_MODULES = ("core.py", "demux.py", "shell/relay_worker.py")
"""The modules that count into rtcgate_drops_total (relay/routing.py has its own family)."""

DROP_LABELS = {
    "empty", "oversized", "stun_short", "stun_no_cookie", "stun_bad_length", "dtls_short", "rtp_short",
    "unknown_first_byte",
    "stun_malformed", "stun_unsupported_method", "stun_unexpected_response", "stun_no_fingerprint",
    "stun_bad_fingerprint", "stun_bad_request", "stun_unknown_ufrag", "stun_bad_integrity",
    "stun_unknown_attribute", "stun_role_conflict", "stun_error_rate_limited",
    "dtls_unbound", "dtls_application_data",
    "rtp_unbound", "rtp_before_dtls", "srtp_unprotect_failed", "rtp_malformed", "rtp_unexpected_payload_type",
    "rtcp_unbound", "rtcp_before_dtls", "srtcp_unprotect_failed", "rtcp_malformed",
    "internal_error",
    "relay_foreign_source", "relay_malformed", "relay_wrong_kind",
}
"""rtcgate_drops_total's reason labels as the server counted them when they were bare strings."""

CLOSE_LABELS = {"signaling", "dtls_failed", "dtls_closed", "connect_timeout", "consent_timeout"}
"""rtcgate_sessions_closed_total's reason labels (and SessionClosed.reason) from the same time."""


def test_the_label_values_are_unchanged():
    assert {reason.value for reason in DropReason} == DROP_LABELS
    assert {reason.value for reason in CloseReason} == CLOSE_LABELS


def test_a_reason_is_its_label_wherever_it_is_printed_counted_or_serialized():
    for reason in (*DropReason, *CloseReason):
        assert str(reason) == f"{reason}" == "%s" % reason == reason.value
        assert reason == reason.value and hash(reason) == hash(reason.value)
        assert json.dumps({reason: reason}) == json.dumps({reason.value: reason.value})
    counts = Counter({DropReason.STUN_UNKNOWN_UFRAG: 1})
    counts["stun_unknown_ufrag"] += 1  # a counter keyed by a member and by its text is one counter
    assert counts == {"stun_unknown_ufrag": 2}


def _calls_and_subscripts(tree: ast.AST):
    """(what, argument) for each `_drop(x, ...)`, `_free(s, x)`, `DemuxError(x, ...)` and `drops[x]`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name in ("_drop", "DemuxError") and node.args:
                yield name, node.args[0]
            elif name == "_free" and len(node.args) > 1:
                yield name, node.args[1]
        elif isinstance(node, ast.Subscript) and getattr(node.value, "attr", None) == "drops":
            yield "drops[]", node.slice


def test_every_reason_the_server_counts_is_a_member_and_every_member_is_counted():
    """A bare string would be a label no list (and no test) knows of; an unused member a dead label."""
    used: set[str] = set()
    for module in COUNTING_MODULES:
        tree = ast.parse((PACKAGE / module).read_text(), module)
        for what, argument in _calls_and_subscripts(tree):
            assert not isinstance(argument, ast.Constant), (
                f"{module}:{argument.lineno}: {what} counts the bare {argument.value!r}; use a DropReason/CloseReason")
        used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                 and getattr(node.value, "id", None) in ("DropReason", "CloseReason")}
    assert used == {reason.name for reason in (*DropReason, *CloseReason)}
