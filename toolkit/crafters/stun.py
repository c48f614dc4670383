"""STUN (RFC 8489) and ICE (RFC 8445) messages as scapy layers, for crafting right and wrong ones.

Rule of every field: None means "compute at build time", an explicit value is written as given.
That covers the message length, each attribute's length and padding, MESSAGE-INTEGRITY,
MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, so a wrong value of any of them is one keyword away.
Attributes are a list: order and duplicates are kept exactly as given.

Build, then take bytes::

    msg = StunMessage(
        type=BINDING_REQUEST,
        key=b"password",                       # short-term key = the ICE password (RFC 8489 §9.2)
        attributes=[StunUsername(username=b"srv:cli"), StunPriority(priority=1),
                    StunIceControlling(tie_breaker=7), StunUseCandidate(),
                    StunMessageIntegrity(), StunFingerprint()],
    )
    data = bytes(msg)
    bytes(StunMessage(..., attributes=[..., StunMessageIntegrity(hmac=bytes(20))]))   # wrong MI
    bytes(StunMessage(..., length=3))                                                 # wrong length
    StunUsername(username=b"abcde", length=9, padding=b"\\xff\\xff\\xff")              # wrong TLV

Or use `ice_check(username, password, ...)` for a complete ICE connectivity check.

How computed values are computed:
- message `length`: everything after the 20-byte header, including any payload stacked with `/`.
- MESSAGE-INTEGRITY(-SHA256) with `hmac=None`: HMAC-SHA1 (-SHA256) keyed with the message's
  `key`, over the message up to the attribute, with the header length set as if the message
  ended right after this attribute (RFC 8489 §14.5/§14.6) — whatever `length` the header
  finally carries. An attribute `length` below the digest size truncates the digest (the legal
  way for SHA-256, §14.6; a wrong one for SHA-1).
- FINGERPRINT with `crc=None`: CRC-32 of the message up to the attribute (length adjusted the
  same way) XOR 0x5354554E (§14.7). Computed after any earlier MESSAGE-INTEGRITY is filled in.
- attribute `length`: the size of the value as written; `padding`: zero bytes to the next
  multiple of 4 (explicit padding, e.g. b"   " as in RFC 5769, or b"" for none, is kept).

Parsing with scapy (`StunMessage(data)`) works and is handy for evidence, but it is slow:
verify hot paths with aioice (`aioice.stun.parse_message`), never with this module.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import struct
import zlib
from collections.abc import Iterable
from typing import Any, cast

from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    Field,
    FieldListField,
    IntField,
    PacketListField,
    ShortField,
    StrField,
    StrFixedLenField,
    StrLenField,
    XIntField,
    XLongField,
    XShortEnumField,
    XShortField,
    XStrLenField,
)
from scapy.packet import Packet

from toolkit.crafters.common import BuildOnlyField, CraftError

MAGIC_COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E
HEADER_LENGTH = 20

BINDING_REQUEST = 0x0001
BINDING_INDICATION = 0x0011
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
MESSAGE_TYPES = {
    BINDING_REQUEST: "Binding request",
    BINDING_INDICATION: "Binding indication",
    BINDING_SUCCESS: "Binding success response",
    BINDING_ERROR: "Binding error response",
}

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
ATTRIBUTE_NAMES = {
    MAPPED_ADDRESS: "MAPPED-ADDRESS",
    USERNAME: "USERNAME",
    MESSAGE_INTEGRITY: "MESSAGE-INTEGRITY",
    ERROR_CODE: "ERROR-CODE",
    UNKNOWN_ATTRIBUTES: "UNKNOWN-ATTRIBUTES",
    REALM: "REALM",
    NONCE: "NONCE",
    MESSAGE_INTEGRITY_SHA256: "MESSAGE-INTEGRITY-SHA256",
    PASSWORD_ALGORITHM: "PASSWORD-ALGORITHM",
    USERHASH: "USERHASH",
    XOR_MAPPED_ADDRESS: "XOR-MAPPED-ADDRESS",
    PRIORITY: "PRIORITY",
    USE_CANDIDATE: "USE-CANDIDATE",
    PASSWORD_ALGORITHMS: "PASSWORD-ALGORITHMS",
    ALTERNATE_DOMAIN: "ALTERNATE-DOMAIN",
    SOFTWARE: "SOFTWARE",
    ALTERNATE_SERVER: "ALTERNATE-SERVER",
    FINGERPRINT: "FINGERPRINT",
    ICE_CONTROLLED: "ICE-CONTROLLED",
    ICE_CONTROLLING: "ICE-CONTROLLING",
}

PEER_REFLEXIVE_PRIORITY = (110 << 24) | (65535 << 8) | 255
"""RFC 8445 §5.1.2.1 priority of a host-interface peer-reflexive candidate, component 1."""


class _AttributePadding(StrField):
    """Padding after an attribute value; also fills the attribute's length when it is None.

    It runs last in the attribute's build, so it sees the value's real size.
    """

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        value_length = len(s) - 4
        if pkt.length is None:
            if value_length > 0xFFFF:
                raise CraftError(f"STUN attribute value of {value_length} bytes does not fit a 16-bit length")
            s = s[:2] + struct.pack("!H", value_length) + s[4:]
        return s + (bytes(-value_length % 4) if val is None else val)

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, bytes]:
        size = min(-(pkt.length or 0) % 4, len(s))
        return s[size:], s[:size]


class _DigestField(XStrLenField):
    """An HMAC value; None builds a zero placeholder of the attribute's size for the message to fill."""

    __slots__ = ("size",)

    def __init__(self, name: str, size: int) -> None:
        super().__init__(name, None,  # type: ignore[arg-type]  # scapy types it bytes; None: a placeholder
                         length_from=lambda pkt: pkt.length)
        self.size = size

    def placeholder_size(self, pkt: Any) -> int:
        return self.size if pkt.length is None else pkt.length

    def i2m(self, pkt: Any, x: Any) -> bytes:
        return bytes(self.placeholder_size(pkt)) if x is None else x


