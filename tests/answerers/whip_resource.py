"""What the third-party answerers share: a WHIP resource (RFC 9725) and serving it until SIGTERM.

`WhipSessions` keeps the sessions by the id in their Location. POST /whip (application/sdp)
answers the offer through `answer(offer)`, which returns the answer SDP and the session (anything
with an async `close()`), or raises `OfferRefused` with the status to answer; DELETE /whip/{id}
closes a session; PATCH answers 405 unless a subclass takes ICE restarts; `end(id, session)`
closes a session that ended by itself (its peer connection failed, its Janus session hung up).
`served(app, host, port)` runs the HTTP server; `until_signalled()` waits for SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


class OfferRefused(Exception):
    """The offer gets no session: answer `status` with `text`."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class WhipSessions:
    def __init__(self) -> None:
        self.sessions: dict[str, Any] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/whip", self.post)
        app.router.add_delete("/whip/{session}", self.delete)
        app.router.add_patch("/whip/{session}", self.patch)
        return app

    async def answer(self, offer: str) -> tuple[str, Any]:
        """The answer SDP and the new session; raise OfferRefused to refuse the offer."""
        raise NotImplementedError

    def started(self, resource: str, session: Any) -> None:
        """Called once the session is registered under `resource` (to watch it end by itself)."""

    async def post(self, request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            return web.Response(status=415, text=f"Content-Type must be application/sdp, got {request.content_type}\n")
        try:
            answer, session = await self.answer(await request.text())
        except OfferRefused as refused:
            return web.Response(status=refused.status, text=f"{refused.text}\n")
        resource = secrets.token_hex(8)
        self.sessions[resource] = session
        self.started(resource, session)
        return web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": f"/whip/{resource}", "ETag": f'"{resource}"'})

    async def end(self, resource: str, session: Any) -> None:
        """Close a session that ended by itself, unless a DELETE or `close` already took it."""
        if self.sessions.get(resource) is session:
            del self.sessions[resource]
            await session.close()

    async def delete(self, request: web.Request) -> web.Response:
        session = self.sessions.pop(request.match_info["session"], None)
        if session is None:
            return web.Response(status=404, text="no such session\n")
        await session.close()
        return web.Response(status=200)

    async def patch(self, request: web.Request) -> web.Response:
        return web.Response(status=405, headers={"Allow": "DELETE"}, text="no ICE restart or trickle ICE here\n")

    async def close(self) -> None:
        sessions, self.sessions = self.sessions, {}
        await asyncio.gather(*(session.close() for session in sessions.values()), return_exceptions=True)


@asynccontextmanager
async def served(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve `app` on host:port (0: a free port) while the block runs; yields the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def until_signalled() -> None:
    """Return once the process gets SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
