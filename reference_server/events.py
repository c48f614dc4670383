"""What the server core tells its shell: small dataclasses, drained with `next_event()`."""
from __future__ import annotations

from dataclasses import dataclass

from .reasons import CloseReason

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
    reason: CloseReason


@dataclass(slots=True, frozen=True)
class VoiceStarted:
    """The session's voice endpoint exists: the shell starts a model driver for it."""
    session_id: str


@dataclass(slots=True, frozen=True)
class VoiceMessage:
    """A server event (JSON text) for the client's events channel."""
    session_id: str
    text: str


@dataclass(slots=True, frozen=True)
class VoiceAction:
    """StartTurn / CancelTurn for the shell's model driver."""
    session_id: str
    action: object


Event = (SessionCreated | PairSelected | DtlsConnected | MediaStarted | DataChannelBytes | SessionClosed
         | VoiceStarted | VoiceMessage | VoiceAction)
