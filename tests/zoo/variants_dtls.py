"""DTLS variants: handshakes that accept too much, give up too soon, or reset."""

from __future__ import annotations

import struct
from unittest import mock

from OpenSSL import SSL

from reference_server import dtls
from reference_server.core import ServerCore
from reference_server.dtls import DtlsEndpoint, DtlsState
from reference_server.sessions import Session
from tests.zoo import variant
from tests.zoo.seams import (
    Datagram,
    back_before_dtls,
    before_free,
    dtls_core,
    ends_session_when,
    intercept,
    per_instance,
    rewrite_answer,
    start_dtls_over,
)
from toolkit.crafters.dtls import HANDSHAKE, split_records

DEFAULT_SRTP_PROFILE = b"SRTP_AES128_CM_SHA1_80"
APPLICATION_DATA = 23
OP_ALLOW_CLIENT_RENEGOTIATION = 1 << 8  # OpenSSL 3+ (pyOpenSSL exposes no name for it)


def is_plain_handshake(record: bytes) -> bool:
    """A handshake record of epoch 0: not encrypted."""
    return record[0] == HANDSHAKE and record[3:5] == b"\0\0"


def is_client_hello(data: bytes) -> bool:
    """A plaintext (epoch 0) handshake record whose first message is a ClientHello."""
    return len(data) > 13 and is_plain_handshake(data) and data[13] == 1


def is_encrypted_handshake(data: bytes) -> bool:
    """A handshake record of epoch 1 or later: after the handshake, only a renegotiation sends one."""
    return len(data) > 13 and data[0] == HANDSHAKE and data[3:5] != b"\0\0"


def is_fragment(record: bytes) -> bool:
    """A plaintext handshake record carrying part of a message, not all of it."""
    return (is_plain_handshake(record) and len(record) >= 25
            and (record[19:22] != b"\0\0\0" or record[22:25] != record[14:17]))  # fragment offset, length


def allowing_renegotiation(options: int) -> int:
    return options & ~SSL.OP_NO_RENEGOTIATION | OP_ALLOW_CLIENT_RENEGOTIATION


# -- endpoints the variants are built from --------------------------------------------------------


class AnyCertificateEndpoint(DtlsEndpoint):
    """Takes any client certificate (so long as use_srtp agreed)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._peer_check.accept = lambda connection, _der: bool(connection.get_selected_srtp_profile())


@variant("handshake-without-common-profile", checks=("DTLS-03",),
         why="when use_srtp finds no common profile the handshake still completes (OpenSSL's default), with no "
             "alert, and SRTP is keyed with a default profile")
class DefaultProfileEndpoint(DtlsEndpoint):
    """Takes a handshake in which use_srtp agreed on nothing as if it had agreed on the default
    profile: the peer check lets it complete, and SRTP is keyed with that profile."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        negotiated = self._connection.get_selected_srtp_profile
        self._connection.get_selected_srtp_profile = lambda: negotiated() or DEFAULT_SRTP_PROFILE


# -- the variants -------------------------------------------------------------------------------


NoUseSrtp = variant(
    "no-use-srtp", checks=("DTLS-01",),
    why="the DTLS context never offers use_srtp; SRTP is keyed with a default profile nobody negotiated",
)(dtls_core(DefaultProfileEndpoint, use_srtp=False))

variant("any-client-certificate", checks=("DTLS-02",),
        why="the client certificate is never compared with the offer's a=fingerprint: anyone may answer for the "
            "client")(AnyCertificateEndpoint)


@variant("answer-fingerprint-wrong", checks=("DTLS-02",),
         why="the answer's a=fingerprint is not the fingerprint of the certificate the server presents")
@rewrite_answer
def answer_fingerprint_wrong(core: ServerCore, _session: Session, answer: str) -> str:
    wrong = f"{int(core.fingerprint[:2], 16) ^ 0xFF:02X}{core.fingerprint[2:]}"
    return answer.replace(f"sha-256 {core.fingerprint}", f"sha-256 {wrong}")


@variant("no-dtls-retransmission", checks=("DTLS-04",),
         why="never retransmits a handshake flight (no timer, no resend when the client retransmits): one lost "
             "flight stalls the handshake")
class SendOnceEndpoint(DtlsEndpoint):
    """Sends each handshake flight once: no retransmission timer, and OpenSSL's resends (it also
    resends when it sees the peer retransmit) are dropped."""

    _sent: set[tuple[int, bytes, bytes]] = per_instance(set)

    def get_timer(self) -> float | None:
        return None

    def datagrams_to_send(self) -> list[bytes]:
        kept = [b"".join(filter(self._first_sending, split_records(datagram)))
                for datagram in super().datagrams_to_send()]
        return [datagram for datagram in kept if datagram]

    def _first_sending(self, record: bytes) -> bool:
        """Application data is not a flight; a handshake message is known by type, sequence and offset."""
        key = (record[0], record[3:5], record[13:14] + record[17:22] if is_plain_handshake(record) else b"")
        if key in self._sent and record[0] != APPLICATION_DATA:
            return False
        self._sent.add(key)
        return True


@variant("no-fragment-reassembly", checks=("DTLS-05",),
         why="handshake messages split into fragments are dropped, never reassembled")
