"""Sessions: where each one is in its life (one transition table), and the table that finds them.

A session's `phase` moves only through `Session.advance`, along `TRANSITIONS`; any other move
raises IllegalTransition. The table does O(1) lookups by id, by local ufrag and by bound
5-tuple. A 5-tuple enters `by_address` only through `bind`, which the core calls after a STUN
check passed USERNAME + MESSAGE-INTEGRITY + FINGERPRINT: nothing else creates routing state.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .events import Address

if TYPE_CHECKING:
    from .dtls import DtlsEndpoint
    from .outbound import OutboundStream
    from .reception import ReceptionStats
    from .srtp import SrtpSession
    from .voice.endpoint import VoiceEndpoint


class SessionPhase(Enum):
    """How far a session has come. Phases only move forward: ICE facts that come and go (which
    tuples are bound, which one is selected now) are routing state, not phases."""

    OFFERED = "offered"  # answered by signaling; no authenticated check yet
    CHECKED = "checked"  # an authenticated check bound a 5-tuple: DTLS may come from it
    SELECTED = "selected"  # a check nominated a pair (USE-CANDIDATE) before DTLS began
    DTLS_HANDSHAKING = "dtls_handshaking"  # the DTLS endpoint left NEW: a ClientHello came, or we sent ours
    CONNECTED = "connected"  # the handshake completed: SRTP is keyed, media flows
    CLOSED = "closed"  # freed (the reason is in the SessionClosed event); out of the table


TRANSITIONS: Mapping[SessionPhase, frozenset[SessionPhase]] = MappingProxyType({
    SessionPhase.OFFERED: frozenset({SessionPhase.CHECKED, SessionPhase.CLOSED}),
    # As DTLS server, the core takes a ClientHello from any bound tuple, nominated or not.
    SessionPhase.CHECKED: frozenset({SessionPhase.SELECTED, SessionPhase.DTLS_HANDSHAKING, SessionPhase.CLOSED}),
    SessionPhase.SELECTED: frozenset({SessionPhase.DTLS_HANDSHAKING, SessionPhase.CLOSED}),
    SessionPhase.DTLS_HANDSHAKING: frozenset({SessionPhase.CONNECTED, SessionPhase.CLOSED}),
    SessionPhase.CONNECTED: frozenset({SessionPhase.CLOSED}),
    SessionPhase.CLOSED: frozenset(),
})
"""Every legal phase change, and the only place one is defined: a phase maps to the phases it may move to."""


class IllegalTransition(Exception):
    """A phase change TRANSITIONS does not allow: a bug in the caller, never bad input."""

    def __init__(self, session_id: str, current: SessionPhase, to: SessionPhase) -> None:
        super().__init__(f"session {session_id}: no transition from {current.name} to {to.name}")
        self.current = current
        self.to = to


@dataclass(eq=False)
class Session:
    """One signaled session: its credentials and phase, its routing state (bound tuples, the
    selected pair), its DTLS endpoint and SRTP keys, and the setup times the metrics need."""

    id: str
    ufrag: str
    pwd: str
    remote_ufrag: str
    remote_pwd: str
    created_at: float
    dtls: DtlsEndpoint
    outbound: OutboundStream
    reception: ReceptionStats
    audio_payload_type: int = 111  # the offer's Opus payload type, which the answer keeps
    tuples: dict[Address, float] = field(default_factory=dict)  # address -> last authenticated check; oldest first
    selected: Address | None = None  # the pair nominated now; None again if another session took its address
    dtls_address: Address | None = None
    srtp: SrtpSession | None = None  # set on entering CONNECTED
    last_check: float | None = None
    first_stun_at: float | None = None
    selected_at: float | None = None
    dtls_at: float | None = None
    first_srtp_at: float | None = None
    first_response_at: float | None = None
    next_report_at: float | None = None
    voice: VoiceEndpoint | None = None
    voice_channel_open: bool = False
    voice_timer: float | None = None
    app: dict[str, Any] = field(default_factory=dict)  # room for later layers (data channels, voice)
    _phase: SessionPhase = field(default=SessionPhase.OFFERED, init=False)

    @property
    def phase(self) -> SessionPhase:
        return self._phase

    def advance(self, to: SessionPhase) -> None:
        """Move to phase `to`, if TRANSITIONS allows it from here; else raise IllegalTransition."""
        if to not in TRANSITIONS[self._phase]:
            raise IllegalTransition(self.id, self._phase, to)
        self._phase = to

    @property
    def connected(self) -> bool:
        return self._phase is SessionPhase.CONNECTED


class SessionTable:
    def __init__(self) -> None:
        self.by_id: dict[str, Session] = {}
        self.by_ufrag: dict[str, Session] = {}
        self.by_address: dict[Address, Session] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, session: Session) -> None:
        self.by_id[session.id] = session
        self.by_ufrag[session.ufrag] = session

    def remove(self, session: Session) -> None:
        self.by_id.pop(session.id, None)
        if self.by_ufrag.get(session.ufrag) is session:
            del self.by_ufrag[session.ufrag]
        for address in session.tuples:
            if self.by_address.get(address) is session:
                del self.by_address[address]
        session.tuples.clear()

    def set_credentials(self, session: Session, ufrag: str, pwd: str) -> None:
        """ICE restart: the old ufrag stops routing at once; bound tuples stay bound."""
        if self.by_ufrag.get(session.ufrag) is session:
            del self.by_ufrag[session.ufrag]
        session.ufrag, session.pwd = ufrag, pwd
        self.by_ufrag[ufrag] = session

    def bind(self, session: Session, address: Address, now: float, max_tuples: int) -> list[Address]:
        """Bind (or refresh) a tuple; returns the tuples evicted to respect the cap."""
        previous = self.by_address.get(address)
        if previous is not None and previous is not session:
            previous.tuples.pop(address, None)
            if previous.selected == address:
                previous.selected = None
        session.tuples.pop(address, None)
        session.tuples[address] = now
        self.by_address[address] = session
        evicted: list[Address] = []
        while len(session.tuples) > max_tuples:
            victim = next((a for a in session.tuples if a != session.selected and a != address), None)
            if victim is None:
                break
            del session.tuples[victim]
            del self.by_address[victim]
            evicted.append(victim)
        return evicted

    def unbind_stale(self, session: Session, older_than: float) -> None:
        """Forget tuples with no authenticated check since `older_than` (never the selected one)."""
        for address, last in list(session.tuples.items()):
            if last < older_than and address != session.selected:
                del session.tuples[address]
                if self.by_address.get(address) is session:
                    del self.by_address[address]
