"""A WHIP (RFC 9725) resource in front of Janus's HTTP API and its EchoTest plugin.

One WHIP session is one Janus session with one `janus.plugin.echotest` handle:

- POST /whip (application/sdp): create the session, attach EchoTest, send it
  `{"audio": true, "video": false}` with the offer as jsep and `completed` trickle (a WHIP
  offer carries all its candidates), wait for the answer on the session's event long-poll,
  answer 201 with Location, ETag and Janus's SDP exactly as Janus wrote it (its `a=setup`
  included: nothing in either SDP is rewritten). Janus's refusals become 400 with its reason.
- While the WHIP session exists, the shim long-polls the Janus session's events and sends a
  keepalive every `KEEPALIVE_INTERVAL`; a `hangup` (ICE failed, DTLS alert) or `detached` from
  Janus ends the WHIP session too, as a peer connection that closed.
- DELETE detaches the handle and destroys the Janus session.
- PATCH (application/trickle-ice-sdpfrag) with new a=ice-ufrag/a=ice-pwd is an ICE restart:
  the shim renegotiates with the stored offer carrying the new credentials and candidates
  (Janus restarts ICE when a remote offer changes them) and answers 200 with the answer's
  ufrag, pwd and candidates as an sdpfrag. A fragment without new credentials is trickle
  ICE, which this resource does not take: 405, as RFC 9725 §4.3.1 allows.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.answerers.whip_resource import OfferRefused, WhipSessions

PLUGIN = "janus.plugin.echotest"
ECHO_REQUEST = {"audio": True, "video": False}
KEEPALIVE_INTERVAL = 25.0
"""Janus drops a session after 60 s without a request (its default session_timeout)."""
ANSWER_TIMEOUT = 15.0
JANUS_REQUEST_TIMEOUT = 10.0
POLL_EVENTS = 10
POLL_TIMEOUT = 40.0
"""Janus answers a long-poll after 30 s without events; the HTTP timeout must outlast that."""
RESTART_ATTRIBUTES = re.compile(r"^a=(ice-ufrag|ice-pwd|candidate|end-of-candidates)(:.*)?$")


class JanusError(RuntimeError):
    """Janus refused a request or answered with an error event; the message is Janus's reason."""


def _transaction() -> str:
    return secrets.token_hex(6)


