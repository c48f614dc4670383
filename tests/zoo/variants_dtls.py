"""DTLS variants: handshakes that accept too much, give up too soon, or reset."""

from __future__ import annotations

import struct

from OpenSSL import SSL

from reference_server import dtls
from reference_server.certificate import fingerprint_of_der
from reference_server.core import ServerCore
from reference_server.dtls import DtlsContext, DtlsEndpoint, DtlsState, HandshakeCompleted
from reference_server.events import Address
from reference_server.sessions import Session
from reference_server.srtp import PROFILES
from tests.zoo import variant
from tests.zoo.seams import DTLS_SRTP_EXPORTER_LABEL, DtlsEndpointCore, back_before_dtls, fresh_dtls_endpoint

DEFAULT_SRTP_PROFILE = "SRTP_AES128_CM_SHA1_80"


def is_client_hello(data: bytes) -> bool:
    """A plaintext (epoch 0) handshake record whose first message is a ClientHello."""
    return len(data) > 13 and data[0] == 22 and data[3:5] == b"\0\0" and data[13] == 1


# -- peer checks and endpoints the variants are built from ----------------------------------------


class FingerprintOnlyCheck(dtls._PeerCheck):
    """Compares the client certificate with a=fingerprint, and never asks whether use_srtp agreed."""

    def accept(self, connection: SSL.Connection, der: bytes) -> bool:
        if not any(fingerprint_of_der(der, name) == value for name, value in self.fingerprints):
            self.failure = f"{self.peer} fingerprint does not match {self.sdp} a=fingerprint"
            return False
        return True


class AnyCertificateCheck(dtls._PeerCheck):
    """Takes any client certificate (so long as use_srtp agreed)."""

    def accept(self, connection: SSL.Connection, der: bytes) -> bool:
        return bool(connection.get_selected_srtp_profile())


class PeerCheckEndpoint(DtlsEndpoint):
    peer_check_class: type[dtls._PeerCheck] = dtls._PeerCheck

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        old = self._peer_check
        self._peer_check = self.peer_check_class(old.fingerprints, old.srtp_profiles, self.is_server)
        self._connection.set_app_data(self._peer_check)


class AnyCertificateEndpoint(PeerCheckEndpoint):
    peer_check_class = AnyCertificateCheck


class DefaultProfileEndpoint(PeerCheckEndpoint):
    """Completes a handshake in which use_srtp agreed on nothing, and keys SRTP with a default profile."""

    peer_check_class = FingerprintOnlyCheck

    def _advance_handshake(self) -> None:
        try:
            self._connection.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as error:
            self._fail(self._peer_check.failure or dtls._describe(error))
            return
        profile = (self._connection.get_selected_srtp_profile() or DEFAULT_SRTP_PROFILE.encode()).decode()
        key_length, salt_length = PROFILES[profile]
        material = self._connection.export_keying_material(DTLS_SRTP_EXPORTER_LABEL, 2 * (key_length + salt_length))
        self.state = DtlsState.CONNECTED
        self._events.append(HandshakeCompleted(srtp_profile=profile, keying_material=material,
                                               cipher=self._connection.get_cipher_name() or "",
                                               version=self._connection.get_protocol_version_name()))


class ContextWithoutUseSrtp(DtlsContext):
    """The reference context, less the use_srtp extension (pyOpenSSL cannot take it back: rebuilt)."""

    def __init__(self, certificate, *, keylog=None) -> None:
        super().__init__(certificate, keylog=keylog)
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_min_proto_version(dtls._DTLS_1_2)
        context.set_max_proto_version(dtls._DTLS_1_2)
        context.set_options(SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_QUERY_MTU | SSL.OP_CIPHER_SERVER_PREFERENCE
                            | SSL.OP_NO_TICKET)
        context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        context.set_cipher_list(dtls._CIPHERS)
        context.use_certificate(certificate.x509)
        context.use_privatekey(certificate.private_key)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, dtls._verify_peer)
        if keylog is not None:
            context.set_keylog_callback(lambda _connection, line: keylog(line))
        self._ssl_context = context