class WholeMessagesEndpoint(DtlsEndpoint):
    """Drops a datagram holding a fragment of a handshake message instead of reassembling it."""

    def receive_datagram(self, data: bytes, now: float) -> None:
        if any(map(is_fragment, split_records(data))):
            self.dropped += 1
            return
        super().receive_datagram(data, now)


@variant("early-records-end-session", checks=("DTLS-06",),
         why="a DTLS record other than a ClientHello before the handshake (an early ChangeCipherSpec) is a "
             "fatal protocol error that ends the session")
@ends_session_when("_receive_dtls", "dtls_failed")
def early_record(datagram: Datagram) -> bool:
    return datagram.session.dtls.state is DtlsState.NEW and not is_client_hello(datagram.data)


@variant("client-hello-resets-session", checks=("DTLS-07",),
         why="a new ClientHello on a connected 5-tuple starts a new DTLS association, dropping the SRTP keys "
             "in use")
@intercept("_receive_dtls")
def client_hello_resets_session(datagram: Datagram) -> bytes:
    session = datagram.session
    if session is not None and session.dtls.state is DtlsState.CONNECTED and is_client_hello(datagram.data):
        start_dtls_over(datagram.core, session)
        session.srtp = None
    return datagram.data


@variant("no-record-framing-check", checks=("DTLS-09",),
         why="malformed records go straight to OpenSSL, which fails the whole handshake on an inconsistent "
             "fragment header: one spoofed datagram ends a session")
class UncheckedFramingEndpoint(DtlsEndpoint):
    """Hands every datagram to OpenSSL as it came: no check of record lengths or fragment headers."""

    def receive_datagram(self, data: bytes, now: float) -> None:
        with mock.patch.object(dtls, "_well_framed", lambda _data: True):
            super().receive_datagram(data, now)


@variant("ignores-close-notify", checks=("DTLS-10",),
         why="close_notify closes the DTLS association but not the session: its SRTP keeps flowing")
@before_free
def ignores_close_notify(_core: ServerCore, _session: Session, reason: str) -> bool:
    return reason != "dtls_closed"


ClientNotAuthenticated = variant(
    "client-not-authenticated", checks=("DTLS-11", "DTLS-02"),
    why="the server never asks for a client certificate (no CertificateRequest), so it never verifies one against "
        "the offer's fingerprint",
)(dtls_core(verify_peer=False))

AllowsRenegotiation = variant(
    "allows-renegotiation", checks=("DTLS-08",),
    why="client-initiated renegotiation is allowed (RFC 8842 §4 forbids it): a renegotiation can change the peer's "
        "certificate under an established session",
)(dtls_core(options=allowing_renegotiation))


# -- the same bugs in a server that answers a=setup:active (it is the DTLS client) ---------------


variant("client-keeps-going-without-use-srtp", checks=("DTLS-03",), dtls_role="client",
        why="as DTLS client, a ServerHello without use_srtp does not end the handshake: it completes with no alert "
            "and SRTP is keyed with a default profile")(DefaultProfileEndpoint)
variant("client-never-retransmits", checks=("DTLS-04",), dtls_role="client",
        why="as DTLS client, never retransmits a flight: a lost ClientHello stalls the handshake for good",
        )(SendOnceEndpoint)
variant("client-accepts-hello-request", checks=("DTLS-08",), dtls_role="client",
        why="as DTLS client, answers the server's HelloRequest with a new handshake (RFC 8842 §4 forbids "
            "renegotiation)")(AllowsRenegotiation)
variant("server-not-authenticated", checks=("DTLS-02",), dtls_role="client",
        why="as DTLS client, never verifies the server's certificate against the offer's a=fingerprint: anyone "
            "may answer for the server")(ClientNotAuthenticated)


# -- bugs around the session's life: media without keys, a refusal or a close that ends too much or too little --


@variant("plain-rtp-when-dtls-fails", checks=("DTLS-12",),
         why="when the DTLS-SRTP handshake fails (no common SRTP profile) the session falls back to plain RTP and "
             "sends its greeting unprotected")
@before_free
def plain_rtp_when_dtls_fails(core: ServerCore, session: Session, reason: str) -> bool:
    destination = core._destination(session) if reason == "dtls_failed" else None
    if destination is not None:
        for sequence in range(3):
            header = struct.pack("!BBHII", 0x80, 0, sequence, 160 * sequence, 0x5EED)
            core._send(header + bytes(160), destination, "rtp")
    return True


@variant("renegotiation-attempt-ends-session", checks=("DTLS-13",),
         why="refuses a renegotiation by ending the whole session: a client's rekeying attempt hangs up the call")
@ends_session_when("_receive_dtls", "renegotiation_refused", close_notify=True)
def renegotiation_attempt(datagram: Datagram) -> bool:
    return datagram.session.srtp is not None and is_encrypted_handshake(datagram.data)


@variant("ice-outlives-close-notify", checks=("DTLS-14",),
         why="close_notify ends the session's DTLS and SRTP but not its ICE state: its credentials keep being "
             "answered and the session is never freed")
@before_free
def ice_outlives_close_notify(_core: ServerCore, session: Session, reason: str) -> bool:
    if reason != "dtls_closed":
        return True
    session.srtp = None
    back_before_dtls(session)
    return False