def _pack_ip(address: str) -> bytes:
    try:
        return ipaddress.ip_address(address).packed
    except ValueError:
        raise CraftError(f"STUN address {address!r} is not an IPv4 or IPv6 literal") from None


def _unpack_ip(data: bytes) -> str:
    return str(ipaddress.ip_address(data)) if len(data) in (4, 16) else data.hex()


def _xor_mask(pkt: Any, size: int) -> bytes:
    """Cookie (IPv4) or cookie + transaction ID (IPv6), the XOR pad of RFC 8489 §14.2."""
    mask = struct.pack("!I", MAGIC_COOKIE)
    if size > 4:
        parent = pkt.parent
        transaction_id = getattr(parent, "transaction_id", None)
        if transaction_id is None:
            raise CraftError(
                "XOR-MAPPED-ADDRESS with an IPv6 address needs its message's transaction ID: put it in a StunMessage"
            )
        mask += transaction_id
    return mask


class _AddressField(Field[str, bytes]):
    """An IP address written as 4 or 16 bytes (plain or XOR'd); the attribute length says which."""

    __slots__ = ("xor",)

    def __init__(self, name: str, default: str, *, xor: bool) -> None:
        super().__init__(name, default, fmt="16s")
        self.xor = xor

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        data = _pack_ip(val)
        if self.xor:
            data = bytes(a ^ b for a, b in zip(data, _xor_mask(pkt, len(data))))
        return s + data

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, str]:
        size = max(0, (pkt.length or 0) - 4)
        data = s[:size]
        if self.xor and len(data) in (4, 16):
            data = bytes(a ^ b for a, b in zip(data, _xor_mask(pkt, len(data))))
        return s[size:], _unpack_ip(data)

    def i2len(self, pkt: Any, x: Any) -> int:
        return len(_pack_ip(x))


class _FamilyField(ByteEnumField):
    """Address family: None means "from the address" (1 for IPv4, 2 for IPv6)."""

    def i2m(self, pkt: Any, x: Any) -> int:
        if x is None:
            return 1 if len(_pack_ip(pkt.address)) == 4 else 2
        return int(x)


