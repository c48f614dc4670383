"""GStreamer webrtcbin (libnice, OpenSSL), driven by toolkit/interop/gst/webrtcbin_client.py
(shipped with the package) under the system Python, which has `gi` and GStreamer's typelibs:
rtcgate's own interpreter usually has neither."""
from __future__ import annotations

import subprocess
from pathlib import Path

from toolkit.interop.drivers.base import ClientMissing, Driver, Material, Targets, run_program
from toolkit.resources import shipped

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0'); "
         "gi.require_version('GstSdp', '1.0'); from gi.repository import Gst, GstWebRTC, GstSdp; Gst.init(None); "
         "missing = [e for e in ('webrtcbin', 'nicesrc', 'opusenc', 'opusdec', 'rtpopuspay', 'rtpopusdepay', 'appsrc', "
         "'appsink', 'dtlssrtpenc') if Gst.ElementFactory.find(e) is None]; "
         "print('missing elements: ' + ' '.join(missing) if missing else Gst.version_string())")


class GStreamerDriver(Driver):
    name = "gstreamer"
    title = "GStreamer webrtcbin"
    stack = "libnice, OpenSSL"
    cannot = {"ice_restart": "webrtcbin 1.22 has no ICE restart: create-offer takes no ice-restart option and a "
                             "new offer keeps the session's ICE credentials"}
    deadline = 60.0

    def version(self) -> str:
        hint = "run scripts/install-clients.sh (GStreamer 1.22 plugins, gir1.2 typelibs, python3-gi)"
        try:
            result = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClientMissing(f"GStreamer cannot be probed with {SYSTEM_PYTHON} ({exc}); {hint}") from None
        output = (result.stdout or result.stderr).strip().splitlines()
        line = output[-1] if output else ""
        if result.returncode != 0 or not line.startswith("GStreamer"):
            raise ClientMissing(f"GStreamer webrtcbin is not usable from {SYSTEM_PYTHON}: {line or result.returncode}; "
                                f"{hint}")
        return line

    async def session(self, targets: Targets, material: Material, workdir: Path) -> dict:
        script = shipped("interop", "gst", "webrtcbin_client.py")
        return await run_program([SYSTEM_PYTHON, str(script)], config=material.config(targets), workdir=workdir,
                                 name=self.name, deadline=self.deadline)
