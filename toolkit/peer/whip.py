"""WHIP signaling for the probe peer (RFC 9725), as an aiohttp client.

Only the HTTP exchange lives here; judging the reply (status code, Content-Type, CORS) is
the conformance checks' job, so anything 2xx is handed back as it came.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urljoin

import aiohttp

from toolkit.peer.offer import PeerError

_BODY_EXCERPT = 500


async def whip_post(
    url: str, offer: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0
) -> tuple[str, str | None]:
    """POST the offer; return the SDP answer and the absolute Location (None if missing)."""
    _, reply_headers, body = await _request(
        "POST", url, offer, "application/sdp", headers, timeout
    )
    location = reply_headers.get("Location")
    return body, urljoin(url, location) if location else None


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
                if not 200 <= response.status < 300:
                    raise PeerError(
                        f"WHIP {method} {url} answered {response.status} {response.reason}: "
                        f"{text[:_BODY_EXCERPT]}",
                        status=response.status,
                        body=text,
                    )
                return response.status, response.headers, text
    except aiohttp.ClientError as exc:
        raise PeerError(f"WHIP {method} {url} failed: {exc}") from exc
    except asyncio.TimeoutError as exc:
        raise PeerError(f"WHIP {method} {url} got no answer within {timeout:g} s") from exc
