"""aiortc (Python), driven by toolkit/interop/clients/aiortc_client.py in this Python's own
environment (sys.executable -m, so it imports the same toolkit), as a child process so a hung
client can be killed like any other."""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from toolkit.interop.drivers.base import ClientMissing, Driver, Material, Targets, run_program


class AiortcDriver(Driver):
    name = "aiortc"
    title = "aiortc"
    stack = "aioice, pyOpenSSL, pylibsrtp"
    cannot = {"ice_restart": "aiortc 1.16 has no ICE restart (no restartIce(), no iceRestart offer option)"}
    deadline = 60.0

    def version(self) -> str:
        try:
            return f"aiortc {metadata.version('aiortc')}"
        except metadata.PackageNotFoundError:
            raise ClientMissing("aiortc is not installed in this Python; pip install -e . installs it") from None

    async def session(self, targets: Targets, material: Material, workdir: Path) -> dict:
        return await run_program([sys.executable, "-m", "toolkit.interop.clients.aiortc_client"],
                                 config=material.config(targets), workdir=workdir, name=self.name,
                                 deadline=self.deadline)
