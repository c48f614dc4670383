"""A small jitter buffer keyed by RTP sequence number.

In-order packets pass straight through (no added delay). A gap holds later packets back for at
most `max_wait` seconds, waiting for the missing ones; then the gap is given up as lost, so the
decoder can conceal it. Late packets (behind what was already released) and duplicates are
dropped; the buffer never holds more than `capacity` packets.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Released:
    """One slot of the stream, in order: a payload, or None where a packet was lost."""
    sequence: int
    payload: bytes | None


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    late: int = 0
    duplicate: int = 0
    lost: int = 0
    resynced: int = 0


class JitterBuffer:
    def __init__(self, *, max_wait: float = 0.06, capacity: int = 16, max_gap: int = 50) -> None:
        self.max_wait = max_wait
        self.capacity = capacity
        self.max_gap = max_gap  # a jump further than this restarts the stream instead of reporting losses
        self.stats = JitterStats()
        self._next: int | None = None  # the sequence number to release next
        self._held: dict[int, tuple[bytes, float]] = {}  # sequence -> (payload, arrival time)
        self._out: list[Released] = []

    def push(self, sequence: int, payload: bytes, now: float) -> None:
        sequence &= 0xFFFF
        self.stats.received += 1
        if self._next is None:
            self._next = sequence
        ahead = (sequence - self._next) & 0xFFFF
        if ahead >= 0x8000:
            self.stats.late += 1
            return
        if sequence in self._held:
            self.stats.duplicate += 1
            return
        if ahead > self.max_gap:
            # The sender restarted or skipped far ahead: release what we hold and follow it.
            self._release_all()
            self._next = sequence
            self.stats.resynced += 1
        self._held[sequence] = (payload, now)
        self._release_in_order()
        if len(self._held) > self.capacity:
            self._skip_gap()

    def handle_timer(self, now: float) -> None:
        """Give up on a gap once the packet after it has waited `max_wait`."""
        while self._held and now >= self._oldest_arrival() + self.max_wait:
            self._skip_gap()

    def get_timer(self) -> float | None:
        return self._oldest_arrival() + self.max_wait if self._held else None

    def pop(self) -> list[Released]:
        out, self._out = self._out, []
        return out

    def _oldest_arrival(self) -> float:
        return min(arrival for _, arrival in self._held.values())

    def _release_in_order(self) -> None:
        while self._next in self._held:
            payload, _ = self._held.pop(self._next)
            self._out.append(Released(self._next, payload))
            self._next = (self._next + 1) & 0xFFFF

    def _skip_gap(self) -> None:
        """Declare the packets missing before the first held one lost, then release onwards."""
        start = self._next
        if start is None:  # nothing pushed yet, so nothing held
            return
        first = min(self._held, key=lambda seq: (seq - start) & 0xFFFF)
        expected = start
        while expected != first:
            self._out.append(Released(expected, None))
            self.stats.lost += 1
            expected = (expected + 1) & 0xFFFF
        self._next = expected
        self._release_in_order()

    def _release_all(self) -> None:
        while self._held:
            self._skip_gap()
