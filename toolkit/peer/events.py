"""What the probe peer tells its caller: small dataclasses, drained with `ProbePeer.next_event()`.

They are the peer's whole outward vocabulary. The parts emit their own directly: the ICE agent
IceCompleted, StunResponse and StunRequestReceived, the DTLS endpoint DtlsData and DtlsClosed.
The agent's IceFailed and the endpoint's handshake results are the parts' internal words, which
`core` turns into these (DtlsConnected with the peer's role, PeerFailed).
"""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]


@dataclass(slots=True)
class IceCompleted:
    """The nominating check to `remote` was answered; `rtt` counts from its first transmission."""

    remote: Address
    rtt: float


@dataclass(slots=True)
class DtlsConnected:
    srtp_profile: str
    cipher: str
    role: str = "client"
    """The probe peer's DTLS role: "client" or "server"."""


@dataclass(slots=True)
class DtlsData:
    """Application data over DTLS (SCTP, when a data channel is negotiated)."""

    data: bytes


@dataclass(slots=True)
class DtlsClosed:
    """The target sent close_notify."""


@dataclass(slots=True)
class RtpReceived:
    packet: bytes
    """Decrypted RTP."""
    addr: Address


@dataclass(slots=True)
class RtcpReceived:
    packet: bytes
    """Decrypted RTCP."""
    addr: Address


@dataclass(slots=True)
class StunResponse:
    """Every STUN response that arrives, the peer's own checks' and crafted ones' alike."""

    raw: bytes
    addr: Address
    transaction_id: bytes
    is_error: bool
    error_code: int | None


@dataclass(slots=True)
class StunRequestReceived:
    """The server sent a check; a lite server never should (it is answered when authentic)."""

    raw: bytes
    addr: Address
    answered: bool


@dataclass(slots=True)
class PeerFailed:
    reason: str


PeerEvent = (
    IceCompleted | DtlsConnected | DtlsData | DtlsClosed | RtpReceived | RtcpReceived
    | StunResponse | StunRequestReceived | PeerFailed
)
