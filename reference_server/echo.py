"""Default media behaviour: reflect a session's RTP back under the server's own stream identity."""
from __future__ import annotations

from .rtp import rewrite_rtp


class EchoStream:
    """Rewrites SSRC, sequence number and timestamp so the echo is a well-formed stream of ours."""

    def __init__(self, ssrc: int, first_sequence: int, timestamp_base: int) -> None:
        self.ssrc = ssrc
        self._next_sequence = first_sequence & 0xFFFF
        self._timestamp_base = timestamp_base & 0xFFFFFFFF
        self._first_in_timestamp: int | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_timestamp = self._timestamp_base

    def reflect(self, packet: bytes) -> bytes:
        """A copy of the plain RTP `packet` to send back; RtpError if the packet is malformed."""
        in_timestamp = int.from_bytes(packet[4:8], "big") if len(packet) >= 8 else 0
        if self._first_in_timestamp is None:
            self._first_in_timestamp = in_timestamp
        timestamp = (in_timestamp - self._first_in_timestamp + self._timestamp_base) & 0xFFFFFFFF
        out = rewrite_rtp(packet, ssrc=self.ssrc, sequence_number=self._next_sequence, timestamp=timestamp)
        self._next_sequence = (self._next_sequence + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += len(out) - 12
        self.last_timestamp = timestamp
        return out
