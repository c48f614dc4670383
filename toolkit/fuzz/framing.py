"""How the stateful targets cut one fuzz input into steps, and how seeds are written.

A fixed, documented layout rather than atheris' FuzzedDataProvider (whose byte order is an
implementation detail): seed corpora of real datagrams can then be written by `encode`,
read back by a person, and stay valid across atheris versions. A step is a few choice
bytes, a 2-byte big-endian length and that many payload bytes; a short input simply ends
early (missing choice bytes read as 0, a length past the end is cut to what is left).
"""
from __future__ import annotations


class Steps:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def __bool__(self) -> bool:
        return self.offset < len(self.data)

    def choice(self, count: int) -> int:
        """One byte, modulo `count`."""
        if self.offset >= len(self.data):
            return 0
        value = self.data[self.offset]
        self.offset += 1
        return value % count

    def payload(self) -> bytes:
        length = (self.choice(256) << 8) | self.choice(256)
        chunk = self.data[self.offset:self.offset + length]
        self.offset += len(chunk)
        return chunk


def encode(*steps: tuple[tuple[int, ...], bytes], prefix: bytes = b"") -> bytes:
    """Seed bytes for `prefix` then steps of (choices, payload)."""
    out = bytearray(prefix)
    for choices, payload in steps:
        out += bytes(choices) + len(payload).to_bytes(2, "big") + payload
    return bytes(out)
