"""A browser run keeps its profile in a temporary directory that is gone afterwards: the report
folder gets the browser's log and the page's report, not megabytes of profile."""
from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import pytest

from toolkit.interop.drivers.base import ClientFailed, Driver, Targets
from toolkit.interop.drivers.browser import browse

# A stand-in browser: fills its profile, then POSTs a report to the page's /report URL.
FAKE_BROWSER = """
import json, os, sys, urllib.parse, urllib.request
profile, url = sys.argv[1], sys.argv[2]
with open(os.path.join(profile, "cache.bin"), "wb") as cache:
    cache.write(b"x" * 200_000)
if sys.argv[3] == "report":
    report = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["report"][0]
    body = json.dumps({"profile": profile, "files": sorted(os.listdir(profile))}).encode()
    request = urllib.request.Request(report, data=body, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()
"""


class FakeBrowser(Driver):
    name = "fakebrowser"
    title = "Fake browser"
    deadline = 20.0


class NoMaterial:
    files: dict = {}

    def config(self, targets):
        return {}


def run(workdir: Path, behaviour: str) -> tuple[dict | None, list[Path]]:
    profiles: list[Path] = []

    def command(profile: Path) -> list[str]:
        assert profile.is_dir() and not any(profile.iterdir())
        assert not profile.is_relative_to(workdir)
        (profile / "user.js").write_text("settings a driver writes\n")
        profiles.append(profile)
        # argv: profile, then the page URL browse() appends, then the behaviour
        return [sys.executable, "-c", FAKE_BROWSER.replace("sys.argv[3]", repr(behaviour)), str(profile)]

    report = asyncio.run(browse(FakeBrowser(), command, None, Targets("http://127.0.0.1:9/whip", None),
                                NoMaterial(), workdir))
    return report, profiles


def test_the_profile_is_temporary_and_removed_after_the_run(tmp_path):
    report, [profile] = run(tmp_path, "report")
    assert report["profile"] == str(profile) and report["files"] == ["cache.bin", "user.js"]
    assert not profile.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fakebrowser.log", "fakebrowser.report.json"]


def test_the_profile_is_removed_when_the_browser_fails_too(tmp_path):
    with pytest.raises(ClientFailed, match="no report from the page"):  # it exits without one
        run(tmp_path, "exit")
    assert [path.name for path in tmp_path.iterdir()] == ["fakebrowser.log"]
    assert not list(Path(tempfile.gettempdir()).glob("rtcgate-fakebrowser-profile-*"))
