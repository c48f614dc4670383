"""The probe peer: a scriptable WebRTC offerer that tests and benchmarks drive servers with.

`core` is the sans-IO peer, `offer` its SDP, `whip` its signaling, `udp` the asyncio shell.
"""

from __future__ import annotations

from toolkit.peer.core import (
    DtlsClosed,
    DtlsConnected,
    DtlsData,
    IceCompleted,
    PeerFailed,
    ProbePeer,
    RtcpReceived,
    RtpReceived,
    SrtpKeys,
    StunRequestReceived,
    StunResponse,
)
from toolkit.peer.offer import Answer, DtlsRoleError, PeerError, answer_role, build_offer, parse_answer
from toolkit.peer.udp import PeerConnection, connect_whip
from toolkit.peer.whip import whip_delete, whip_patch, whip_post

__all__ = [
    "Answer",
    "DtlsClosed",
    "DtlsConnected",
    "DtlsData",
    "DtlsRoleError",
    "IceCompleted",
    "PeerConnection",
    "PeerError",
    "PeerFailed",
    "ProbePeer",
    "RtcpReceived",
    "RtpReceived",
    "SrtpKeys",
    "StunRequestReceived",
    "StunResponse",
    "answer_role",
    "build_offer",
    "connect_whip",
    "parse_answer",
    "whip_delete",
    "whip_patch",
    "whip_post",
]
