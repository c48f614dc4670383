"""WHIP signaling for the probe peer (RFC 9725), as an aiohttp client.

Only the HTTP exchange lives here; judging the reply (status code, Content-Type, CORS) is
the conformance checks' job, so anything 2xx is handed back as it came. Anything else raises a
PeerError whose message is one line (the status and `body_excerpt` of the body, never a whole
HTML error page); the whole body stays on the error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urljoin

import aiohttp

from toolkit.peer.offer import PeerError

_EXCERPT_LENGTH = 200
_TAG = re.compile(r"<[^>]*>")


def body_excerpt(body: str) -> str:
    """The first line of an HTTP error body that says something: HTML tags dropped (an error
    page's first line is `<!DOCTYPE html>`), cut at 200 characters; '' for an empty body."""
    for line in _TAG.sub(" ", body).splitlines():
        text = " ".join(line.split())
        if text:
            return text if len(text) <= _EXCERPT_LENGTH else text[:_EXCERPT_LENGTH - 1] + "…"
    return ""


async def whip_post(
    url: str, offer: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0
) -> tuple[str, str | None]:
    """POST the offer; return the SDP answer and the absolute Location (None if missing)."""
    _, reply_headers, body = await _request(
        "POST", url, offer, "application/sdp", headers, timeout
    )
    location = reply_headers.get("Location")
    return body, urljoin(url, location) if location else None


async def whip_reachable(url: str, *, timeout: float = 5.0) -> int:
    """Whether anything answers HTTP at `url`: an OPTIONS request, which creates no session;
    return its status, whatever it is (a server need not implement OPTIONS). Raise PeerError
    when there is no answer (nothing listens, no route, a bad URL, the timeout)."""
    status, _, _ = await _request("OPTIONS", url, None, None, None, timeout, any_status=True)
    return status


async def whip_delete(
    location: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0
) -> int:
    """End the session; return the status code."""
    status, _, _ = await _request("DELETE", location, None, None, headers, timeout)
    return status


async def whip_patch(
    location: str,
    sdpfrag: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, str]:
    """Send a trickle-ice-sdpfrag (ICE restart or candidates); return status and body."""
    status, _, body = await _request(
        "PATCH", location, sdpfrag, "application/trickle-ice-sdpfrag", headers, timeout
    )
    return status, body


async def _request(
    method: str,
    url: str,
    body: str | None,
    content_type: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
    *,
    any_status: bool = False,
) -> tuple[int, Mapping[str, str], str]:
    request_headers = dict(headers or {})
    if content_type is not None:
        request_headers["Content-Type"] = content_type
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.request(
                method,
                url,
                data=None if body is None else body.encode(),
                headers=request_headers,
            ) as response:
                text = (await response.read()).decode("utf-8", "replace")
                if not any_status and not 200 <= response.status < 300:
                    excerpt = body_excerpt(text)
                    raise PeerError(
                        f"WHIP {method} {url} answered {response.status} {response.reason}"
                        + (f": {excerpt}" if excerpt else ""),
                        status=response.status,
                        body=text,
                    )
                return response.status, response.headers, text
    except aiohttp.ClientError as exc:
        raise PeerError(f"WHIP {method} {url} failed: {exc}") from exc
    except TimeoutError as exc:
        raise PeerError(f"WHIP {method} {url} got no answer within {timeout:g} s") from exc
