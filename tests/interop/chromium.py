"""Headless Chromium on a test page, without a browser driver.

The test serves the page from its own loopback HTTP server; the page does the WebRTC work and
POSTs its report to `?report=URL`. `run_page` starts one fresh browser on the page, waits (bounded)
for the report and returns it; afterwards the browser and all its helpers are killed, nothing
else. The pages share `whip_page.js` (bounded waits, ICE gathering, the WHIP exchange, the report),
served beside them.
"""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from tests.support.http_app import serve_app

SHARED_SCRIPT = Path(__file__).with_name("whip_page.js")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
)


async def serve_page(page: Path, max_report_bytes: int) -> tuple[web.AppRunner, str, asyncio.Future]:
    """Serve the page, its shared script and a /report endpoint on a free loopback port; the
    future gets the report."""
    reported: asyncio.Future = asyncio.get_running_loop().create_future()

    async def report(request: web.Request) -> web.Response:
        if not reported.done():
            reported.set_result(await request.json())
        return web.Response(text="ok")

    def serving(path: Path):
        async def handler(_request: web.Request) -> web.FileResponse:
            return web.FileResponse(path)
        return handler

    app = web.Application(client_max_size=max_report_bytes)
    app.router.add_get("/", serving(page))
    app.router.add_get(f"/{SHARED_SCRIPT.name}", serving(SHARED_SCRIPT))
    app.router.add_post("/report", report)
    return *await serve_app(app), reported


async def run_page(chromium: Path, page: Path, query: dict, profile: Path, *, timeout: float,
                   flags: tuple[str, ...] = (), max_report_bytes: int = 1024 ** 2) -> dict:
    """One fresh browser (profile directory `profile`, log beside it), one load of `page` with
    `query` and ?report=; returns the page's report."""
    runner, base_url, reported = await serve_page(page, max_report_bytes)
    url = f"{base_url}/?" + urlencode({**query, "report": f"{base_url}/report"})
    log = (profile.parent / f"{profile.name}.log").open("wb")
    browser = await asyncio.create_subprocess_exec(
        str(chromium), *FLAGS, *flags, f"--user-data-dir={profile}", url,
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        done, _ = await asyncio.wait({reported, asyncio.ensure_future(browser.wait())},
                                     timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if reported not in done:
            exited = f"exited with {browser.returncode}" if browser.returncode is not None else "still running"
            raise AssertionError(f"no report from the page within {timeout} s (Chromium {exited}); see {log.name}")
        return reported.result()
    finally:
        if browser.returncode is None:
            os.killpg(browser.pid, signal.SIGKILL)  # the browser and all its helpers, nothing else
        await browser.wait()
        log.close()
        await runner.cleanup()
