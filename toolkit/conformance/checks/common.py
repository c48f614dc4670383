"""Payloads and conditions the catalog's checks share."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from toolkit.conformance.conversation import Conversation
from toolkit.conformance.model import CheckFailed
from toolkit.conformance.steps import Payload, Require

ICE_CHARS = string.ascii_letters + string.digits + "+/"

UNASSIGNED_REQUIRED_ATTRIBUTE = 0x7F31
"""A comprehension-required STUN attribute type (0x0000–0x7FFF) that IANA has not assigned."""


def transaction_id(conversation: Conversation) -> bytes:
    return conversation.rng.getrandbits(96).to_bytes(12, "big")


def random_text(conversation: Conversation, length: int) -> str:
    return "".join(conversation.rng.choice(ICE_CHARS) for _ in range(length))


def check_request(session: str = "main", **knobs: Any) -> Payload:
    """The session peer's own connectivity check, with `ProbePeer.binding_request` knobs."""

    def build(conversation: Conversation) -> bytes:
        options = dict(knobs)
        options.setdefault("transaction_id", transaction_id(conversation))
        return conversation.session(session).peer.binding_request(**options)

    return build


def crafted_check(
    session: str = "main",
    *,
    modify: Callable[[Any, Conversation], Any] | None = None,
    username: Callable[[Conversation], str] | None = None,
    password: Callable[[Conversation], str] | None = None,
    **ice_check_options: Any,
) -> Payload:
    """An ICE check built with the STUN crafter from the session's credentials.

    `modify(message, conversation)` may edit the scapy message (attributes, lengths, MI...)
    before its bytes are taken; `username`/`password` override the credentials.
    """

    def build(conversation: Conversation) -> bytes:
        from toolkit.crafters.stun import ice_check

        peer = conversation.session(session).peer
        message = ice_check(
            username(conversation) if username else f"{peer.answer.ice_ufrag}:{peer.local_ufrag}",
            password(conversation) if password else peer.answer.ice_pwd,
            transaction_id=transaction_id(conversation),
            tie_breaker=peer.tie_breaker,
            **ice_check_options,
        )
        if modify is not None:
            message = modify(message, conversation) or message
        return bytes(message)

    return build


def ice_lite(conversation: Conversation) -> str | None:
    """Requirement of the `lite` checks: the answer says a=ice-lite."""
    session = next(iter(conversation.sessions.values()))
    if not session.peer.answer.ice_lite:
        return "the target is a full ICE agent (no a=ice-lite in its answer): ICE-lite checks do not apply"
    return None


def can_restart(conversation: Conversation) -> str | None:
    if not conversation.target.can_restart:
        return f"{conversation.target.description} has no ICE restart (WHIP PATCH) to drive"
    return None


def answer_lines(conversation: Conversation, session: str = "main") -> list[str]:
    sdp = conversation.session(session).answer_sdp or ""
    return [line.rstrip("\r") for line in sdp.split("\n") if line.strip()]


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def not_yet(reason: str) -> Require:
    """The single step of a check that cannot run yet: it SKIPs, saying what is missing."""
    return Require(lambda conversation: f"not implemented yet: {reason}", "not implemented yet")
