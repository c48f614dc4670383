"""STUN message codec (RFC 8489, RFC 5389; ICE attributes from RFC 8445).

The server parses every STUN datagram on the public port before it knows whether the sender
is anyone, so parsing checks structure only, keeps attribute values as bytes and leaves the
costly checks (FINGERPRINT, MESSAGE-INTEGRITY) to separate calls the caller makes in the order
it wants. Offsets into the datagram are kept so those checks need no re-encoding.
"""

from __future__ import annotations

import hmac
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton  # address conversions only: no socket here


class StunError(Exception):
    """Malformed STUN, or a value that cannot be encoded."""


MAGIC_COOKIE = 0x2112A442
_HEADER_LENGTH = 20

# Message classes, already in the class bits (C1 = 0x0100, C0 = 0x0010) of the type field.
REQUEST = 0x0000
INDICATION = 0x0010
SUCCESS = 0x0100
ERROR = 0x0110

BINDING = 0x001

MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
REALM = 0x0014
NONCE = 0x0015
MESSAGE_INTEGRITY_SHA256 = 0x001C
PASSWORD_ALGORITHM = 0x001D
USERHASH = 0x001E
XOR_MAPPED_ADDRESS = 0x0020
PRIORITY = 0x0024
USE_CANDIDATE = 0x0025
PASSWORD_ALGORITHMS = 0x8002
ALTERNATE_DOMAIN = 0x8003
SOFTWARE = 0x8022
ALTERNATE_SERVER = 0x8023
FINGERPRINT = 0x8028
ICE_CONTROLLED = 0x8029
ICE_CONTROLLING = 0x802A

KNOWN_ATTRIBUTES = frozenset(
    {
        MAPPED_ADDRESS,
        USERNAME,
        MESSAGE_INTEGRITY,
        ERROR_CODE,
        UNKNOWN_ATTRIBUTES,
        REALM,
        NONCE,
        MESSAGE_INTEGRITY_SHA256,
        PASSWORD_ALGORITHM,
        USERHASH,
        XOR_MAPPED_ADDRESS,
        PRIORITY,
        USE_CANDIDATE,
        PASSWORD_ALGORITHMS,
        ALTERNATE_DOMAIN,
        SOFTWARE,
        ALTERNATE_SERVER,
        FINGERPRINT,
        ICE_CONTROLLED,
        ICE_CONTROLLING,
    }
)
"""Every attribute type this module names; a request with another type below 0x8000 gets 420."""

_FINGERPRINT_XOR = 0x5354554E
_CLASSES = (REQUEST, INDICATION, SUCCESS, ERROR)
_header = struct.Struct("!HHI12s")
_header_start = struct.Struct("!HHI")
_attribute_header = struct.Struct("!HH")
_fingerprint_attribute = struct.Struct("!HHI")
_MI_HEADER = _attribute_header.pack(MESSAGE_INTEGRITY, 20)
_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")
_COOKIE_HIGH = MAGIC_COOKIE >> 16
_xor_v4 = struct.Struct("!BBHI")
_xor_v6_start = struct.Struct("!BBH")
_CHECKED_TYPES = frozenset({MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256, FINGERPRINT})


@dataclass(slots=True)
class StunMessage:
    """A parsed message; offsets point at attribute headers in the datagram it came from.

    Not frozen: parse runs on every STUN datagram before the sender is known, and building a
    frozen dataclass costs a quarter of parsing a whole ICE check. Treat it as read-only.
    """

    method: int
    msg_class: int
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...]
    integrity_offset: int | None
    integrity_sha256_offset: int | None
    fingerprint_offset: int | None

    def get(self, attr_type: int) -> bytes | None:
        """The first value of `attr_type` that counts.

        After MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count, and after
        MESSAGE-INTEGRITY-SHA256 only FINGERPRINT (RFC 8489 §14.5, §14.6): anything else there
        is unauthenticated and ignored.
        """
        after_sha1 = after_sha256 = False
        for found, value in self.attributes:
            if found == FINGERPRINT or not (
                after_sha256 or (after_sha1 and found != MESSAGE_INTEGRITY_SHA256)
            ):
                if found == attr_type:
                    return value
                if found == MESSAGE_INTEGRITY:
                    after_sha1 = True
                elif found == MESSAGE_INTEGRITY_SHA256:
                    after_sha256 = True
        return None

    def unknown_comprehension_required(self) -> list[int]:
        """Types below 0x8000 this codec does not know, in order, each once (for a 420).

        Attributes that `get` ignores (after MESSAGE-INTEGRITY) are not reported either.
        """
        unknown: list[int] = []
        after_sha1 = after_sha256 = False
        for found, _ in self.attributes:
            if after_sha256 or (after_sha1 and found != MESSAGE_INTEGRITY_SHA256):
                continue
            if found == MESSAGE_INTEGRITY:
                after_sha1 = True
            elif found == MESSAGE_INTEGRITY_SHA256:
                after_sha256 = True
            elif found < 0x8000 and found not in KNOWN_ATTRIBUTES and found not in unknown:
                unknown.append(found)
        return unknown


