"""werift (TypeScript WebRTC) driven by toolkit/interop/node/werift_client.mjs."""
from __future__ import annotations

from toolkit.interop.drivers.node import NodeDriver


class WeriftDriver(NodeDriver):
    name = "werift"
    title = "werift"
    stack = "TypeScript ICE/DTLS/SCTP; no Opus codec (sends pre-encoded Opus)"
    package = "werift"
    script = "werift_client.mjs"
    deadline = 60.0
    known_failures = {
        "ice_restart": "werift 0.25.2 sends no check with the new credentials after an ICE restart: "
                       "RTCPeerConnection.connect() returns before iceTransport.start() when DTLS is already "
                       "connected, so the restarted agent never runs its checklist",
    }
