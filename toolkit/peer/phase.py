"""Where a probe peer is in its life: the phases, the one table of legal moves, the one move.

`ProbePeer.state` changes only through `advance`, along `TRANSITIONS`; any other move raises
IllegalTransition, which is a bug in the peer, never bad input from a target (a target can make
the peer fail, never make it move illegally).

The peer's own, not the reference server's (docs/architecture.md principle 3): an offerer's life
(new, checking, dtls, connected) is not a server session's, and the judge must not change with
the judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class PeerPhase(StrEnum):
    """How far the peer has come. A StrEnum whose repr is its value's: a phase compares equal
    to, prints as and is quoted in messages as the string callers have always tested ("connected")."""

    NEW = "new"  # before start(): an offer, maybe an answer, nothing sent
    CHECKING = "checking"  # nominating checks in flight; no pair selected yet
    DTLS = "dtls"  # a nominating check was answered: the DTLS handshake runs on that pair
    CONNECTED = "connected"  # the handshake completed: SRTP is keyed, media and data flow
    FAILED = "failed"  # ICE, DTLS or consent failed (a PeerFailed event says why)
    CLOSED = "closed"  # closed locally (close()) or by the target's close_notify

    def __repr__(self) -> str:
        return repr(self.value)


TRANSITIONS: Mapping[PeerPhase, frozenset[PeerPhase]] = MappingProxyType({
    PeerPhase.NEW: frozenset({PeerPhase.CHECKING, PeerPhase.CLOSED}),
    PeerPhase.CHECKING: frozenset({PeerPhase.DTLS, PeerPhase.FAILED, PeerPhase.CLOSED}),
    PeerPhase.DTLS: frozenset({PeerPhase.CONNECTED, PeerPhase.FAILED, PeerPhase.CLOSED}),
    # Consent can expire on a connected pair; close_notify from the target closes it.
    PeerPhase.CONNECTED: frozenset({PeerPhase.FAILED, PeerPhase.CLOSED}),
    # close() ends any phase, a failed one included.
    PeerPhase.FAILED: frozenset({PeerPhase.CLOSED}),
    PeerPhase.CLOSED: frozenset(),
})
"""Every legal phase change, and the only place one is defined: a phase maps to the phases it may move to."""

ENDED = frozenset({PeerPhase.FAILED, PeerPhase.CLOSED})
"""The phases in which the peer takes no more datagrams and runs no timers."""


class IllegalTransition(Exception):
    """A phase change TRANSITIONS does not allow: a bug in the peer, never bad input."""

    def __init__(self, current: PeerPhase, to: PeerPhase) -> None:
        super().__init__(f"probe peer: no transition from {current.name} to {to.name}")
        self.current = current
        self.to = to


def advance(current: PeerPhase, to: PeerPhase) -> PeerPhase:
    """The phase after moving from `current` to `to`: `to`, if TRANSITIONS allows it; else raise
    IllegalTransition."""
    if to not in TRANSITIONS[current]:
        raise IllegalTransition(current, to)
    return to
