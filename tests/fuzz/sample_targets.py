"""A small parser with a planted bug, registered the way a security engineer registers theirs."""
from __future__ import annotations

from toolkit.fuzz import fuzz_target


class FrameError(ValueError):
    """The parser's declared error."""


def parse_frame(data: bytes) -> tuple[int, bytes]:
    """A type byte, a length byte, the body, anything after it ignored. Planted bug: type 7
    reads the body's last byte as a checksum, and an empty body has none (IndexError)."""
    if len(data) < 2:
        raise FrameError(f"frame is {len(data)} bytes, shorter than its 2-byte header")
    kind, length = data[0], data[1]
    body = data[2:2 + length]
    if len(body) != length:
        raise FrameError(f"body of {len(body)} bytes, header says {length}")
    if kind == 7 and body[-1] != sum(body[:-1]) & 0xFF:
        raise FrameError("type 7 checksum mismatch")
    return kind, body


@fuzz_target(expect=FrameError)
def fuzz_frame(data: bytes) -> None:
    """parse_frame on arbitrary bytes."""
    parse_frame(data)
