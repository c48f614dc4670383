"""The node clients' working folder: the shipped scripts beside their npm packages, in a per-user cache.

werift and @roamhq/wrtc are pinned by toolkit/interop/node/package.json and package-lock.json,
which ship with the scripts that drive them (node/*.mjs, and the shared js/scenario.mjs they
import as ../js/). npm installs packages next to the scripts that import them, and an installed
rtcgate's package folder is neither writable nor ours to change, so the scripts run from a copy:

    <cache>/node-<first 16 hex digits of the lock file's SHA-256>/node/   package.json, lock, *.mjs, node_modules/
    <cache>/node-<...>/js/                                               scenario.mjs

where <cache> is $XDG_CACHE_HOME/rtcgate (~/.cache/rtcgate when unset). `npm ci` installs the
lock file's exact versions there once per lock file; the scripts are refreshed on every use, so
a newer rtcgate with the same lock file reuses what npm installed. The same code serves a
checkout and an installed wheel. `python -m toolkit.interop.node_clients` installs them and
prints the folder (scripts/install-clients.sh calls it); the node drivers install on first use.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from toolkit.resources import shipped

LOCK_FILE = "package-lock.json"
MANIFEST = "package.json"
NPM_TIMEOUT = 900.0  # seconds for `npm ci` (a cold cache downloads @roamhq/wrtc's native build)
NPM_CI = ("ci", "--no-audit", "--no-fund", "--loglevel=error")


class NodeClientsError(Exception):
    """node or npm is missing, or `npm ci` failed; the message says which and what to do."""


def cache_root() -> Path:
    """rtcgate's per-user cache: $XDG_CACHE_HOME/rtcgate, else ~/.cache/rtcgate (XDG ignores relative values)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "rtcgate"


def home() -> Path:
    """The working folder for the shipped lock file."""
    digest = hashlib.sha256(shipped("interop", "node", LOCK_FILE).read_bytes()).hexdigest()[:16]
    return cache_root() / f"node-{digest}"


def shipped_files() -> dict[str, Path]:
    """Path inside the working folder -> the shipped file it copies."""
    node, js = shipped("interop", "node"), shipped("interop", "js")
    files = {f"node/{name}": node / name for name in (MANIFEST, LOCK_FILE)}
    files.update({f"node/{path.name}": path for path in sorted(node.glob("*.mjs"))})
    files.update({f"js/{path.name}": path for path in sorted(js.glob("*.mjs"))})
    return files


def prepare() -> Path:
    """Bring the working folder's scripts up to date with the shipped ones; returns its node/ folder.
    Each file is replaced atomically, so a client starting meanwhile sees the old or the new one."""
    root = home()
    for relative, source in shipped_files().items():
        target = root / relative
        data = source.read_bytes()
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)
    return root / "node"


def pinned() -> dict[str, str]:
    """The packages the shipped package.json pins, name -> exact version."""
    return json.loads(shipped("interop", "node", MANIFEST).read_text())["dependencies"]


def installed_version(folder: Path, package: str) -> str | None:
    """The version of `package` npm installed under `folder`/node_modules, or None."""
    try:
        return json.loads((folder / "node_modules" / package / MANIFEST).read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def not_installed(folder: Path) -> list[str]:
    """The pinned packages not installed at their pinned version under `folder`, as name@version."""
    return [f"{name}@{version}" for name, version in pinned().items() if installed_version(folder, name) != version]


def ensure_installed(say: Callable[[str], None] = lambda line: None) -> Path:
    """The node/ working folder with every pinned package installed: `npm ci` runs there when one is
    missing (one process at a time, under a lock file). NodeClientsError when that cannot happen."""
    folder = prepare()
    if not not_installed(folder):
        return folder
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeClientsError(f"{'node' if node is None else 'npm'} not found: install Node.js 18 or newer with npm; "
                               f"rtcgate then installs {', '.join(not_installed(folder))} into {folder}")
    with _locked(folder.parent / ".install.lock"):
        missing = not_installed(folder)  # another process may have installed them while we waited
        if missing:
            say(f"installing {', '.join(missing)} with npm ci into {folder}")
            try:
                done = subprocess.run([npm, *NPM_CI], cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise NodeClientsError(f"npm ci in {folder} took longer than {NPM_TIMEOUT:g} s") from None
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip()[-800:]
                raise NodeClientsError(f"npm ci in {folder} failed with exit code {done.returncode}: {tail}")
            if still := not_installed(folder):
                raise NodeClientsError(f"npm ci in {folder} did not install {', '.join(still)}")
    return folder


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> int:
    """Install the pinned node clients; print their working folder. Exit 2 when that fails."""
    try:
        folder = ensure_installed(say=lambda line: print(f"rtcgate: {line}", file=sys.stderr, flush=True))
    except (NodeClientsError, OSError) as exc:
        print(f"rtcgate: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