class _XorPortField(ShortField):
    def i2m(self, pkt: Any, x: Any) -> int:
        return (x or 0) ^ (MAGIC_COOKIE >> 16)

    def m2i(self, pkt: Any, x: int) -> int:
        return x ^ (MAGIC_COOKIE >> 16)


_FAMILIES = {1: "IPv4", 2: "IPv6"}


class StunAttribute(Packet):
    """Any attribute as type + raw value: unknown types, or a known type with a value to craft by hand."""

    name = "STUN attribute"
    fields_desc = [
        XShortEnumField("type", 0, ATTRIBUTE_NAMES),
        ShortField("length", None),
        XStrLenField("value", b"", length_from=lambda pkt: pkt.length),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> type:
        if cls is not StunAttribute or not _pkt or len(_pkt) < 4:
            return cls
        kind, length = struct.unpack("!HH", _pkt[:4])
        typed = _TYPED_ATTRIBUTES.get(kind)
        if typed is None or not typed.fits(length, _pkt[4 : 4 + length]):
            return cls
        return typed

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        """Whether a value of this length parses as this class; otherwise it stays a raw StunAttribute."""
        return True

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class _TextAttribute(StunAttribute):
    fields_desc = [
        XShortEnumField("type", 0, ATTRIBUTE_NAMES),
        ShortField("length", None),
        StrLenField("text", b"", length_from=lambda pkt: pkt.length),
        _AttributePadding("padding", None),
    ]


class StunUsername(_TextAttribute):
    name = "STUN USERNAME"
    fields_desc = [
        XShortEnumField("type", USERNAME, ATTRIBUTE_NAMES),
        ShortField("length", None),
        StrLenField("username", b"", length_from=lambda pkt: pkt.length),
        _AttributePadding("padding", None),
    ]


class StunSoftware(_TextAttribute):
    name = "STUN SOFTWARE"
    fields_desc = [XShortEnumField("type", SOFTWARE, ATTRIBUTE_NAMES), *_TextAttribute.fields_desc[1:]]


class StunRealm(_TextAttribute):
    name = "STUN REALM"
    fields_desc = [XShortEnumField("type", REALM, ATTRIBUTE_NAMES), *_TextAttribute.fields_desc[1:]]


class StunNonce(_TextAttribute):
    name = "STUN NONCE"
    fields_desc = [XShortEnumField("type", NONCE, ATTRIBUTE_NAMES), *_TextAttribute.fields_desc[1:]]


class StunMessageIntegrity(StunAttribute):
    name = "STUN MESSAGE-INTEGRITY"
    digest = "sha1"  # the HMAC's hash, by its hashlib name
    fields_desc = [
        XShortEnumField("type", MESSAGE_INTEGRITY, ATTRIBUTE_NAMES),
        ShortField("length", None),
        _DigestField("hmac", 20),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return length == 20


class StunMessageIntegritySha256(StunMessageIntegrity):
    name = "STUN MESSAGE-INTEGRITY-SHA256"
    digest = "sha256"
    fields_desc = [
        XShortEnumField("type", MESSAGE_INTEGRITY_SHA256, ATTRIBUTE_NAMES),
        ShortField("length", None),
        _DigestField("hmac", 32),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return 16 <= length <= 32 and length % 4 == 0


class StunFingerprint(StunAttribute):
    name = "STUN FINGERPRINT"
    fields_desc = [
        XShortEnumField("type", FINGERPRINT, ATTRIBUTE_NAMES),
        ShortField("length", None),
        XIntField("crc", None),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return length == 4


class StunErrorCode(StunAttribute):
    """ERROR-CODE: code = error_class * 100 + number (RFC 8489 §14.8); see `error_code()`."""

    name = "STUN ERROR-CODE"
    fields_desc = [
        XShortEnumField("type", ERROR_CODE, ATTRIBUTE_NAMES),
        ShortField("length", None),
        BitField("reserved", 0, 21),
        BitField("error_class", 4, 3),
        ByteField("number", 0),
        StrLenField("reason", b"", length_from=lambda pkt: pkt.length - 4),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return length >= 4

    @property
    def code(self) -> int:
        error_class: int = self.error_class
        number: int = self.number
        return error_class * 100 + number


class StunUnknownAttributes(StunAttribute):
    name = "STUN UNKNOWN-ATTRIBUTES"
    fields_desc = [
        XShortEnumField("type", UNKNOWN_ATTRIBUTES, ATTRIBUTE_NAMES),
        ShortField("length", None),
        FieldListField("types", [], XShortField("attribute_type", 0), length_from=lambda pkt: pkt.length),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return length % 2 == 0


class StunXorMappedAddress(StunAttribute):
    """XOR-MAPPED-ADDRESS: give the plain `address` and `port`; the XOR happens at build."""

    name = "STUN XOR-MAPPED-ADDRESS"
    fields_desc = [
        XShortEnumField("type", XOR_MAPPED_ADDRESS, ATTRIBUTE_NAMES),
        ShortField("length", None),
        ByteField("reserved", 0),
        _FamilyField("family", None, _FAMILIES),
        _XorPortField("port", 0),
        _AddressField("address", "127.0.0.1", xor=True),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return (length, value[1:2]) in ((8, b"\x01"), (20, b"\x02"))


class StunMappedAddress(StunAttribute):
    name = "STUN MAPPED-ADDRESS"
    fields_desc = [
        XShortEnumField("type", MAPPED_ADDRESS, ATTRIBUTE_NAMES),
        ShortField("length", None),
        ByteField("reserved", 0),
        _FamilyField("family", None, _FAMILIES),
        ShortField("port", 0),
        _AddressField("address", "127.0.0.1", xor=False),
        _AttributePadding("padding", None),
    ]

    fits = StunXorMappedAddress.fits


class StunPriority(StunAttribute):
    name = "STUN PRIORITY"
    fields_desc = [
        XShortEnumField("type", PRIORITY, ATTRIBUTE_NAMES),
        ShortField("length", None),
        IntField("priority", PEER_REFLEXIVE_PRIORITY),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return length == 4


class StunUseCandidate(StunAttribute):
    name = "STUN USE-CANDIDATE"
    fields_desc = [
        XShortEnumField("type", USE_CANDIDATE, ATTRIBUTE_NAMES),
        ShortField("length", None),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return length == 0


class StunIceControlled(StunAttribute):
    name = "STUN ICE-CONTROLLED"
    fields_desc = [
        XShortEnumField("type", ICE_CONTROLLED, ATTRIBUTE_NAMES),
        ShortField("length", None),
        XLongField("tie_breaker", 0),
        _AttributePadding("padding", None),
    ]

    @classmethod
    def fits(cls, length: int, value: bytes) -> bool:
        return length == 8


class StunIceControlling(StunIceControlled):
    name = "STUN ICE-CONTROLLING"
    fields_desc = [XShortEnumField("type", ICE_CONTROLLING, ATTRIBUTE_NAMES), *StunIceControlled.fields_desc[1:]]


_TYPED_ATTRIBUTES: dict[int, type[StunAttribute]] = {
    USERNAME: StunUsername,
    SOFTWARE: StunSoftware,
    REALM: StunRealm,
    NONCE: StunNonce,
    MESSAGE_INTEGRITY: StunMessageIntegrity,
    MESSAGE_INTEGRITY_SHA256: StunMessageIntegritySha256,
    FINGERPRINT: StunFingerprint,
    ERROR_CODE: StunErrorCode,
    UNKNOWN_ATTRIBUTES: StunUnknownAttributes,
    XOR_MAPPED_ADDRESS: StunXorMappedAddress,
    MAPPED_ADDRESS: StunMappedAddress,
    ALTERNATE_SERVER: StunMappedAddress,
    PRIORITY: StunPriority,
    USE_CANDIDATE: StunUseCandidate,
    ICE_CONTROLLED: StunIceControlled,
    ICE_CONTROLLING: StunIceControlling,
}


class StunMessage(Packet):
    """A STUN message. `key` (not on the wire) keys MESSAGE-INTEGRITY(-SHA256) computed at build.

    A missing `transaction_id` is drawn at random once, at construction, so repeated builds agree.
    """

    name = "STUN"
    fields_desc = [
        XShortEnumField("type", BINDING_REQUEST, MESSAGE_TYPES),
        ShortField("length", None),
        XIntField("magic_cookie", MAGIC_COOKIE),
        StrFixedLenField("transaction_id", None, 12),
        PacketListField("attributes", [], StunAttribute),
        BuildOnlyField("key", None),
    ]

    def __init__(self, _pkt: bytes = b"", *args: Any, **fields: Any) -> None:
        if not _pkt and fields.get("transaction_id") is None:
            fields["transaction_id"] = os.urandom(12)
        super().__init__(_pkt, *args, **fields)

    def self_build(self) -> bytes:
        # Attributes put in the list in place (message.attributes.insert(...)) get no parent
        # otherwise, and XOR-MAPPED-ADDRESS needs the transaction ID from it.
        for attribute in self.attributes:
            attribute.add_parent(self)
        return super().self_build()

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        data = bytearray(pkt)
        offset = HEADER_LENGTH
        for attribute in self.attributes:
            end = offset + len(bytes(attribute))
            if isinstance(attribute, StunMessageIntegrity) and attribute.hmac is None:
                if self.key is None:
                    raise CraftError(f"{attribute.name} is to be computed but the message has no key")
                size = cast(_DigestField, attribute.get_field("hmac")).placeholder_size(attribute)
                digest = hmac.new(self.key, _covered(data, offset, end), attribute.digest).digest()
                data[offset + 4 : offset + 4 + min(size, len(digest))] = digest[:size]
            elif isinstance(attribute, StunFingerprint) and attribute.crc is None:
                crc = zlib.crc32(_covered(data, offset, end)) ^ FINGERPRINT_XOR
                data[offset + 4 : offset + 8] = struct.pack("!I", crc)
            offset = end
        if self.length is None:
            data[2:4] = struct.pack("!H", len(data) - HEADER_LENGTH + len(pay))
        return bytes(data) + pay


def _covered(data: bytearray, offset: int, end: int) -> bytes:
    """The bytes an integrity/fingerprint attribute at [offset, end) covers, length adjusted to `end`."""
    return bytes(data[:2]) + struct.pack("!H", end - HEADER_LENGTH) + bytes(data[4:offset])


def error_code(code: int, reason: str | bytes = b"") -> StunErrorCode:
    """ERROR-CODE for `code` (e.g. 487) with a reason phrase."""
    if isinstance(reason, str):
        reason = reason.encode()
    return StunErrorCode(error_class=code // 100, number=code % 100, reason=reason)


def ice_check(
    username: str | bytes,
    password: str | bytes,
    *,
    use_candidate: bool = True,
    controlling: bool = True,
    tie_breaker: int | None = None,
    priority: int = PEER_REFLEXIVE_PRIORITY,
    transaction_id: bytes | None = None,
    extra: Iterable[StunAttribute] = (),
    integrity: bool = True,
    fingerprint: bool = True,
) -> StunMessage:
    """An ICE connectivity check (RFC 8445 §7.1.1) as a controlling or controlled agent sends it.

    `username` is "remote_ufrag:local_ufrag"; `password` is the remote password (the short-term
    key). Attributes: USERNAME, PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED, USE-CANDIDATE
    (controlling and `use_candidate` only), then `extra` in order, then MESSAGE-INTEGRITY and
    FINGERPRINT (each left out when its flag is False). `tie_breaker` defaults to a random 64-bit
    value. Modify the returned message freely before taking bytes().
    """
    if isinstance(username, str):
        username = username.encode()
    if tie_breaker is None:
        tie_breaker = int.from_bytes(os.urandom(8), "big")
    role = StunIceControlling if controlling else StunIceControlled
    attributes: list[StunAttribute] = [
        StunUsername(username=username),
        StunPriority(priority=priority),
        role(tie_breaker=tie_breaker),
    ]
    if controlling and use_candidate:
        attributes.append(StunUseCandidate())
    attributes.extend(extra)
    if integrity:
        attributes.append(StunMessageIntegrity())
    if fingerprint:
        attributes.append(StunFingerprint())
    return StunMessage(type=BINDING_REQUEST, transaction_id=transaction_id, key=password, attributes=attributes)

