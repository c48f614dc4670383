"""The session table: O(1) lookups by id, by local ufrag and by bound 5-tuple.

A 5-tuple enters `by_address` only through `bind`, which the core calls after a STUN check
passed USERNAME + MESSAGE-INTEGRITY + FINGERPRINT: nothing else creates routing state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import Address

if TYPE_CHECKING:
    from .dtls import DtlsEndpoint
    from .outbound import OutboundStream
    from .reception import ReceptionStats
    from .srtp import SrtpSession
    from .voice.endpoint import VoiceEndpoint


@dataclass(eq=False)
class Session:
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
    selected: Address | None = None
    dtls_address: Address | None = None
    srtp: SrtpSession | None = None
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

    @property
    def connected(self) -> bool:
        return self.srtp is not None


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