OP_ALLOW_CLIENT_RENEGOTIATION = 1 << 8  # OpenSSL 3+ (pyOpenSSL exposes no name for it)


class RenegotiatingContext(DtlsContext):
    """The reference context, rebuilt without OP_NO_RENEGOTIATION and with client-initiated
    renegotiation allowed."""

    def __init__(self, certificate, *, keylog=None) -> None:
        super().__init__(certificate, keylog=keylog)
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_min_proto_version(dtls._DTLS_1_2)
        context.set_max_proto_version(dtls._DTLS_1_2)
        context.set_options(OP_ALLOW_CLIENT_RENEGOTIATION | SSL.OP_NO_QUERY_MTU | SSL.OP_CIPHER_SERVER_PREFERENCE
                            | SSL.OP_NO_TICKET)
        context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        context.set_cipher_list(dtls._CIPHERS)
        context.set_tlsext_use_srtp(":".join(self.srtp_profiles).encode())
        context.use_certificate(certificate.x509)
        context.use_privatekey(certificate.private_key)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, dtls._verify_peer)
        self._ssl_context = context


# -- the variants -------------------------------------------------------------------------------


@variant("no-use-srtp", checks=("DTLS-01",),
         why="the DTLS context never offers use_srtp; SRTP is keyed with a default profile nobody negotiated")
class NoUseSrtp(DtlsEndpointCore):
    dtls_endpoint_class = DefaultProfileEndpoint

    def __init__(self, config, certificate, **kwargs) -> None:
        super().__init__(config, certificate, **kwargs)
        self._dtls_context = ContextWithoutUseSrtp(certificate, keylog=kwargs.get("keylog"))


@variant("any-client-certificate", checks=("DTLS-02",),
         why="the client certificate is never compared with the offer's a=fingerprint: anyone may answer for "
             "the client")
class AnyClientCertificate(DtlsEndpointCore):
    dtls_endpoint_class = AnyCertificateEndpoint


@variant("answer-fingerprint-wrong", checks=("DTLS-02",),
         why="the answer's a=fingerprint is not the fingerprint of the certificate the server presents")
class AnswerFingerprintWrong(ServerCore):
    def create_session(self, offer_sdp: str, now: float) -> tuple[str, str]:
        session_id, answer = super().create_session(offer_sdp, now)
        wrong = f"{int(self.fingerprint[:2], 16) ^ 0xFF:02X}{self.fingerprint[2:]}"
        return session_id, answer.replace(f"sha-256 {self.fingerprint}", f"sha-256 {wrong}")


@variant("handshake-without-common-profile", checks=("DTLS-03",),
         why="when use_srtp finds no common profile the handshake still completes (OpenSSL's default), with no "
             "alert, and SRTP is keyed with a default profile")
class HandshakeWithoutCommonProfile(DtlsEndpointCore):
    dtls_endpoint_class = DefaultProfileEndpoint