@dataclass
class JanusSession:
    """One Janus session with its EchoTest handle, events followed by a long-poll task."""

    api: JanusApi
    session_id: int
    handle_id: int = 0
    offer: str = ""
    waiting: dict[str, asyncio.Future] = field(default_factory=dict)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)

    def follow(self) -> None:
        self.tasks = [asyncio.create_task(self._poll()), asyncio.create_task(self._keepalive())]

    async def _poll(self) -> None:
        while not self.ended.is_set():
            try:
                events = await self.api.poll(self.session_id)
            except (TimeoutError, aiohttp.ClientError, JanusError):
                await asyncio.sleep(1.0)
                continue
            for event in events:
                self._dispatch(event)

    def _dispatch(self, event: dict) -> None:
        kind = event.get("janus")
        waiter = self.waiting.pop(event.get("transaction", ""), None)
        if kind == "event" and waiter is not None and not waiter.done():
            waiter.set_result(event)
        elif kind in ("hangup", "detached"):
            self.ended.set()

    async def _keepalive(self) -> None:
        while not self.ended.is_set():
            await asyncio.sleep(KEEPALIVE_INTERVAL)
            try:
                await self.api.request(f"/{self.session_id}", {"janus": "keepalive"})
            except (TimeoutError, aiohttp.ClientError, JanusError):
                pass

    async def negotiate(self, offer: str) -> str:
        """Send EchoTest the offer; return the SDP of the answer event."""
        transaction = _transaction()
        waiter = asyncio.get_running_loop().create_future()
        self.waiting[transaction] = waiter
        try:
            await self.api.request(f"/{self.session_id}/{self.handle_id}", {
                "janus": "message", "transaction": transaction, "body": ECHO_REQUEST,
                "jsep": {"type": "offer", "sdp": offer}})
            await self.api.request(f"/{self.session_id}/{self.handle_id}", {
                "janus": "trickle", "candidate": {"completed": True}})
            event = await asyncio.wait_for(waiter, ANSWER_TIMEOUT)
        except TimeoutError:
            raise JanusError(f"EchoTest sent no answer within {ANSWER_TIMEOUT:g} s") from None
        finally:
            self.waiting.pop(transaction, None)
        data = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"EchoTest error {data.get('error_code')}: {data['error']}")
        jsep = event.get("jsep") or {}
        if jsep.get("type") != "answer" or not jsep.get("sdp"):
            raise JanusError(f"EchoTest answered without an SDP answer: {data}")
        self.offer = offer
        return jsep["sdp"]

    async def close(self) -> None:
        """Detach and destroy at Janus (best effort: it may be gone already), stop following."""
        self.ended.set()
        for path, body in ((f"/{self.session_id}/{self.handle_id}", {"janus": "detach"}),
                           (f"/{self.session_id}", {"janus": "destroy"})):
            try:
                await self.api.request(path, body)
            except (TimeoutError, aiohttp.ClientError, JanusError):
                pass
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class JanusApi:
    """The few Janus HTTP API (`/janus`) requests the shim needs."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = aiohttp.ClientSession()

    async def request(self, path: str, body: dict) -> dict:
        body = {"transaction": _transaction(), **body}
        async with self.http.post(self.base_url + path, json=body,
                                  timeout=aiohttp.ClientTimeout(total=JANUS_REQUEST_TIMEOUT)) as response:
            reply = await response.json(content_type=None)
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusError(f"Janus error {error.get('code')}: {error.get('reason')}")
        return reply

    async def poll(self, session_id: int) -> list[dict]:
        async with self.http.get(f"{self.base_url}/{session_id}", params={"maxev": str(POLL_EVENTS)},
                                 timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT)) as response:
            reply = await response.json(content_type=None)
        if isinstance(reply, dict) and reply.get("janus") == "error":
            raise JanusError(str(reply.get("error")))
        return reply if isinstance(reply, list) else [reply]

    async def open_echotest(self) -> JanusSession:
        created = await self.request("", {"janus": "create"})
        session = JanusSession(self, created["data"]["id"])
        session.follow()
        try:
            attached = await self.request(f"/{session.session_id}", {"janus": "attach", "plugin": PLUGIN})
            session.handle_id = attached["data"]["id"]
        except BaseException:
            await session.close()
            raise
        return session

    async def info(self) -> dict:
        async with self.http.get(self.base_url + "/info",
                                 timeout=aiohttp.ClientTimeout(total=JANUS_REQUEST_TIMEOUT)) as response:
            return await response.json(content_type=None)

    async def close(self) -> None:
        await self.http.close()


def restarted_offer(offer: str, sdpfrag: str) -> str | None:
    """The stored offer with the fragment's credentials and candidates, its o= version bumped;
    None when the fragment carries no new a=ice-ufrag and a=ice-pwd (not a restart)."""
    fragment = [line.strip() for line in sdpfrag.splitlines() if line.strip()]
    credentials = [line for line in fragment if line.startswith(("a=ice-ufrag:", "a=ice-pwd:"))]
    if len({line.split(":", 1)[0] for line in credentials}) != 2:
        return None
    candidates = [line for line in fragment if line.startswith("a=candidate:")]
    lines: list[str] = []
    in_media = False
    for line in offer.splitlines():
        if line.startswith("o="):
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                fields[2] = str(int(fields[2]) + 1)
            line = " ".join(fields)
        if RESTART_ATTRIBUTES.match(line):
            continue
        if in_media and line.startswith("a=") and not lines[-1].startswith("a="):
            lines += credentials + candidates  # a media section's attributes follow its c=/b= lines
        in_media = in_media or line.startswith("m=")
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def answer_sdpfrag(answer: str) -> str:
    """The ICE lines of Janus's restart answer as an sdpfrag, one m= section per media line."""
    lines = [line for line in answer.splitlines() if line == "a=ice-lite"][:1]
    for line in answer.splitlines():
        if line.startswith("m=") or line.startswith("a=mid:") or RESTART_ATTRIBUTES.match(line):
            lines.append(line)
    return "\r\n".join(lines) + "\r\n"


class WhipShim(WhipSessions):
    """The WHIP resource: sessions by the id in their Location."""

    def __init__(self, api: JanusApi) -> None:
        super().__init__()
        self.api = api
        self.watchers: set[asyncio.Task] = set()

    async def answer(self, offer: str) -> tuple[str, JanusSession]:
        try:
            session = await self.api.open_echotest()
        except (TimeoutError, aiohttp.ClientError, JanusError) as exc:
            raise OfferRefused(503, f"Janus is not answering: {exc}") from None
        try:
            return await session.negotiate(offer), session
        except (TimeoutError, aiohttp.ClientError, JanusError) as exc:
            await session.close()
            raise OfferRefused(400, f"cannot answer this offer: {exc}") from None

    def started(self, resource: str, session: JanusSession) -> None:
        watcher = asyncio.create_task(self._end_with_janus(resource, session))
        self.watchers.add(watcher)
        watcher.add_done_callback(self.watchers.discard)

    async def _end_with_janus(self, resource: str, session: JanusSession) -> None:
        await session.ended.wait()
        await self.end(resource, session)

    async def patch(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["session"])
        if session is None:
            return web.Response(status=404, text="no such session\n")
        if request.content_type != "application/trickle-ice-sdpfrag":
            return web.Response(status=415, text="Content-Type must be application/trickle-ice-sdpfrag\n")
        offer = restarted_offer(session.offer, await request.text())
        if offer is None:
            return web.Response(status=405, headers={"Allow": "DELETE"},
                                text="no trickle ICE here, only ICE restarts (new a=ice-ufrag and a=ice-pwd)\n")
        try:
            answer = await session.negotiate(offer)
        except (TimeoutError, aiohttp.ClientError, JanusError) as exc:
            return web.Response(status=400, text=f"the ICE restart failed: {exc}\n")
        return web.Response(status=200, text=answer_sdpfrag(answer), content_type="application/trickle-ice-sdpfrag",
                            headers={"ETag": f'"{request.match_info["session"]}-{secrets.token_hex(4)}"'})

    async def close(self) -> None:
        for watcher in self.watchers:
            watcher.cancel()
        await super().close()
        await asyncio.gather(*self.watchers, return_exceptions=True)
