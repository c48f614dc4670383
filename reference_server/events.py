"""What the server core tells its shell: small dataclasses, drained with `next_event()`."""
from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]


@dataclass(slots=True, frozen=True)
class SessionCreated:
    session_id: str


@dataclass(slots=True, frozen=True)
class PairSelected:
    session_id: str
    address: Address


@dataclass(slots=True, frozen=True)
class DtlsConnected:
    session_id: str
    srtp_profile: str
    cipher: str


@dataclass(slots=True, frozen=True)
class MediaStarted:
    session_id: str


@dataclass(slots=True, frozen=True)
class DataChannelBytes:
    """Decrypted DTLS application data (one SCTP packet) of a session whose offer had a data channel."""

    session_id: str
    data: bytes


@dataclass(slots=True, frozen=True)
class SessionClosed:
    session_id: str
    reason: str


Event = SessionCreated | PairSelected | DtlsConnected | MediaStarted | DataChannelBytes | SessionClosed
