"""Signaling over HTTP: WHIP (RFC 9725), the realtime-calls alias, health and metrics.

The relay's proxy (`relay_http`) serves the same routes with its own handlers: `signaling_app`
is the one route table, `read_body` the one size limit, `start_http` the one way a process
serves its app."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..core import ServerCore, SignalingError
from .exposition import CONTENT_TYPE, render, server_registry

MAX_OFFER_BYTES = 64 * 1024
SIGNALING_PREFIXES = ("/whip", "/v1/realtime/calls")
"""WHIP's endpoint and the realtime-calls alias: the same resources under two names."""
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


Handler = Callable[[web.Request], Awaitable[web.Response]]


async def read_body(request: web.Request) -> bytes | web.Response:
    """The request's body, or a 413 response when it is larger than MAX_OFFER_BYTES (whether
    Content-Length says so or not)."""
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        return error(413, f"body larger than {MAX_OFFER_BYTES} bytes")
    body = await request.content.read(MAX_OFFER_BYTES + 1)
    if len(body) > MAX_OFFER_BYTES:
        return error(413, f"body larger than {MAX_OFFER_BYTES} bytes")
    return body


def signaling_app(resource_handlers: Callable[[str], tuple[Handler, Handler, Handler]], healthz: Handler,
                  metrics: Handler) -> web.Application:
    """The routes of the signaling server and of the relay in front of workers.

    `resource_handlers(prefix)` gives the (POST, DELETE, PATCH) handlers of one prefix; DELETE
    and PATCH address `<prefix>/{resource}`, and a CORS preflight (OPTIONS) of either path goes
    to POST's handler, behind the `cors` middleware that answers it."""
    app = web.Application(middlewares=[cors], client_max_size=MAX_OFFER_BYTES + 1)
    for prefix in SIGNALING_PREFIXES:
        post, delete, patch = resource_handlers(prefix)
        app.router.add_post(prefix, post)
        app.router.add_delete(prefix + "/{resource}", delete)
        app.router.add_patch(prefix + "/{resource}", patch)
        app.router.add_route("OPTIONS", prefix, post)
        app.router.add_route("OPTIONS", prefix + "/{resource}", post)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def start_http(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port (0: any free port) until the runner is cleaned up; the bound
    address is `runner.addresses[0][:2]`. A site that cannot start leaves nothing behind."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def make_app(core: ServerCore, clock: Callable[[], float], flush: Callable[[], None]) -> web.Application:
    """`clock` is the shell's monotonic clock; `flush` drains the core after each signaling call."""

    async def read_sdp(request: web.Request, content_type: str) -> str | web.Response:
        if request.content_type != content_type:
            return error(415, f"Content-Type must be {content_type}, got {request.content_type or 'none'}")
        body = await read_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return error(400, "body is not UTF-8")

    def resource_handlers(prefix: str) -> tuple[Handler, Handler, Handler]:
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
                core.close_session(request.match_info["resource"], clock())
            except SignalingError as exc:
                return error(exc.status, str(exc))
            flush()
            return web.Response(status=200)

        async def patch(request: web.Request) -> web.Response:
            fragment = await read_sdp(request, "application/trickle-ice-sdpfrag")
            if isinstance(fragment, web.Response):
                return fragment
            try:
                answer = core.restart_ice(request.match_info["resource"], fragment, clock())
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

    return signaling_app(resource_handlers, healthz, metrics)
