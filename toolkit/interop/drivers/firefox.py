"""Firefox ESR (nICEr, NSS), headless and driverless, with a fresh profile whose user.js allows
WebRTC without prompts and turns off everything that would reach out to the network.

Firefox neither gathers a loopback candidate nor checks a remote 127.0.0.1 one, so against an
ICE-lite server (which never checks) it connects only when the server advertises a non-loopback
address of this machine; the matrix starts such a server for it (`needs_host_address`).
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from toolkit.interop.drivers.base import Driver, Material, Targets, tool_version
from toolkit.interop.drivers.browser import browse

FIREFOX = "/usr/lib/firefox-esr/firefox-esr"
PREFS = {
    # WebRTC and audio without devices, prompts or gestures.
    "media.navigator.permission.disabled": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.loopback": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    # No sound card here: without cubeb's mock context an AudioContext stays suspended forever.
    "media.cubeb.force_mock_context": True,
    # The page's console goes to the log, for diagnosis.
    "devtools.console.stdout.content": True,
    # Nothing leaves the machine: no updates, telemetry, safe browsing, remote settings, captive
    # portal or connectivity probes, DNS over HTTPS, prefetching, plugin (OpenH264) downloads.
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.topsites.contile.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "browser.search.update": False,
    "browser.ping-centre.telemetry": False,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-gmpopenh264.enabled": False,
    "media.gmp-widevinecdm.enabled": False,
    "geo.provider.network.url": "",
    "identity.fxaccounts.enabled": False,
    "dom.push.connection.enabled": False,
    "security.OCSP.enabled": 0,
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
}


def no_network_prefs(local_hosts: list[str]) -> dict:
    """A proxy that does not exist for everything but `local_hosts`: whatever the prefs above
    miss fails at once, without a DNS query (a proxied URL's host is the proxy's to resolve)."""
    return {"network.proxy.type": 1, "network.proxy.http": "127.0.0.1", "network.proxy.http_port": 9,
            "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": 9, "network.proxy.share_proxy_settings": True,
            "network.proxy.allow_hijacking_localhost": False, "network.proxy.no_proxies_on": ", ".join(local_hosts)}


def user_js(prefs: dict) -> str:
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "".join(f'user_pref("{name}", {value(v)});\n' for name, v in prefs.items())


class FirefoxDriver(Driver):
    name = "firefox"
    title = "Firefox ESR"
    stack = "nICEr, NSS"
    needs_host_address = True
    deadline = 75.0

    def version(self) -> str:
        return tool_version([FIREFOX, "--version"], f"Firefox ESR is not installed ({FIREFOX} missing); "
                                                   "run scripts/install-clients.sh")

    async def session(self, targets: Targets, material: Material, workdir: Path) -> dict:
        local = sorted({"127.0.0.1", *(urlsplit(u).hostname for u in (targets.echo_url, targets.voice_url) if u)})

        def command(profile: Path) -> list[str]:
            (profile / "user.js").write_text(user_js({**PREFS, **no_network_prefs(local)}))
            return [FIREFOX, "--headless", "--no-remote", "--profile", str(profile)]

        # Release builds honour services.settings.server only with this variable set.
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_REMOTE_SETTINGS_DEVTOOLS="1")
        return await browse(self, command, env, targets, material, workdir)