def parse(data: bytes) -> StunMessage:
    """Check the framing of one STUN datagram and split it into attributes.

    Padding bytes may hold anything (RFC 8489 §14). Because the body length is a multiple
    of 4 and every attribute advances to a 4-byte boundary, an attribute header can never be
    cut short: a body that could cut one fails the multiple-of-4 check first.
    """
    size = len(data)
    if size < _HEADER_LENGTH:
        raise StunError(f"message is {size} bytes, shorter than the 20-byte header")
    message_type, length, cookie = _header_start.unpack_from(data, 0)
    if message_type & 0xC000:
        raise StunError(f"message type 0x{message_type:04x} has its top two bits set")
    if cookie != MAGIC_COOKIE:
        raise StunError(f"magic cookie is 0x{cookie:08x}, not 0x2112a442")
    if length + _HEADER_LENGTH != size:
        raise StunError(
            f"length field says {length} bytes of attributes but {size - _HEADER_LENGTH} follow"
        )
    if length & 3:
        raise StunError(f"length field {length} is not a multiple of 4")

    attributes: list[tuple[int, bytes]] = []
    append = attributes.append
    integrity = integrity_sha256 = fingerprint = None
    unpack_attribute = _attribute_header.unpack_from
    checked_types = _CHECKED_TYPES
    position = _HEADER_LENGTH
    while position < size:
        attr_type, attr_length = unpack_attribute(data, position)
        end = position + 4 + attr_length
        if end > size:
            raise StunError(
                f"attribute 0x{attr_type:04x} length {attr_length} runs past the end of the message"
            )
        if attr_type in checked_types:
            if attr_type == MESSAGE_INTEGRITY:
                if attr_length != 20:
                    raise StunError(f"MESSAGE-INTEGRITY length {attr_length} is not 20")
                if integrity is None:
                    integrity = position
            elif attr_type == FINGERPRINT:
                if attr_length != 4:
                    raise StunError(f"FINGERPRINT length {attr_length} is not 4")
                if end != size:
                    following = unpack_attribute(data, end)[0]
                    raise StunError(f"attribute 0x{following:04x} follows FINGERPRINT")
                fingerprint = position
            elif attr_length & 3 or not 16 <= attr_length <= 32:
                raise StunError(
                    f"MESSAGE-INTEGRITY-SHA256 length {attr_length} is not a multiple of 4 "
                    "from 16 to 32"
                )
            elif integrity_sha256 is None:
                integrity_sha256 = position
        append((attr_type, data[position + 4 : end]))
        position = end + (-attr_length & 3)

    # Positional: keyword arguments make this dataclass noticeably slower to build.
    return StunMessage(
        (message_type & 0x000F) | ((message_type & 0x00E0) >> 1) | ((message_type & 0x3E00) >> 2),
        message_type & 0x0110,
        data[8:20],
        tuple(attributes),
        integrity,
        integrity_sha256,
        fingerprint,
    )

def fingerprint_ok(data: bytes, msg: StunMessage) -> bool:
    """True when FINGERPRINT is present and equals CRC-32 of what precedes it, xor 0x5354554e."""
    offset = msg.fingerprint_offset
    if offset is None:
        return False
    expected = zlib.crc32(data[:offset]) ^ _FINGERPRINT_XOR
    received: int = _fingerprint_attribute.unpack_from(data, offset)[2]
    return received == expected


def integrity_ok(data: bytes, msg: StunMessage, key: bytes) -> bool:
    """True when MESSAGE-INTEGRITY is present and is HMAC-SHA1(key) of what precedes it.

    The header's length field is taken as if the message ended right after
    MESSAGE-INTEGRITY (RFC 8489 §14.5), so FINGERPRINT and ignored trailers don't count.
    """
    offset = msg.integrity_offset
    if offset is None:
        return False
    covered = b"".join((data[:2], (offset + 4).to_bytes(2, "big"), data[4:offset]))
    expected = hmac.digest(key, covered, "sha1")
    return hmac.compare_digest(data[offset + 4 : offset + 24], expected)