class SendOnceEndpoint(DtlsEndpoint):
    """Sends each handshake flight once: no retransmission timer, and OpenSSL's resends (it also
    resends when it sees the peer retransmit) are dropped."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sent: set[tuple[int, bytes, bytes]] = set()

    def get_timer(self) -> float | None:
        return None

    def datagrams_to_send(self) -> list[bytes]:
        datagrams = []
        for datagram in super().datagrams_to_send():
            kept, offset = [], 0
            while offset + 13 <= len(datagram):
                end = offset + 13 + int.from_bytes(datagram[offset + 11: offset + 13], "big")
                record = datagram[offset:end]
                plain_handshake = record[0] == 22 and record[3:5] == b"\0\0"
                key = (record[0], record[3:5], record[13:14] + record[17:22] if plain_handshake else b"")
                if key not in self._sent or record[0] == 23:  # application data is not a flight
                    self._sent.add(key)
                    kept.append(record)
                offset = end
            if kept:
                datagrams.append(b"".join(kept))
        return datagrams


@variant("no-dtls-retransmission", checks=("DTLS-04",),
         why="never retransmits a handshake flight (no timer, no resend when the client retransmits): one lost "
             "flight stalls the handshake")
class NoDtlsRetransmission(DtlsEndpointCore):
    dtls_endpoint_class = SendOnceEndpoint


class WholeMessagesEndpoint(DtlsEndpoint):
    """Drops a datagram holding a fragment of a handshake message instead of reassembling it."""

    def receive_datagram(self, data: bytes, now: float) -> None:
        offset = 0
        while offset + 13 <= len(data):
            end = offset + 13 + int.from_bytes(data[offset + 11: offset + 13], "big")
            if data[offset] == 22 and data[offset + 3: offset + 5] == b"\0\0" and end - offset >= 25:
                length = data[offset + 14: offset + 17]
                fragment_offset = data[offset + 19: offset + 22]
                fragment_length = data[offset + 22: offset + 25]
                if fragment_offset != b"\0\0\0" or fragment_length != length:
                    self.dropped += 1
                    return
            offset = end
        super().receive_datagram(data, now)


@variant("no-fragment-reassembly", checks=("DTLS-05",),
         why="handshake messages split into fragments are dropped, never reassembled")
class NoFragmentReassembly(DtlsEndpointCore):
    dtls_endpoint_class = WholeMessagesEndpoint


@variant("early-records-end-session", checks=("DTLS-06",),
         why="a DTLS record other than a ClientHello before the handshake (an early ChangeCipherSpec) is a "
             "fatal protocol error that ends the session")
class EarlyRecordsEndSession(ServerCore):
    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is not None and session.dtls.state is DtlsState.NEW and not is_client_hello(data):
            self._free(session, "dtls_failed")
            return
        super()._receive_dtls(data, address, now)


@variant("client-hello-resets-session", checks=("DTLS-07",),
         why="a new ClientHello on a connected 5-tuple starts a new DTLS association, dropping the SRTP keys "
             "in use")
class ClientHelloResetsSession(ServerCore):
    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is not None and session.dtls.state is DtlsState.CONNECTED and is_client_hello(data):
            session.dtls = fresh_dtls_endpoint(self, session)
            session.srtp = None
            back_before_dtls(session)
        super()._receive_dtls(data, address, now)


class UncheckedFramingEndpoint(DtlsEndpoint):
    """Hands every datagram to OpenSSL as it came: no check of record lengths or fragment headers."""

    def receive_datagram(self, data: bytes, now: float) -> None:
        self._now = now
        if self.state not in (DtlsState.NEW, DtlsState.HANDSHAKING, DtlsState.CONNECTED):
            self.dropped += 1
            return
        if self.state is DtlsState.NEW:
            self.state = DtlsState.HANDSHAKING
        self._connection.bio_write(data)
        if self.state is DtlsState.HANDSHAKING:
            self._advance_handshake()
        if self.state is DtlsState.CONNECTED:
            self._read_application_data()


@variant("no-record-framing-check", checks=("DTLS-09",),
         why="malformed records go straight to OpenSSL, which fails the whole handshake on an inconsistent "
             "fragment header: one spoofed datagram ends a session")
class NoRecordFramingCheck(DtlsEndpointCore):
    dtls_endpoint_class = UncheckedFramingEndpoint


@variant("ignores-close-notify", checks=("DTLS-10",),
         why="close_notify closes the DTLS association but not the session: its SRTP keeps flowing")
class IgnoresCloseNotify(ServerCore):
    def _free(self, session: Session, reason: str) -> None:
        if reason != "dtls_closed":
            super()._free(session, reason)


@variant("client-not-authenticated", checks=("DTLS-11", "DTLS-02"),
         why="the server never asks for a client certificate (no CertificateRequest), so it never verifies one "
             "against the offer's fingerprint")
class ClientNotAuthenticated(ServerCore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._dtls_context._ssl_context.set_verify(SSL.VERIFY_NONE)


@variant("allows-renegotiation", checks=("DTLS-08",),
         why="client-initiated renegotiation is allowed (RFC 8842 §4 forbids it): a renegotiation can change the "
             "peer's certificate under an established session")
class AllowsRenegotiation(ServerCore):
    def __init__(self, config, certificate, **kwargs) -> None:
        super().__init__(config, certificate, **kwargs)
        self._dtls_context = RenegotiatingContext(certificate, keylog=kwargs.get("keylog"))


# -- the same bugs in a server that answers a=setup:active (it is the DTLS client) ---------------


@variant("client-keeps-going-without-use-srtp", checks=("DTLS-03",), dtls_role="client",
         why="as DTLS client, a ServerHello without use_srtp does not end the handshake: it completes with no alert "
             "and SRTP is keyed with a default profile")
class ClientKeepsGoingWithoutUseSrtp(HandshakeWithoutCommonProfile):
    pass


@variant("client-never-retransmits", checks=("DTLS-04",), dtls_role="client",
         why="as DTLS client, never retransmits a flight: a lost ClientHello stalls the handshake for good")
class ClientNeverRetransmits(NoDtlsRetransmission):
    pass


@variant("client-accepts-hello-request", checks=("DTLS-08",), dtls_role="client",
         why="as DTLS client, answers the server's HelloRequest with a new handshake (RFC 8842 §4 forbids "
             "renegotiation)")
class ClientAcceptsHelloRequest(AllowsRenegotiation):
    pass


@variant("server-not-authenticated", checks=("DTLS-02",), dtls_role="client",
         why="as DTLS client, never verifies the server's certificate against the offer's a=fingerprint: anyone "
             "may answer for the server")
class ServerNotAuthenticated(ClientNotAuthenticated):
    pass


# -- bugs around the session's life: media without keys, a refusal or a close that ends too much or too little --


@variant("plain-rtp-when-dtls-fails", checks=("DTLS-12",),
         why="when the DTLS-SRTP handshake fails (no common SRTP profile) the session falls back to plain RTP and "
             "sends its greeting unprotected")
class PlainRtpWhenDtlsFails(ServerCore):
    def _free(self, session: Session, reason: str) -> None:
        destination = self._destination(session) if reason == "dtls_failed" else None
        if destination is not None:
            for sequence in range(3):
                header = struct.pack("!BBHII", 0x80, 0, sequence, 160 * sequence, 0x5EED)
                self._send(header + bytes(160), destination, "rtp")
        super()._free(session, reason)


def is_encrypted_handshake(data: bytes) -> bool:
    """A handshake record of epoch 1 or later: after the handshake, only a renegotiation sends one."""
    return len(data) > 13 and data[0] == 22 and data[3:5] != b"\0\0"


@variant("renegotiation-attempt-ends-session", checks=("DTLS-13",),
         why="refuses a renegotiation by ending the whole session: a client's rekeying attempt hangs up the call")
class RenegotiationAttemptEndsSession(ServerCore):
    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is not None and session.srtp is not None and is_encrypted_handshake(data):
            session.dtls.close(now)
            self._flush_dtls(session)
            self._free(session, "renegotiation_refused")
            return
        super()._receive_dtls(data, address, now)


@variant("ice-outlives-close-notify", checks=("DTLS-14",),
         why="close_notify ends the session's DTLS and SRTP but not its ICE state: its credentials keep being "
             "answered and the session is never freed")
class IceOutlivesCloseNotify(ServerCore):
    def _free(self, session: Session, reason: str) -> None:
        if reason == "dtls_closed":
            session.srtp = None
            back_before_dtls(session)
            return
        super()._free(session, reason)
