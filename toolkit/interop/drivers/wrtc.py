"""@roamhq/wrtc (libwebrtc M106 in node) driven by toolkit/interop/node/wrtc_client.mjs.

Its libwebrtc gathers no loopback candidate; it checks the server's 127.0.0.1 candidate from
this machine's non-loopback address, which works on Linux (the traffic stays on `lo`)."""
from __future__ import annotations

from toolkit.interop.drivers.node import NodeDriver


class WrtcDriver(NodeDriver):
    name = "wrtc"
    title = "@roamhq/wrtc"
    stack = "libwebrtc M106 (node)"
    package = "@roamhq/wrtc"
    script = "wrtc_client.mjs"
    deadline = 60.0
