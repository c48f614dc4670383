"""The server's own outbound RTP stream of a session: its SSRC, sequence numbers, timestamps,
and the counts its RTCP sender reports need. Echo mode reflects the client's packets into it;
voice mode packetizes the voice loop's Opus frames into it."""
from __future__ import annotations

from .rtp import RtpPacket, rewrite_rtp, serialize_rtp


class OutboundStream:
    def __init__(self, ssrc: int, first_sequence: int, timestamp_base: int) -> None:
        self.ssrc = ssrc
        self._next_sequence = first_sequence & 0xFFFF
        self._timestamp_base = timestamp_base & 0xFFFFFFFF
        self._first_in_timestamp: int | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.last_timestamp = self._timestamp_base

    def reflect(self, packet: bytes, in_timestamp: int) -> bytes:
        """Echo: a copy of the plain RTP `packet` (whose timestamp the caller read) under this
        stream's identity; RtpError if malformed."""
        if self._first_in_timestamp is None:
            self._first_in_timestamp = in_timestamp
        timestamp = (in_timestamp - self._first_in_timestamp + self._timestamp_base) & 0xFFFFFFFF
        out = rewrite_rtp(packet, ssrc=self.ssrc, sequence_number=self._next_sequence, timestamp=timestamp)
        self._account(len(out) - 12, timestamp)
        return out

    def packetize(self, payload_type: int, payload: bytes, timestamp: int, marker: bool) -> bytes:
        """Voice: one RTP packet; `timestamp` counts from the stream's start (the random base is added)."""
        timestamp = (timestamp + self._timestamp_base) & 0xFFFFFFFF
        out = serialize_rtp(RtpPacket(payload_type=payload_type, sequence_number=self._next_sequence,
                                      timestamp=timestamp, ssrc=self.ssrc, marker=marker, payload=payload))
        self._account(len(payload), timestamp)
        return out

    def _account(self, payload_octets: int, timestamp: int) -> None:
        self._next_sequence = (self._next_sequence + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += payload_octets
        self.last_timestamp = timestamp
