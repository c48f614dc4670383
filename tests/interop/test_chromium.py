"""Headless Chromium (libwebrtc) publishes its fake microphone to the reference server over WHIP.

No browser driver: the test serves a page from its own loopback HTTP server, the page
does the WebRTC work and POSTs its getStats() back, and the test judges that report.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp import web

pytestmark = pytest.mark.interop

PAGE = Path(__file__).with_name("chromium_page.html")
SESSION_TIMEOUT = 45.0  # the page bounds its own steps well inside this
MIN_PACKETS = 50  # the page listens for 3 s: ~150 packets at 20 ms

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
)


async def serve_page() -> tuple[web.AppRunner, str, asyncio.Future]:
    """Serve the page and a /report endpoint on a free loopback port; the future gets the report."""
    reported: asyncio.Future = asyncio.get_running_loop().create_future()

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def report(request: web.Request) -> web.Response:
        if not reported.done():
            reported.set_result(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_post("/report", report)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}", reported


async def chromium_session(chromium: Path, whip_url: str, profile: Path) -> dict:
    """One fresh browser, one page load, one WHIP session; returns the page's report."""
    runner, base_url, reported = await serve_page()
    url = f"{base_url}/?" + urlencode({"whip": whip_url, "report": f"{base_url}/report"})
    log = (profile.parent / f"{profile.name}.log").open("wb")
    browser = await asyncio.create_subprocess_exec(
        str(chromium), *FLAGS, f"--user-data-dir={profile}", url,
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        done, _ = await asyncio.wait({reported, asyncio.ensure_future(browser.wait())},
                                     timeout=SESSION_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if reported not in done:
            exited = f"exited with {browser.returncode}" if browser.returncode is not None else "still running"
            raise AssertionError(f"no report from the page within {SESSION_TIMEOUT} s (Chromium "
                                 f"{exited}); see {log.name}")
        return reported.result()
    finally:
        if browser.returncode is None:
            os.killpg(browser.pid, signal.SIGKILL)  # the browser and all its helpers, nothing else
        await browser.wait()
        log.close()
        await runner.cleanup()


@pytest.mark.timeout(180)
def test_chromium_three_sessions_send_and_receive_audio(chromium, rtcgate_server, tmp_path):
    for attempt in range(3):
        report = asyncio.run(chromium_session(chromium, rtcgate_server.whip_url, tmp_path / f"profile{attempt}"))
        context = f"session {attempt + 1}: {json.dumps(report, indent=1)}"
        assert "error" not in report, context
        transport = report["transport"]
        assert report["connectionState"] == "connected", context
        assert report["iceConnectionState"] in ("connected", "completed"), context
        assert transport["iceState"] in ("connected", "completed"), context
        assert transport["dtlsState"] == "connected", context
        assert transport["srtpCipher"], context
        assert transport["tlsVersion"], context
        pair = transport["selectedCandidatePair"]
        assert (pair["remote"]["address"], pair["remote"]["port"]) == ("127.0.0.1", rtcgate_server.udp_port), context
        assert report["outbound"]["packetsSent"] > MIN_PACKETS, context
        inbound = report["inbound"]
        assert inbound["packetsReceived"] > MIN_PACKETS, context
        assert inbound["totalSamplesReceived"] - inbound["concealedSamples"] > 0, context
        assert report["deleteStatus"] == 200, context
