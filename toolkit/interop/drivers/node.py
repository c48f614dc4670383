"""The node clients: werift and @roamhq/wrtc, each a script shipped under toolkit/interop/node/
that imports the shared scenario (toolkit/interop/js/scenario.mjs). Their packages are pinned in
the shipped package.json and package-lock.json; the scripts run from a per-user working folder
where `npm ci` installs those packages on first use (toolkit/interop/node_clients.py), never
from the package folder, which an installed rtcgate cannot write to."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from toolkit.interop import node_clients
from toolkit.interop.drivers.base import ClientMissing, Driver, Material, Targets, run_program


def _say(line: str) -> None:
    print(f"rtcgate interop: {line}", file=sys.stderr, flush=True)


class NodeDriver(Driver):
    package = ""
    script = ""

    def version(self) -> str:
        """The installed version of the client's package, installing the pinned ones first if needed."""
        if shutil.which("node") is None:
            raise ClientMissing("node is not installed; install Node.js 18 or newer (with npm)")
        try:
            folder = node_clients.ensure_installed(say=_say)
        except (node_clients.NodeClientsError, OSError) as exc:
            raise ClientMissing(str(exc)) from None
        return f"{self.package} {node_clients.installed_version(folder, self.package)}"

    async def session(self, targets: Targets, material: Material, workdir: Path) -> dict:
        folder = node_clients.prepare()
        return await run_program(["node", str(folder / self.script)], config=material.config(targets),
                                 workdir=workdir, name=self.name, deadline=self.deadline, cwd=folder)
