"""STUN variants: message handling gone wrong (RFC 8489, RFC 8445 §7.3)."""

from __future__ import annotations

import socket
import struct
import zlib

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.events import Address
from tests.zoo import variant
from tests.zoo.seams import AuthenticatedCheck, Datagram, after_check, intercept

_SUCCESS = b"\x01\x01"  # Binding success response
_FINGERPRINT_HEADER = struct.pack("!HH", stun.FINGERPRINT, 4)


def is_success(data: bytes, kind: str) -> bool:
    return kind == "stun" and data[:2] == _SUCCESS


@variant("success-without-fingerprint", checks=("STUN-01",),
         why="Binding success responses carry no FINGERPRINT (RFC 8445 §7.3 requires it)")
class SuccessWithoutFingerprint(ServerCore):
    def _send(self, data: bytes, address: Address, kind: str) -> None:
        if is_success(data, kind) and data[-8:-4] == _FINGERPRINT_HEADER:
            data = data[:2] + (len(data) - 28).to_bytes(2, "big") + data[4:-8]
        super()._send(data, address, kind)


@variant("integrity-not-verified", checks=("STUN-02", "MIGRATE-04"),
         why="MESSAGE-INTEGRITY is only looked for, never verified: any password authenticates a known ufrag")
@intercept("_receive_stun")
def integrity_not_verified(datagram: Datagram) -> bytes:
    if datagram.addressed is not None and datagram.stun.integrity_offset is not None:
        return datagram.resigned()
    return datagram.data


@variant("binds-before-integrity", checks=("STUN-02", "MIGRATE-04"),
         why="binds (and nominates) the source of a check naming a known ufrag before verifying its "
             "MESSAGE-INTEGRITY, then answers 401")
@intercept("_receive_stun")
def binds_before_integrity(datagram: Datagram) -> bytes:
    if datagram.addressed is not None and datagram.stun.msg_class == stun.REQUEST:
        datagram.core._authenticated_check(datagram.addressed, datagram.stun, datagram.source, datagram.now)
    return datagram.data


@variant("integrity-optional", checks=("STUN-03",),
         why="a request without MESSAGE-INTEGRITY is taken as authenticated when its USERNAME names a session")
@intercept("_receive_stun")
def integrity_optional(datagram: Datagram) -> bytes:
    if datagram.addressed is not None and datagram.stun.integrity_offset is None:
        return datagram.resigned()
    return datagram.data


@variant("fingerprint-not-verified", checks=("STUN-04",),
         why="FINGERPRINT must be present but its CRC-32 is never compared")
@intercept("_receive_stun")
def fingerprint_not_verified(datagram: Datagram) -> bytes:
    data = datagram.data
    if datagram.stun is not None and datagram.stun.fingerprint_offset is not None:
        data = data[:-4] + struct.pack("!I", zlib.crc32(data[:-8]) ^ 0x5354554E)
    return data


def authenticated(datagram: Datagram) -> bool:
    """A STUN message naming a session, signed with its password."""
    return datagram.addressed is not None and stun.integrity_ok(datagram.data, datagram.stun,
                                                                 datagram.addressed.pwd.encode())


@variant("unknown-attributes-ignored", checks=("STUN-05",),
         why="unknown comprehension-required attributes are skipped like optional ones: success instead of 420")
@intercept("_receive_stun")
def unknown_attributes_ignored(datagram: Datagram) -> bytes:
    unknown = datagram.stun.unknown_comprehension_required() if authenticated(datagram) else None
    return datagram.resigned(without=frozenset(unknown)) if unknown else datagram.data


@variant("error-420-without-unknown-attributes", checks=("STUN-05",),
         why="the 420 error response does not list the unknown attributes (no UNKNOWN-ATTRIBUTES)")
class Error420WithoutUnknownAttributes(ServerCore):
    def _reply_error(self, data: bytes, msg: stun.StunMessage, address: Address, code: int, reason: str,
                     *, key: bytes | None, extra: list[tuple[int, bytes]] = ()) -> None:
        super()._reply_error(data, msg, address, code, reason, key=key, extra=[] if code == 420 else extra)


