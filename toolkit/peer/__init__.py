"""The probe peer: a scriptable WebRTC offerer that tests and benchmarks drive servers with.

Two layers, one line between them (docs/architecture.md principle 1):

- sans-IO, in this package: `core` (ProbePeer) composes `ice`, `dtls` and `srtp`, moves along
  the phases of `phase`, and speaks the `events`; `offer` is its SDP, `audio` its Opus,
  `realtime_events` the realtime API's data-channel events as a voice check reads them.
  No sockets, no event loop, no clock.
- I/O, in `shell/`: `udp` (a ProbePeer on a real socket, and `PeerTimer`, the one asyncio
  timer any shell around a ProbePeer keeps), `whip` (signaling over HTTP) and
  `datachannel` (SCTP over the peer's DTLS, through aiortc).

The names below are the public surface. The shell's are loaded on first use (`__getattr__`), so
importing the sans-IO peer (a fuzz harness, a fake-clock test) loads neither aiohttp nor aiortc.
"""

from __future__ import annotations

import importlib

from toolkit.peer.core import ProbePeer
from toolkit.peer.events import (
    DtlsClosed,
    DtlsConnected,
    DtlsData,
    IceCompleted,
    PeerFailed,
    RtcpReceived,
    RtpReceived,
    StunRequestReceived,
    StunResponse,
)
from toolkit.peer.offer import Answer, DtlsRoleError, PeerError, answer_role, build_offer, parse_answer
from toolkit.peer.phase import IllegalTransition, PeerPhase
from toolkit.peer.srtp import SrtpKeys

_SHELL_NAMES = {
    "PeerConnection": "toolkit.peer.shell.udp",
    "PeerTimer": "toolkit.peer.shell.udp",
    "connect_whip": "toolkit.peer.shell.udp",
    "whip_delete": "toolkit.peer.shell.whip",
    "whip_patch": "toolkit.peer.shell.whip",
    "whip_post": "toolkit.peer.shell.whip",
}


def __getattr__(name: str) -> object:
    """PEP 562: the shell's names, imported when first asked for."""
    module = _SHELL_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Answer",
    "DtlsClosed",
    "DtlsConnected",
    "DtlsData",
    "DtlsRoleError",
    "IceCompleted",
    "IllegalTransition",
    "PeerConnection",
    "PeerError",
    "PeerFailed",
    "PeerPhase",
    "PeerTimer",
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
