"""Signaling over HTTP: WHIP (RFC 9725), the realtime-calls alias, health and metrics."""
from __future__ import annotations

from typing import Callable

from aiohttp import web

from ..core import ServerCore, SignalingError
from .exposition import CONTENT_TYPE, render, server_registry

MAX_OFFER_BYTES = 64 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link",
    "Access-Control-Max-Age": "600",
}


@web.middleware
async def cors(request: web.Request, handler):
    if request.method == "OPTIONS":
        response = web.Response(status=204)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
    response.headers.update(CORS_HEADERS)
    return response


def error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def make_app(core: ServerCore, clock: Callable[[], float], flush: Callable[[], None]) -> web.Application:
    """`clock` is the shell's monotonic clock; `flush` drains the core after each signaling call."""

    async def read_sdp(request: web.Request, content_type: str) -> str | web.Response:
        if request.content_type != content_type:
            return error(415, f"Content-Type must be {content_type}, got {request.content_type or 'none'}")
        if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
            return error(413, f"body larger than {MAX_OFFER_BYTES} bytes")
        body = await request.content.read(MAX_OFFER_BYTES + 1)
        if len(body) > MAX_OFFER_BYTES:
            return error(413, f"body larger than {MAX_OFFER_BYTES} bytes")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return error(400, "body is not UTF-8")

    def resource_handlers(prefix: str):
        async def post(request: web.Request) -> web.Response:
            offer = await read_sdp(request, "application/sdp")
            if isinstance(offer, web.Response):
                return offer
            try:
                session_id, answer = core.create_session(offer, clock())
            except SignalingError as exc:
                return error(exc.status, str(exc))
            flush()
            return web.Response(status=201, text=answer, content_type="application/sdp",
                                headers={"Location": f"{prefix}/{session_id}", "ETag": f'"{session_id}"'})

        async def delete(request: web.Request) -> web.Response:
            try:
                core.close_session(request.match_info["session_id"], clock())
            except SignalingError as exc:
                return error(exc.status, str(exc))
            flush()
            return web.Response(status=200)

        async def patch(request: web.Request) -> web.Response:
            fragment = await read_sdp(request, "application/trickle-ice-sdpfrag")
            if isinstance(fragment, web.Response):
                return fragment
            try:
                answer = core.restart_ice(request.match_info["session_id"], fragment, clock())
            except SignalingError as exc:
                return error(exc.status, str(exc))
            flush()
            if answer is None:
                return web.Response(status=204)
            return web.Response(status=200, text=answer, content_type="application/trickle-ice-sdpfrag")

        return post, delete, patch

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "sessions": len(core.sessions)})

    registry = server_registry(core.metrics)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=render(registry), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(middlewares=[cors], client_max_size=MAX_OFFER_BYTES + 1)
    for prefix in ("/whip", "/v1/realtime/calls"):
        post, delete, patch = resource_handlers(prefix)
        app.router.add_post(prefix, post)
        app.router.add_delete(prefix + "/{session_id}", delete)
        app.router.add_patch(prefix + "/{session_id}", patch)
        app.router.add_route("OPTIONS", prefix, post)
        app.router.add_route("OPTIONS", prefix + "/{session_id}", post)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