@variant("rejects-nonzero-padding", checks=("STUN-06",),
         why="drops a message whose attribute padding is not zero (RFC 8489 §14: padding must be ignored)")
@intercept("_receive_stun")
def rejects_nonzero_padding(datagram: Datagram) -> bytes | None:
    data, position = datagram.data, 20
    while position + 4 <= len(data):
        length = int.from_bytes(data[position + 2: position + 4], "big")
        end = position + 4 + length
        if any(data[end: end + (-length & 3)]):
            datagram.core._drop("stun_malformed", datagram.source, "non-zero padding")
            return None
        position = end + (-length & 3)
    return data


@variant("use-candidate-after-integrity", checks=("STUN-06",),
         why="honours USE-CANDIDATE wherever it appears, also after MESSAGE-INTEGRITY where nothing "
             "authenticates it")
@after_check
def use_candidate_after_integrity(_core: ServerCore, check: AuthenticatedCheck) -> None:
    if any(attr_type == stun.USE_CANDIDATE for attr_type, _ in check.msg.attributes):
        check.session.selected = check.address


@variant("unknown-ufrag-answered", checks=("STUN-07",),
         why="answers a check for an unknown ufrag with 401, telling a scanner which ufrags exist")
@intercept("_receive_stun")
def unknown_ufrag_answered(datagram: Datagram) -> bytes | None:
    msg = datagram.stun
    if (msg is not None and msg.msg_class == stun.REQUEST and msg.get(stun.USERNAME) is not None
            and datagram.addressed is None):
        datagram.core._reply_error(datagram.data, msg, datagram.source, 401, "Unauthorized", key=None)
        return None
    return datagram.data


@variant("no-amplification-guard", checks=("STUN-08",),
         why="unauthenticated error responses go out whatever their size, with a SOFTWARE attribute: a 28-byte "
             "request gets a 92-byte 400")
class NoAmplificationGuard(ServerCore):
    def _reply_error(self, data: bytes, msg: stun.StunMessage, address: Address, code: int, reason: str,
                     *, key: bytes | None, extra: list[tuple[int, bytes]] = ()) -> None:
        attributes = [(stun.ERROR_CODE, stun.error_code(code, reason)), *extra,
                      (stun.SOFTWARE, b"rtcgate zoo: no amplification guard")]
        self._send(stun.build(stun.BINDING, stun.ERROR, msg.transaction_id, attributes, integrity_key=key),
                   address, "stun")


@variant("answers-indications", checks=("STUN-09",),
         why="handles a Binding indication as a request: answers it, binds its source and honours its USE-CANDIDATE")
@intercept("_receive_stun")
def answers_indications(datagram: Datagram) -> bytes:
    if authenticated(datagram) and datagram.stun.msg_class == stun.INDICATION:
        return datagram.resigned(msg_class=stun.REQUEST)
    return datagram.data


@variant("ipv6-xor-with-cookie-only", checks=("STUN-10",), host="::1",
         why="XORs an IPv6 XOR-MAPPED-ADDRESS with the magic cookie in every word, as for IPv4, instead of "
             "cookie + transaction ID")
class Ipv6XorWithCookieOnly(ServerCore):
    def _send(self, data: bytes, address: Address, kind: str) -> None:
        if is_success(data, kind) and ":" in address[0]:
            msg = stun.parse(data)
            cookie = stun.MAGIC_COOKIE.to_bytes(4, "big") * 4
            raw = bytes(a ^ b for a, b in zip(socket.inet_pton(socket.AF_INET6, address[0]), cookie))
            wrong = struct.pack("!BBH", 0, 2, address[1] ^ (stun.MAGIC_COOKIE >> 16)) + raw
            attributes = [(attr_type, wrong if attr_type == stun.XOR_MAPPED_ADDRESS else value)
                          for attr_type, value in msg.attributes
                          if attr_type not in (stun.MESSAGE_INTEGRITY, stun.FINGERPRINT)]
            answering = self.sessions.by_address[address]  # the check just bound it; sign with its password
            data = stun.build(stun.BINDING, stun.SUCCESS, msg.transaction_id, attributes,
                              integrity_key=answering.pwd.encode())
        super()._send(data, address, kind)
