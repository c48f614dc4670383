"""DTLS 1.2 records and handshake messages as scapy layers (scapy has none), for DTLS-SRTP tests.

Every length (record, handshake, fragment, vectors, extensions) is None = computed at build,
or written as given. Layers stack the scapy way::

    record = DtlsRecord(epoch=0, sequence_number=0) / DtlsHandshake(message_seq=0) / DtlsClientHello(
        cookie=b"", cipher_suites=[0xC02B], extensions=[DtlsExtUseSrtp(profiles=[0x0007, 0x0001])])
    bytes(record)

Layers:
- `DtlsRecord`: content_type, version, epoch, sequence_number (48 bits), length; its payload is
  the fragment (a handshake, `DtlsChangeCipherSpec`, `DtlsAlert`, or Raw bytes).
- `DtlsHandshake`: msg_type, length (whole message), message_seq, fragment_offset,
  fragment_length (this piece); its payload is the body. `length` and `fragment_length`
  default to the size of the body carried, i.e. an unfragmented message.
- Bodies: `DtlsClientHello` (a fresh random by default), `DtlsHelloVerifyRequest`, `DtlsServerHello`.
- Extensions: `DtlsExtension` (any type, raw data), `DtlsExtUseSrtp` (RFC 5764),
  `DtlsExtSupportedGroups`, `DtlsExtSignatureAlgorithms`, `DtlsExtEcPointFormats`,
  `DtlsExtExtendedMasterSecret`, `DtlsExtRenegotiationInfo`.

Helpers: `client_hello(...)` (a plausible WebRTC ClientHello body), `client_hello_flight(...)`
(that body in records, optionally fragmented), `fragment_handshake(handshake, count|size)`,
`in_records(handshakes, ...)`, `split_records(datagram)`, `parse_records(datagram)`,
`handshake_messages(datagram)`, `hello_verify_cookie(datagram)`.

Dissecting with these layers is for evidence and expectations on a handful of packets; a real
handshake belongs to pyOpenSSL (the probe peer).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from scapy.fields import (
    AnyField,
    BitField,
    ByteEnumField,
    ByteField,
    FieldLenField,
    FieldListField,
    PacketListField,
    ShortField,
    ThreeBytesField,
    XShortEnumField,
    XStrFixedLenField,
    XStrLenField,
)
from scapy.packet import Packet, Raw

from toolkit.crafters.common import CraftError

DTLS_1_0 = 0xFEFF
DTLS_1_2 = 0xFEFD
VERSIONS = {DTLS_1_0: "DTLS 1.0", DTLS_1_2: "DTLS 1.2"}

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
CONTENT_TYPES = {CHANGE_CIPHER_SPEC: "change_cipher_spec", ALERT: "alert", HANDSHAKE: "handshake",
                 APPLICATION_DATA: "application_data"}

CLIENT_HELLO = 1
SERVER_HELLO = 2
HELLO_VERIFY_REQUEST = 3
CERTIFICATE = 11
SERVER_KEY_EXCHANGE = 12
CERTIFICATE_REQUEST = 13
SERVER_HELLO_DONE = 14
CERTIFICATE_VERIFY = 15
CLIENT_KEY_EXCHANGE = 16
FINISHED = 20
HANDSHAKE_TYPES = {
    CLIENT_HELLO: "client_hello", SERVER_HELLO: "server_hello", HELLO_VERIFY_REQUEST: "hello_verify_request",
    CERTIFICATE: "certificate", SERVER_KEY_EXCHANGE: "server_key_exchange",
    CERTIFICATE_REQUEST: "certificate_request", SERVER_HELLO_DONE: "server_hello_done",
    CERTIFICATE_VERIFY: "certificate_verify", CLIENT_KEY_EXCHANGE: "client_key_exchange", FINISHED: "finished",
}

CIPHER_SUITES = {
    0xC02B: "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02F: "ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC030: "ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA9: "ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA8: "ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC013: "ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC00A: "ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC014: "ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0x009C: "RSA_WITH_AES_128_GCM_SHA256",
    0x002F: "RSA_WITH_AES_128_CBC_SHA",
    0x0035: "RSA_WITH_AES_256_CBC_SHA",
}
WEBRTC_CIPHER_SUITES = (0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC009, 0xC013, 0xC00A, 0xC014, 0x009C, 0x002F, 0x0035)
"""What a browser offers for DTLS 1.2 in WebRTC, roughly, most preferred first."""

SRTP_PROTECTION_PROFILES = {
    0x0001: "SRTP_AES128_CM_HMAC_SHA1_80",
    0x0002: "SRTP_AES128_CM_HMAC_SHA1_32",
    0x0007: "SRTP_AEAD_AES_128_GCM",
    0x0008: "SRTP_AEAD_AES_256_GCM",
}
GROUPS = {0x0017: "secp256r1", 0x0018: "secp384r1", 0x001D: "x25519"}
SIGNATURE_SCHEMES = {
    0x0403: "ecdsa_secp256r1_sha256", 0x0503: "ecdsa_secp384r1_sha384", 0x0804: "rsa_pss_rsae_sha256",
    0x0401: "rsa_pkcs1_sha256", 0x0805: "rsa_pss_rsae_sha384", 0x0501: "rsa_pkcs1_sha384",
    0x0806: "rsa_pss_rsae_sha512", 0x0601: "rsa_pkcs1_sha512", 0x0201: "rsa_pkcs1_sha1",
}

EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_USE_SRTP = 14
EXT_EXTENDED_MASTER_SECRET = 23
EXT_RENEGOTIATION_INFO = 0xFF01
EXTENSION_TYPES = {
    EXT_SUPPORTED_GROUPS: "supported_groups", EXT_EC_POINT_FORMATS: "ec_point_formats",
    EXT_SIGNATURE_ALGORITHMS: "signature_algorithms", EXT_USE_SRTP: "use_srtp",
    EXT_EXTENDED_MASTER_SECRET: "extended_master_secret", EXT_RENEGOTIATION_INFO: "renegotiation_info",
}

ALERT_LEVELS = {1: "warning", 2: "fatal"}
ALERT_DESCRIPTIONS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
                      42: "bad_certificate", 47: "illegal_parameter", 50: "decode_error", 51: "decrypt_error",
                      70: "protocol_version", 80: "internal_error", 90: "user_canceled", 110: "unsupported_extension"}

RECORD_HEADER_LENGTH = 13
HANDSHAKE_HEADER_LENGTH = 12


class DtlsRecord(Packet):
    name = "DTLS record"
    fields_desc = [
        ByteEnumField("content_type", HANDSHAKE, CONTENT_TYPES),
        XShortEnumField("version", DTLS_1_2, VERSIONS),
        ShortField("epoch", 0),
        BitField("sequence_number", 0, 48),
        ShortField("length", None),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            if len(pay) > 0xFFFF:
                raise CraftError(f"DTLS record fragment of {len(pay)} bytes does not fit a 16-bit length")
            pkt = pkt[:11] + len(pay).to_bytes(2, "big")
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return s[: self.length], s[self.length :]

    def guess_payload_class(self, payload: bytes) -> type:
        if self.epoch == 0:
            return {HANDSHAKE: DtlsHandshake, CHANGE_CIPHER_SPEC: DtlsChangeCipherSpec, ALERT: DtlsAlert}.get(
                self.content_type, Raw
            )
        return Raw


class DtlsHandshake(Packet):
    name = "DTLS handshake"
    fields_desc = [
        ByteEnumField("msg_type", CLIENT_HELLO, HANDSHAKE_TYPES),
        ThreeBytesField("length", None),  # type: ignore[arg-type]  # scapy types the default int; None: computed
        ShortField("message_seq", 0),
        ThreeBytesField("fragment_offset", 0),
        ThreeBytesField("fragment_length", None),  # type: ignore[arg-type]  # as `length`
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        size = len(pay).to_bytes(3, "big")
        if self.length is None:
            pkt = pkt[:1] + size + pkt[4:]
        if self.fragment_length is None:
            pkt = pkt[:9] + size
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return s[: self.fragment_length], s[self.fragment_length :]

    def guess_payload_class(self, payload: bytes) -> type:
        if self.fragment_offset == 0 and self.fragment_length == self.length:
            return _BODIES.get(self.msg_type, Raw)
        return Raw


class DtlsExtension(Packet):
    """Any extension as type + raw data."""

    name = "DTLS extension"
    fields_desc = [
        XShortEnumField("type", 0, EXTENSION_TYPES),
        ShortField("length", None),
        XStrLenField("data", b"", length_from=lambda pkt: pkt.length),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> type:
        if cls is DtlsExtension and _pkt and len(_pkt) >= 2:
            return _EXTENSIONS.get(int.from_bytes(_pkt[:2], "big"), cls)
        return cls

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:2] + (len(pkt) - 4).to_bytes(2, "big") + pkt[4:]
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def _extension(ext_type: int, *body: AnyField) -> list[AnyField]:
    return [XShortEnumField("type", ext_type, EXTENSION_TYPES), ShortField("length", None), *body]


def _vector(name: str, default: list[int], item: AnyField, *, length_format: str = "H") -> list[AnyField]:
    """A TLS vector of numbers: its length in bytes (`<name>_length`, None = computed), then the items."""
    length_name = f"{name}_length"
    return [
        FieldLenField(length_name, None, length_of=name, fmt=length_format),
        # scapy types FieldListField's default as a list of fields; it is the list of values.
        FieldListField(name, default, item,  # type: ignore[arg-type]
                       length_from=lambda pkt: getattr(pkt, length_name)),
    ]


class DtlsExtUseSrtp(DtlsExtension):
    name = "DTLS use_srtp"
    fields_desc = _extension(
        EXT_USE_SRTP,
        *_vector("profiles", [0x0007, 0x0001], XShortEnumField("profile", 0, SRTP_PROTECTION_PROFILES)),
        FieldLenField("mki_length", None, length_of="mki", fmt="B"),
        XStrLenField("mki", b"", length_from=lambda pkt: pkt.mki_length),
    )


class DtlsExtSupportedGroups(DtlsExtension):
    name = "DTLS supported_groups"
    fields_desc = _extension(
        EXT_SUPPORTED_GROUPS,
        *_vector("groups", [0x001D, 0x0017, 0x0018], XShortEnumField("group", 0, GROUPS)),
    )


class DtlsExtSignatureAlgorithms(DtlsExtension):
    name = "DTLS signature_algorithms"
    fields_desc = _extension(
        EXT_SIGNATURE_ALGORITHMS,
        *_vector("algorithms", [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201],
                 XShortEnumField("algorithm", 0, SIGNATURE_SCHEMES)),
    )


class DtlsExtEcPointFormats(DtlsExtension):
    name = "DTLS ec_point_formats"
    fields_desc = _extension(
        EXT_EC_POINT_FORMATS,
        *_vector("formats", [0], ByteField("format", 0), length_format="B"),
    )


class DtlsExtExtendedMasterSecret(DtlsExtension):
    name = "DTLS extended_master_secret"
    fields_desc = _extension(EXT_EXTENDED_MASTER_SECRET)


class DtlsExtRenegotiationInfo(DtlsExtension):
    name = "DTLS renegotiation_info"
    fields_desc = _extension(
        EXT_RENEGOTIATION_INFO,
        FieldLenField("info_length", None, length_of="info", fmt="B"),
        XStrLenField("info", b"", length_from=lambda pkt: pkt.info_length),
    )


_EXTENSIONS: dict[int, type[DtlsExtension]] = {
    EXT_USE_SRTP: DtlsExtUseSrtp,
    EXT_SUPPORTED_GROUPS: DtlsExtSupportedGroups,
    EXT_SIGNATURE_ALGORITHMS: DtlsExtSignatureAlgorithms,
    EXT_EC_POINT_FORMATS: DtlsExtEcPointFormats,
    EXT_EXTENDED_MASTER_SECRET: DtlsExtExtendedMasterSecret,
    EXT_RENEGOTIATION_INFO: DtlsExtRenegotiationInfo,
}


def _extensions_field() -> list[AnyField]:
    return [
        FieldLenField("extensions_length", None, length_of="extensions"),
        PacketListField("extensions", [], DtlsExtension, length_from=lambda pkt: pkt.extensions_length),
    ]


class DtlsClientHello(Packet):
    """ClientHello body. A missing `random` is drawn once at construction, so rebuilds agree."""

    name = "DTLS ClientHello"
    fields_desc = [
        XShortEnumField("client_version", DTLS_1_2, VERSIONS),
        XStrFixedLenField("random", None, 32),
        FieldLenField("session_id_length", None, length_of="session_id", fmt="B"),
        XStrLenField("session_id", b"", length_from=lambda pkt: pkt.session_id_length),
        FieldLenField("cookie_length", None, length_of="cookie", fmt="B"),
        XStrLenField("cookie", b"", length_from=lambda pkt: pkt.cookie_length),
        *_vector("cipher_suites", list(WEBRTC_CIPHER_SUITES), XShortEnumField("suite", 0, CIPHER_SUITES)),
        *_vector("compression_methods", [0], ByteField("method", 0), length_format="B"),
        *_extensions_field(),
    ]

    def __init__(self, _pkt: bytes = b"", *args: Any, **fields: Any) -> None:
        if not _pkt and fields.get("random") is None:
            fields["random"] = os.urandom(32)
        super().__init__(_pkt, *args, **fields)


class DtlsHelloVerifyRequest(Packet):
    name = "DTLS HelloVerifyRequest"
    fields_desc = [
        XShortEnumField("server_version", DTLS_1_0, VERSIONS),
        FieldLenField("cookie_length", None, length_of="cookie", fmt="B"),
        XStrLenField("cookie", b"", length_from=lambda pkt: pkt.cookie_length),
    ]


class DtlsServerHello(Packet):
    name = "DTLS ServerHello"
    fields_desc = [
        XShortEnumField("server_version", DTLS_1_2, VERSIONS),
        XStrFixedLenField("random", bytes(32), 32),
        FieldLenField("session_id_length", None, length_of="session_id", fmt="B"),
        XStrLenField("session_id", b"", length_from=lambda pkt: pkt.session_id_length),
        XShortEnumField("cipher_suite", 0xC02B, CIPHER_SUITES),
        ByteField("compression_method", 0),
        *_extensions_field(),
    ]


class DtlsChangeCipherSpec(Packet):
    name = "DTLS ChangeCipherSpec"
    fields_desc = [ByteField("value", 1)]


class DtlsAlert(Packet):
    name = "DTLS Alert"
    fields_desc = [
        ByteEnumField("level", 2, ALERT_LEVELS),
        ByteEnumField("description", 40, ALERT_DESCRIPTIONS),
    ]


_BODIES: dict[int, type[Packet]] = {
    CLIENT_HELLO: DtlsClientHello,
    SERVER_HELLO: DtlsServerHello,
    HELLO_VERIFY_REQUEST: DtlsHelloVerifyRequest,
}

CONTENT_TYPES_BY_LAYER: dict[type[Packet], int] = {DtlsChangeCipherSpec: CHANGE_CIPHER_SPEC, DtlsAlert: ALERT}


def client_hello(
    *,
    cookie: bytes = b"",
    srtp_profiles: Sequence[int] = (0x0007, 0x0001),
    cipher_suites: Sequence[int] = WEBRTC_CIPHER_SUITES,
    random: bytes | None = None,
    session_id: bytes = b"",
    extra_extensions: Iterable[DtlsExtension] = (),
) -> DtlsClientHello:
    """A ClientHello body as a WebRTC browser sends it (DTLS 1.2, ECDHE, use_srtp, EMS).

    Extensions in order: extended_master_secret, renegotiation_info, supported_groups,
    ec_point_formats, signature_algorithms, use_srtp (left out when `srtp_profiles` is empty),
    then `extra_extensions`.
    """
    extensions: list[DtlsExtension] = [
        DtlsExtExtendedMasterSecret(),
        DtlsExtRenegotiationInfo(),
        DtlsExtSupportedGroups(),
        DtlsExtEcPointFormats(),
        DtlsExtSignatureAlgorithms(),
    ]
    if srtp_profiles:
        extensions.append(DtlsExtUseSrtp(profiles=list(srtp_profiles)))
    extensions.extend(extra_extensions)
    return DtlsClientHello(
        random=random, session_id=session_id, cookie=cookie, cipher_suites=list(cipher_suites), extensions=extensions
    )


def fragment_handshake(
    handshake: DtlsHandshake, count: int | None = None, *, size: int | None = None
) -> list[DtlsHandshake]:
    """Split a handshake message into `count` fragments, or fragments of at most `size` body bytes.

    Each keeps msg_type and message_seq, carries the whole message's `length`, and its own
    fragment_offset/fragment_length; the body is Raw bytes.
    """
    body = bytes(handshake.payload)
    if (count is None) == (size is None):
        raise CraftError("fragment_handshake needs exactly one of count= and size=")
    if count is not None:
        if not 1 <= count <= max(len(body), 1):
            raise CraftError(f"cannot split a {len(body)}-byte handshake body into {count} fragments")
        size = -(-len(body) // count)
    if size is None or size < 1:
        raise CraftError(f"fragment size must be at least 1 byte, got {size}")
    total = len(body) if handshake.length is None else handshake.length
    return [
        DtlsHandshake(
            msg_type=handshake.msg_type,
            length=total,
            message_seq=handshake.message_seq,
            fragment_offset=offset,
            fragment_length=len(body[offset : offset + size]),
        )
        / Raw(body[offset : offset + size])
        for offset in range(0, max(len(body), 1), size)
    ]


def in_records(
    fragments: Iterable[Packet], *, epoch: int = 0, first_sequence: int = 0, version: int = DTLS_1_2
) -> list[DtlsRecord]:
    """Each handshake (or other fragment) in its own record, sequence numbers counting up."""
    records = []
    for number, fragment in enumerate(fragments):
        content_type = HANDSHAKE if isinstance(fragment, DtlsHandshake) else CONTENT_TYPES_BY_LAYER.get(
            type(fragment), APPLICATION_DATA
        )
        records.append(
            DtlsRecord(content_type=content_type, version=version, epoch=epoch,
                       sequence_number=first_sequence + number) / fragment
        )
    return records


def client_hello_flight(
    *,
    fragments: int = 1,
    message_seq: int = 0,
    first_sequence: int = 0,
    version: int = DTLS_1_2,
    **hello: Any,
) -> list[DtlsRecord]:
    """A ClientHello (see `client_hello` for its keywords) in records, split into `fragments` pieces.

    Send each record in its own datagram, or join several with b"".join(map(bytes, records)).
    A second ClientHello after a HelloVerifyRequest: message_seq=1, first_sequence=1, cookie=...
    """
    handshake = DtlsHandshake(msg_type=CLIENT_HELLO, message_seq=message_seq) / client_hello(**hello)
    pieces = [handshake] if fragments == 1 else fragment_handshake(handshake, fragments)
    return in_records(pieces, first_sequence=first_sequence, version=version)


def split_records(datagram: bytes) -> list[bytes]:
    """The records in a datagram as bytes, as their headers' lengths cut it (trailing bytes too
    short for a header end the list; a record whose length runs past the end is cut short)."""
    pieces = []
    rest = bytes(datagram)
    while len(rest) >= RECORD_HEADER_LENGTH:
        end = RECORD_HEADER_LENGTH + int.from_bytes(rest[11:13], "big")
        pieces.append(rest[:end])
        rest = rest[end:]
    return pieces


def parse_records(datagram: bytes) -> list[DtlsRecord]:
    """The records in a datagram (trailing bytes too short for a header end the list)."""
    return [DtlsRecord(piece) for piece in split_records(datagram)]


def handshake_messages(datagram: bytes) -> list[DtlsHandshake]:
    """Every plaintext (epoch 0) handshake message or fragment in a datagram, in order."""
    messages = []
    for piece in split_records(datagram):
        if piece[0] != HANDSHAKE or piece[3:5] != b"\x00\x00":
            continue
        rest = piece[RECORD_HEADER_LENGTH:]
        while len(rest) >= HANDSHAKE_HEADER_LENGTH:
            length = int.from_bytes(rest[9:12], "big")
            messages.append(DtlsHandshake(rest[: HANDSHAKE_HEADER_LENGTH + length]))
            rest = rest[HANDSHAKE_HEADER_LENGTH + length :]
    return messages


def hello_verify_cookie(datagram: bytes) -> bytes | None:
    """The cookie of a HelloVerifyRequest in the datagram, or None if there is none."""
    for message in handshake_messages(datagram):
        if DtlsHelloVerifyRequest in message:
            cookie: bytes = message[DtlsHelloVerifyRequest].cookie
            return cookie
    return None
