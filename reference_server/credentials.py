"""ICE credentials whose ufrag carries an authenticated routing prefix.

A ufrag is `<worker:2 hex><random:8 hex><tag:6 hex>`: a relay in front of several workers reads
the worker id from the first STUN packet of a flow without any lookup, and the tag (a truncated
HMAC under a secret the relay and workers share) lets it refuse ufrags the server never issued.
The random part gives 32 bits and the password 144 bits (RFC 8445 §5.3 asks for ≥ 24 and ≥ 128).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

ICE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
UFRAG_LENGTH = 16
PASSWORD_LENGTH = 24  # 24 ice-chars × 6 bits = 144 bits
MAX_WORKER_ID = 0xFF
"""A worker id is the ufrag's first byte."""


def _tag(secret: bytes, head: str) -> str:
    return hmac.new(secret, head.encode(), hashlib.sha256).hexdigest()[:6]


def make_ufrag(worker_id: int, secret: bytes, random_bytes: Callable[[int], bytes]) -> str:
    if not 0 <= worker_id <= MAX_WORKER_ID:
        raise ValueError(f"worker id {worker_id} is outside 0..{MAX_WORKER_ID}")
    head = f"{worker_id:02x}{random_bytes(4).hex()}"
    return head + _tag(secret, head)


def make_password(random_bytes: Callable[[int], bytes]) -> str:
    return "".join(ICE_CHARS[b & 63] for b in random_bytes(PASSWORD_LENGTH))


def ufrag_worker(ufrag: str, secret: bytes) -> int | None:
    """The worker id a genuine ufrag routes to, or None when the tag does not verify."""
    if len(ufrag) != UFRAG_LENGTH:
        return None
    head, tag = ufrag[:10], ufrag[10:]
    if not hmac.compare_digest(_tag(secret, head), tag):
        return None
    try:
        return int(head[:2], 16)
    except ValueError:
        return None