def build(
    method: int,
    msg_class: int,
    transaction_id: bytes,
    attributes: Sequence[tuple[int, bytes]] = (),
    *,
    integrity_key: bytes | None = None,
    fingerprint: bool = True,
) -> bytes:
    """Encode a message: attributes in the given order, padded with zeros, then
    MESSAGE-INTEGRITY (when a key is given), then FINGERPRINT (when asked)."""
    if not 0 <= method <= 0xFFF:
        raise StunError(f"method 0x{method:x} does not fit in 12 bits")
    if msg_class not in _CLASSES:
        raise StunError(
            f"message class 0x{msg_class:04x} is not one of 0x0000, 0x0010, 0x0100, 0x0110"
        )
    if len(transaction_id) != 12:
        raise StunError(f"transaction ID is {len(transaction_id)} bytes, not 12")
    message_type = (
        (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | msg_class
    )
    pack_attribute = _attribute_header.pack
    parts = []
    for attr_type, value in attributes:
        value_length = len(value)
        if value_length > 0xFFFF:
            raise StunError(
                f"attribute 0x{attr_type:04x} value of {value_length} bytes is too long"
            )
        parts.append(pack_attribute(attr_type, value_length))
        parts.append(value)
        if value_length & 3:
            parts.append(b"\x00" * (-value_length & 3))
    body = b"".join(parts)

    if integrity_key is not None:
        header = _header.pack(message_type, len(body) + 24, MAGIC_COOKIE, transaction_id)
        mac = hmac.digest(integrity_key, header + body, "sha1")
        body = b"".join((body, _MI_HEADER, mac))
    length = len(body) + 8 if fingerprint else len(body)
    message = _header.pack(message_type, length, MAGIC_COOKIE, transaction_id) + body
    if not fingerprint:
        return message
    crc = zlib.crc32(message) ^ _FINGERPRINT_XOR
    return message + _fingerprint_attribute.pack(FINGERPRINT, 4, crc)


def xor_address(ip: str, port: int, transaction_id: bytes) -> bytes:
    """XOR-MAPPED-ADDRESS value for `ip`:`port` (IPv4, or IPv6 with any %scope dropped).

    Text to bytes goes through socket.inet_pton, a pure conversion (no socket is opened),
    some 20 times faster than the ipaddress module on this per-response path.
    """
    if not 0 <= port <= 0xFFFF:
        raise StunError(f"port {port} is outside 0-65535")
    xport = port ^ _COOKIE_HIGH
    try:
        if ":" in ip:
            raw = inet_pton(AF_INET6, ip.partition("%")[0])
        else:
            raw = inet_pton(AF_INET, ip)
    except (OSError, ValueError):
        raise StunError(f"{ip!r} is not an IPv4 or IPv6 address") from None
    if len(raw) == 4:
        return _xor_v4.pack(0, 1, xport, int.from_bytes(raw, "big") ^ MAGIC_COOKIE)
    mask = int.from_bytes(_COOKIE_BYTES + transaction_id, "big")
    return _xor_v6_start.pack(0, 2, xport) + (int.from_bytes(raw, "big") ^ mask).to_bytes(16, "big")


def parse_xor_address(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    """(ip, port) from an XOR-MAPPED-ADDRESS value; ip as socket.inet_ntop writes it, the
    form a datagram socket reports its peers in."""
    if len(value) < 4:
        raise StunError(f"XOR address value is {len(value)} bytes, shorter than 4")
    family = value[1]
    port = ((value[2] << 8) | value[3]) ^ _COOKIE_HIGH
    if family == 1:
        if len(value) != 8:
            raise StunError(f"XOR address of family IPv4 is {len(value)} bytes, not 8")
        raw = (int.from_bytes(value[4:8], "big") ^ MAGIC_COOKIE).to_bytes(4, "big")
        return inet_ntop(AF_INET, raw), port
    if family == 2:
        if len(value) != 20:
            raise StunError(f"XOR address of family IPv6 is {len(value)} bytes, not 20")
        mask = int.from_bytes(_COOKIE_BYTES + transaction_id, "big")
        raw = (int.from_bytes(value[4:20], "big") ^ mask).to_bytes(16, "big")
        return inet_ntop(AF_INET6, raw), port
    raise StunError(f"XOR address family 0x{family:02x} is neither IPv4 (0x01) nor IPv6 (0x02)")


def error_code(code: int, reason: str) -> bytes:
    """ERROR-CODE value: class (hundreds) and number (rest) split, then the reason phrase."""
    if not 300 <= code <= 699:
        raise StunError(f"error code {code} is outside 300-699")
    if len(reason) >= 128:
        raise StunError(f"reason phrase is {len(reason)} characters, not fewer than 128")
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode("utf-8")


def unknown_attributes(types: Sequence[int]) -> bytes:
    """UNKNOWN-ATTRIBUTES value: the 16-bit types, unpadded (build pads the attribute)."""
    for attr_type in types:
        if not 0 <= attr_type <= 0xFFFF:
            raise StunError(f"attribute type {attr_type} does not fit in 16 bits")
    return struct.pack(f"!{len(types)}H", *types)
