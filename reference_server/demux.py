"""Classify a datagram that arrived on the single UDP port.

One port carries STUN, DTLS and RTP/RTCP, told apart by the first byte (RFC 7983, updated by
RFC 9443); RTCP is told from RTP by the payload-type byte (RFC 5761 §4). This runs on every
packet, so it only indexes bytes: no slicing, no parsing beyond what the decision needs.
"""

from __future__ import annotations

import enum
import struct

from .reasons import DropReason

MAX_DATAGRAM = 8192
"""Larger datagrams are dropped: nothing this server accepts comes near it (RTP MTU ~1200)."""

_STUN_HEADER = 20
_DTLS_RECORD_HEADER = 13
_RTP_HEADER = 12
_RTCP_HEADER = 8
_MAGIC_COOKIE = 0x2112A442
_unpack_cookie = struct.Struct("!I").unpack_from


class DemuxError(Exception):
    """A datagram that belongs to no protocol served here; `reason` is its drop label."""

    def __init__(self, reason: DropReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Kind(enum.Enum):
    STUN = "stun"
    DTLS = "dtls"
    RTP = "rtp"
    RTCP = "rtcp"


def classify(data: bytes) -> Kind:
    """Say which handler gets `data`, or raise DemuxError saying why nobody does."""
    size = len(data)
    if size == 0:
        raise DemuxError(DropReason.EMPTY, "empty datagram")
    if size > MAX_DATAGRAM:
        raise DemuxError(
            DropReason.OVERSIZED, f"{size}-byte datagram is over the {MAX_DATAGRAM}-byte limit"
        )
    first = data[0]
    if first < 4:
        if size < _STUN_HEADER:
            raise DemuxError(
                DropReason.STUN_SHORT,
                f"{size}-byte STUN-range datagram is shorter than the 20-byte STUN header",
            )
        cookie = _unpack_cookie(data, 4)[0]
        if cookie != _MAGIC_COOKIE:
            raise DemuxError(
                DropReason.STUN_NO_COOKIE,
                f"STUN-range datagram carries 0x{cookie:08x} where the magic cookie "
                "0x2112a442 belongs (classic RFC 3489 STUN is not answered)",
            )
        length = (data[2] << 8) | data[3]
        if length + _STUN_HEADER != size:
            raise DemuxError(
                DropReason.STUN_BAD_LENGTH,
                f"STUN length field {length} does not match the {size - _STUN_HEADER} "
                "bytes after the header",
            )
        if length & 3:
            raise DemuxError(
                DropReason.STUN_BAD_LENGTH, f"STUN length field {length} is not a multiple of 4"
            )
        return Kind.STUN
    if 20 <= first <= 63:
        if size < _DTLS_RECORD_HEADER:
            raise DemuxError(
                DropReason.DTLS_SHORT,
                f"{size}-byte DTLS-range datagram is shorter than the 13-byte record header",
            )
        return Kind.DTLS
    if 128 <= first <= 191:
        if size < _RTCP_HEADER:
            raise DemuxError(
                DropReason.RTP_SHORT,
                f"{size}-byte RTP-range datagram is shorter than the 8-byte RTCP header",
            )
        if 192 <= data[1] <= 223:
            return Kind.RTCP
        if size < _RTP_HEADER:
            raise DemuxError(
                DropReason.RTP_SHORT, f"{size}-byte RTP datagram is shorter than the 12-byte RTP header"
            )
        return Kind.RTP
    raise DemuxError(
        DropReason.UNKNOWN_FIRST_BYTE,
        f"first byte {first} is outside the STUN (0-3), DTLS (20-63) and RTP/RTCP (128-191) ranges",
    )
