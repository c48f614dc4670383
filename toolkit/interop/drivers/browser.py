"""Browsers without a browser driver: the driver serves the page (toolkit/interop/js/page.html),
the scenario module (both shipped with the package), the configuration and the WAVs from a
loopback HTTP server, launches the browser on the page's URL in a new session, and waits for
the page to POST its report.

Each run gets a fresh browser profile in a temporary directory, removed once the browser is
stopped: a profile is megabytes of caches that have no place in the report folder (which keeps
the browser's log and the page's report).
"""
from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from toolkit.interop.drivers.base import ClientFailed, Driver, Material, Targets, log_tail, stop_group
from toolkit.resources import shipped

REPORT_MAX_BYTES = 16 * 1024 * 1024  # recorded audio comes back as base64 PCM


class PageServer:
    """The page, its module, its config and WAVs, and the /report endpoint, on a free loopback port."""

    def __init__(self, targets: Targets, material: Material) -> None:
        self.targets = targets
        self.material = material
        self.reported: asyncio.Future | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> PageServer:
        self.reported = asyncio.get_running_loop().create_future()
        app = web.Application(client_max_size=REPORT_MAX_BYTES)
        app.router.add_get("/", self._page)
        app.router.add_get("/scenario.mjs", self._module)
        app.router.add_get("/config.json", self._config)
        app.router.add_get("/{phase}.wav", self._wav)
        app.router.add_post("/report", self._report)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        self.url = f"{base}/?" + urlencode({"config": f"{base}/config.json", "report": f"{base}/report"})
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    async def _page(self, request: web.Request) -> web.Response:
        return web.FileResponse(shipped("interop", "js", "page.html"),
                                headers={"Content-Type": "text/html", "Cache-Control": "no-store"})

    async def _module(self, request: web.Request) -> web.Response:
        return web.FileResponse(shipped("interop", "js", "scenario.mjs"),
                                headers={"Content-Type": "text/javascript", "Cache-Control": "no-store"})

    async def _config(self, request: web.Request) -> web.Response:
        config = self.material.config(self.targets)
        config["wav"] = {phase: f"/{phase}.wav" for phase in ("echo", "voice")}
        return web.json_response(config)

    async def _wav(self, request: web.Request) -> web.Response:
        path = self.material.files.get(f"{request.match_info['phase']}.wav")
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "audio/wav"})

    async def _report(self, request: web.Request) -> web.Response:
        if not self.reported.done():
            self.reported.set_result(await request.json())
        return web.Response(text="ok")


async def browse(driver: Driver, command: Callable[[Path], list[str]], env: dict | None, targets: Targets,
                 material: Material, workdir: Path) -> dict:
    """Launch `command(profile) + [page URL]` and return what the page reports, within the driver's
    deadline. `command` gets the empty profile directory (and may put settings in it)."""
    with tempfile.TemporaryDirectory(prefix=f"rtcgate-{driver.name}-profile-", ignore_cleanup_errors=True) as profile:
        return await _browse(driver, command(Path(profile)), env, targets, material, workdir)


async def _browse(driver: Driver, command: list[str], env: dict | None, targets: Targets, material: Material,
                  workdir: Path) -> dict:
    async with PageServer(targets, material) as page:
        log_path = workdir / f"{driver.name}.log"
        with log_path.open("wb") as log:
            browser = await asyncio.create_subprocess_exec(
                *command, page.url, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, env=env)
        exited = asyncio.ensure_future(browser.wait())
        try:
            done, _ = await asyncio.wait({page.reported, exited}, timeout=driver.deadline,
                                         return_when=asyncio.FIRST_COMPLETED)
            if page.reported not in done:
                state = f"exited with {browser.returncode}" if browser.returncode is not None else "still running"
                raise ClientFailed(f"no report from the page within {driver.deadline:g} s ({driver.title} {state}). "
                                   f"Log tail:\n{log_tail(log_path)}")
            report = page.reported.result()
        finally:
            exited.cancel()
            await stop_group(browser, grace=0.5)
        (workdir / f"{driver.name}.report.json").write_text(json.dumps(report, indent=1))
        return report
