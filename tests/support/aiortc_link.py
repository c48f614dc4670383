"""The DTLS transport an aiortc RTCSctpTransport expects, in memory: the far end of the data-channel
adapters' tests, joined to the adapter under test without DTLS; and a record of what aiortc reads
off an adapter's own link (`attribute_reads`).

aiortc reads `state` and `_role`, registers its receiver (pass it packets with
`receiver._handle_data(packet)`), and hands what it sends to `_send_data`, which calls `deliver`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiortc.rtcsctptransport import RTCSctpTransport


class MemoryLink:
    def __init__(self, role: str, deliver: Callable[[bytes], object] | None = None) -> None:
        self.state = "connected"
        self._role = role
        self.receiver: RTCSctpTransport | None = None
        self.deliver = deliver
        """Where the packets aiortc sends go; set it once the adapter exists."""

    def _register_data_receiver(self, receiver: RTCSctpTransport) -> None:
        self.receiver = receiver

    def _unregister_data_receiver(self, receiver: RTCSctpTransport) -> None:
        self.receiver = None

    async def _send_data(self, data: bytes) -> None:
        self.deliver(data)


@contextmanager
def attribute_reads(cls: type) -> Iterator[set[str]]:
    """The names of the attributes read off instances of `cls` while the block runs (what aiortc
    asks of an adapter's link, say)."""
    touched: set[str] = set()
    original = cls.__getattribute__

    def recording(self, name):
        touched.add(name)
        return original(self, name)

    cls.__getattribute__ = recording
    try:
        yield touched
    finally:
        cls.__getattribute__ = original
