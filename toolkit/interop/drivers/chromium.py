"""Chromium (libwebrtc), headless, on the loopback server: it gathers 127.0.0.1 only with
--allow-loopback-in-peer-connection, the flag the project's Chromium tests use too."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from toolkit.interop.drivers.base import Driver, Material, Targets, tool_version
from toolkit.interop.drivers.browser import browse

CHROMIUM = "/usr/lib/chromium/chromium"  # Debian's binary; the /usr/bin wrapper adds flags of its own
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
    # Nothing leaves the machine: host candidates are not published over mDNS, and (below) every
    # host but the matrix's own addresses fails without a DNS query, so the sign-in and component
    # updaters that --disable-background-networking leaves on look nothing up.
    "--disable-features=WebRtcHideLocalIpsWithMdns", "--no-pings", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
)


def resolver_rules(targets: Targets) -> str:
    local = sorted({"127.0.0.1", *(urlsplit(u).hostname for u in (targets.echo_url, targets.voice_url) if u)})
    return "--host-resolver-rules=MAP * ~NOTFOUND, " + ", ".join(f"EXCLUDE {host}" for host in local)


class ChromiumDriver(Driver):
    name = "chromium"
    title = "Chromium"
    stack = "libwebrtc"
    deadline = 75.0

    def version(self) -> str:
        return tool_version([CHROMIUM, "--version"], f"Chromium is not installed ({CHROMIUM} missing); "
                                                     "run scripts/install-clients.sh")

    async def session(self, targets: Targets, material: Material, workdir: Path) -> dict:
        def command(profile: Path) -> list[str]:
            return [CHROMIUM, *FLAGS, resolver_rules(targets), f"--user-data-dir={profile}"]

        return await browse(self, command, None, targets, material, workdir)
