"""The node clients run from a per-user cache, never from the package folder (toolkit/interop/node_clients.py).

An installed rtcgate's package folder is read-only to its users: `npm ci` there fails, and
node_modules must never be shipped. These tests use a fake `npm` on PATH that installs the
pinned versions, so they are fast and need no network.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from toolkit.interop import node_clients
from toolkit.interop.drivers.werift import WeriftDriver
from toolkit.resources import shipped

FAKE_NPM = """#!/bin/sh
# Stands in for `npm ci`: records where and how it ran, installs what package.json pins.
echo "$PWD $*" >> "{log}"
python3 - <<'EOF'
import json, os
for name, version in json.load(open("package.json"))["dependencies"].items():
    os.makedirs(f"node_modules/{{name}}", exist_ok=True)
    json.dump({{"name": name, "version": version}}, open(f"node_modules/{{name}}/package.json", "w"))
EOF
"""


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with a fake npm and a stand-in node; returns the log npm writes to."""
    bin_dir, log = tmp_path / "bin", tmp_path / "npm.log"
    bin_dir.mkdir()
    for name, body in (("npm", FAKE_NPM.format(log=log)), ("node", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_the_working_folder_is_in_the_user_cache_keyed_by_the_lock_file(cache: Path):
    shipped_before = _listing(shipped("interop"))
    folder = node_clients.prepare()
    assert folder.parent.parent == cache / "rtcgate"
    assert folder.parent.name.startswith("node-") and len(folder.parent.name) == len("node-") + 16
    for name in ("package.json", "package-lock.json", "werift_client.mjs", "wrtc_client.mjs", "common.mjs"):
        assert (folder / name).read_bytes() == shipped("interop", "node", name).read_bytes()
    # The scripts import the shared scenario as ../js/scenario.mjs: it is there, beside node/.
    assert (folder.parent / "js" / "scenario.mjs").read_bytes() == shipped("interop", "js", "scenario.mjs").read_bytes()
    assert _listing(shipped("interop")) == shipped_before, "preparing the working folder wrote into the package"


def test_a_changed_script_is_refreshed_and_npms_packages_are_kept(cache: Path):
    folder = node_clients.prepare()
    (folder / "common.mjs").write_text("// stale\n")
    (folder / "node_modules" / "werift").mkdir(parents=True)
    node_clients.prepare()
    assert (folder / "common.mjs").read_bytes() == shipped("interop", "node", "common.mjs").read_bytes()
    assert (folder / "node_modules" / "werift").is_dir()


def test_npm_ci_runs_in_the_cache_once_and_the_driver_reports_the_pinned_version(cache: Path, fake_npm: Path):
    pinned = json.loads(shipped("interop", "node", "package.json").read_text())["dependencies"]
    assert WeriftDriver().version() == f"werift {pinned['werift']}"
    folder = node_clients.home() / "node"
    assert fake_npm.read_text().splitlines() == [f"{folder} ci --no-audit --no-fund --loglevel=error"]
    assert node_clients.not_installed(folder) == []
    node_clients.ensure_installed()
    assert len(fake_npm.read_text().splitlines()) == 1, "npm ci ran again with everything installed"


def test_a_version_other_than_the_pinned_one_is_reinstalled(cache: Path, fake_npm: Path):
    folder = node_clients.ensure_installed()
    (folder / "node_modules" / "werift" / "package.json").write_text(json.dumps({"version": "0.0.1"}))
    assert node_clients.not_installed(folder) == [f"werift@{node_clients.pinned()['werift']}"]
    node_clients.ensure_installed()
    assert len(fake_npm.read_text().splitlines()) == 2
    assert node_clients.not_installed(folder) == []


def test_without_npm_the_client_is_missing_with_what_to_install(cache: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    bin_dir = tmp_path / "only-node"
    bin_dir.mkdir()
    (bin_dir / "node").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "node").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(node_clients.NodeClientsError, match="npm not found: install Node.js 18 or newer"):
        node_clients.ensure_installed()
    from toolkit.interop.drivers.base import ClientMissing

    with pytest.raises(ClientMissing, match="npm not found"):
        WeriftDriver().version()


def test_a_failing_npm_ci_is_reported_with_its_output(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\necho 'npm ERR! network unreachable' >&2\nexit 1\n")
    (bin_dir / "node").write_text("#!/bin/sh\nexit 0\n")
    for name in ("npm", "node"):
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(node_clients.NodeClientsError, match="failed with exit code 1: npm ERR! network unreachable"):
        node_clients.ensure_installed()
