"""STUN variants: message handling gone wrong (RFC 8489, RFC 8445 §7.3)."""

from __future__ import annotations

import socket
import struct
import zlib

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.events import Address
from reference_server.sessions import Session
from tests.zoo import variant
from tests.zoo.seams import addressed_session, parse_stun, rebuilt

_SUCCESS = b"\x01\x01"  # Binding success response
_FINGERPRINT_HEADER = struct.pack("!HH", stun.FINGERPRINT, 4)


@variant("success-without-fingerprint", checks=("STUN-01",),
         why="Binding success responses carry no FINGERPRINT (RFC 8445 §7.3 requires it)")
class SuccessWithoutFingerprint(ServerCore):
    def _send(self, data: bytes, address: Address, kind: str) -> None:
        if kind == "stun" and data[:2] == _SUCCESS and data[-8:-4] == _FINGERPRINT_HEADER:
            data = data[:2] + (len(data) - 28).to_bytes(2, "big") + data[4:-8]
        super()._send(data, address, kind)


@variant("integrity-not-verified", checks=("STUN-02", "MIGRATE-04"),
         why="MESSAGE-INTEGRITY is only looked for, never verified: any password authenticates a known ufrag")
class IntegrityNotVerified(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        session = addressed_session(self, msg) if msg is not None else None
        if session is not None and msg.integrity_offset is not None:
            data = rebuilt(msg, session.pwd.encode())
        super()._receive_stun(data, address, now)


@variant("binds-before-integrity", checks=("STUN-02", "MIGRATE-04"),
         why="binds (and nominates) the source of a check naming a known ufrag before verifying its "
             "MESSAGE-INTEGRITY, then answers 401")
class BindsBeforeIntegrity(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        session = addressed_session(self, msg) if msg is not None and msg.msg_class == stun.REQUEST else None
        if session is not None:
            self._authenticated_check(session, msg, address, now)
        super()._receive_stun(data, address, now)


@variant("integrity-optional", checks=("STUN-03",),
         why="a request without MESSAGE-INTEGRITY is taken as authenticated when its USERNAME names a session")
class IntegrityOptional(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        session = addressed_session(self, msg) if msg is not None else None
        if session is not None and msg.integrity_offset is None:
            data = rebuilt(msg, session.pwd.encode())
        super()._receive_stun(data, address, now)


@variant("fingerprint-not-verified", checks=("STUN-04",),
         why="FINGERPRINT must be present but its CRC-32 is never compared")
class FingerprintNotVerified(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        if msg is not None and msg.fingerprint_offset is not None:
            data = data[:-4] + struct.pack("!I", zlib.crc32(data[:-8]) ^ 0x5354554E)
        super()._receive_stun(data, address, now)


@variant("unknown-attributes-ignored", checks=("STUN-05",),
         why="unknown comprehension-required attributes are skipped like optional ones: success instead of 420")
class UnknownAttributesIgnored(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        session = addressed_session(self, msg) if msg is not None else None
        if session is not None and stun.integrity_ok(data, msg, session.pwd.encode()):
            unknown = msg.unknown_comprehension_required()
            if unknown:
                data = rebuilt(msg, session.pwd.encode(), without=frozenset(unknown))
        super()._receive_stun(data, address, now)


@variant("error-420-without-unknown-attributes", checks=("STUN-05",),
         why="the 420 error response does not list the unknown attributes (no UNKNOWN-ATTRIBUTES)")
class Error420WithoutUnknownAttributes(ServerCore):
    def _reply_error(self, data: bytes, msg: stun.StunMessage, address: Address, code: int, reason: str,
                     *, key: bytes | None, extra: list[tuple[int, bytes]] = ()) -> None:
        super()._reply_error(data, msg, address, code, reason, key=key, extra=[] if code == 420 else extra)


@variant("rejects-nonzero-padding", checks=("STUN-06",),
         why="drops a message whose attribute padding is not zero (RFC 8489 §14: padding must be ignored)")
class RejectsNonzeroPadding(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        position = 20
        while position + 4 <= len(data):
            length = int.from_bytes(data[position + 2: position + 4], "big")
            end = position + 4 + length
            if any(data[end: end + (-length & 3)]):
                self._drop("stun_malformed", address, "non-zero padding")
                return
            position = end + (-length & 3)
        super()._receive_stun(data, address, now)


@variant("use-candidate-after-integrity", checks=("STUN-06",),
         why="honours USE-CANDIDATE wherever it appears, also after MESSAGE-INTEGRITY where nothing "
             "authenticates it")
class UseCandidateAfterIntegrity(ServerCore):
    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        super()._authenticated_check(session, msg, address, now)
        if any(attr_type == stun.USE_CANDIDATE for attr_type, _ in msg.attributes):
            session.selected = address


@variant("unknown-ufrag-answered", checks=("STUN-07",),
         why="answers a check for an unknown ufrag with 401, telling a scanner which ufrags exist")
class UnknownUfragAnswered(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        if (msg is not None and msg.msg_class == stun.REQUEST and msg.get(stun.USERNAME) is not None
                and addressed_session(self, msg) is None):
            self._reply_error(data, msg, address, 401, "Unauthorized", key=None)
            return
        super()._receive_stun(data, address, now)


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
class AnswersIndications(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        session = addressed_session(self, msg) if msg is not None and msg.msg_class == stun.INDICATION else None
        if session is not None and stun.integrity_ok(data, msg, session.pwd.encode()):
            data = rebuilt(msg, session.pwd.encode(), msg_class=stun.REQUEST)
        super()._receive_stun(data, address, now)


@variant("ipv6-xor-with-cookie-only", checks=("STUN-10",), host="::1",
         why="XORs an IPv6 XOR-MAPPED-ADDRESS with the magic cookie in every word, as for IPv4, instead of "
             "cookie + transaction ID")
class Ipv6XorWithCookieOnly(ServerCore):
    _answering: Session | None = None

    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        super()._authenticated_check(session, msg, address, now)
        self._answering = session  # the success response that follows is signed with its password

    def _send(self, data: bytes, address: Address, kind: str) -> None:
        if kind == "stun" and data[:2] == _SUCCESS and ":" in address[0]:
            msg = stun.parse(data)
            cookie = stun.MAGIC_COOKIE.to_bytes(4, "big") * 4
            raw = bytes(a ^ b for a, b in zip(socket.inet_pton(socket.AF_INET6, address[0]), cookie))
            wrong = struct.pack("!BBH", 0, 2, address[1] ^ (stun.MAGIC_COOKIE >> 16)) + raw
            attributes = [(attr_type, wrong if attr_type == stun.XOR_MAPPED_ADDRESS else value)
                          for attr_type, value in msg.attributes
                          if attr_type not in (stun.MESSAGE_INTEGRITY, stun.FINGERPRINT)]
            data = stun.build(stun.BINDING, stun.SUCCESS, msg.transaction_id, attributes,
                              integrity_key=self._answering.pwd.encode())
        super()._send(data, address, kind)
