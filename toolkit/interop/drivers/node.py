"""The node clients: werift and @roamhq/wrtc, each a script under toolkit/interop/node/ that
imports the shared scenario (toolkit/interop/js/scenario.mjs). Their packages are pinned in
toolkit/interop/node/package.json and installed with `npm ci` by scripts/install-clients.sh."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from toolkit.interop.drivers.base import ClientMissing, Driver, Material, Targets, run_program

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
INSTALL_HINT = "run scripts/install-clients.sh (npm ci in toolkit/interop/node)"


def installed_version(package: str) -> str:
    """The version npm installed under toolkit/interop/node, or ClientMissing."""
    if shutil.which("node") is None:
        raise ClientMissing("node is not installed; install Node.js 18 or newer")
    manifest = NODE_DIR / "node_modules" / package / "package.json"
    if not manifest.is_file():
        raise ClientMissing(f"{package} is not installed; {INSTALL_HINT}")
    return json.loads(manifest.read_text())["version"]


class NodeDriver(Driver):
    package = ""
    script = ""

    def version(self) -> str:
        return f"{self.package} {installed_version(self.package)}"

    async def session(self, targets: Targets, material: Material, workdir: Path) -> dict:
        return await run_program(["node", str(NODE_DIR / self.script)], config=material.config(targets),
                                 workdir=workdir, name=self.name, deadline=self.deadline, cwd=NODE_DIR)
