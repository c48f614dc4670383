"""A sans-IO DTLS 1.2 endpoint for DTLS-SRTP (RFC 5764, RFC 5763, RFC 8842), on pyOpenSSL.

OpenSSL runs over memory BIOs: datagrams go in through `receive_datagram`, records come out
through `datagrams_to_send`, and results come out as events from `next_event`. Peers are
authenticated the WebRTC way: the certificate must be present and its fingerprint must equal
one of the SDP a=fingerprint values (RFC 8122); CA chains play no part.

Time is passed in, with one known exception: OpenSSL's retransmit timer reads the real clock.
`get_timer` reports it on the caller's clock, and `handle_timer` only retransmits once
OpenSSL's own clock agrees that the timeout has passed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from OpenSSL import SSL, crypto

from .certificate import FINGERPRINT_ALGORITHMS, Certificate, fingerprint_of_der
from .srtp import PROFILES

SRTP_PROFILES = ("SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80")

_DTLS_1_2 = 0xFEFD
# ECDHE-ECDSA AEAD suites first (our certificate is ECDSA); the RSA and CBC suites let the
# client role talk to peers with other certificates.
_CIPHERS = b":".join(
    [
        b"ECDHE-ECDSA-AES128-GCM-SHA256",
        b"ECDHE-ECDSA-AES256-GCM-SHA384",
        b"ECDHE-ECDSA-CHACHA20-POLY1305",
        b"ECDHE-RSA-AES128-GCM-SHA256",
        b"ECDHE-RSA-AES256-GCM-SHA384",
        b"ECDHE-RSA-CHACHA20-POLY1305",
        b"ECDHE-ECDSA-AES128-SHA",
        b"ECDHE-ECDSA-AES256-SHA",
        b"ECDHE-RSA-AES128-SHA",
        b"ECDHE-RSA-AES256-SHA",
    ]
)
_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2
_RECORD_HEADER_LENGTH = 13  # RFC 6347 §4.1: type, version, epoch, sequence number, length
_RECORD_CONTENT_TYPES = range(20, 24)  # change_cipher_spec, alert, handshake, application_data
_MAX_RECORD_PAYLOAD = 16384 + 2048  # RFC 6347 §4.1 / RFC 5246 §6.2.3: TLSCiphertext limit
_HANDSHAKE = 22
_FRAGMENT_HEADER_LENGTH = 12  # RFC 6347 §4.2.2: type, length, message_seq, fragment_offset, fragment_length
_MAX_HANDSHAKE_MESSAGE = 1 << 16  # WebRTC certificate chains are a few kB; a 16 MiB claim is an attack
_MIN_MTU = 256  # OpenSSL ignores a smaller MTU on a memory BIO


class DtlsError(Exception):
    """Misuse of a DTLS context or endpoint (bad arguments, sending before the handshake)."""


class DtlsState(StrEnum):
    """Where a DtlsEndpoint is: NEW → HANDSHAKING → CONNECTED → CLOSED, or FAILED if the handshake
    fails. A StrEnum: a state prints, and compares equal to, its old string ("connected")."""

    NEW = "new"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    CLOSED = "closed"  # close_notify sent or received, or the connection failed after the handshake
    FAILED = "failed"  # the handshake failed


_RUNNING = (DtlsState.HANDSHAKING, DtlsState.CONNECTED)
"""The states in which OpenSSL reads records and runs its retransmit timer."""


@dataclass(slots=True)
class HandshakeCompleted:
    srtp_profile: str
    keying_material: bytes
    cipher: str
    version: str


@dataclass(slots=True)
class ApplicationData:
    data: bytes


@dataclass(slots=True)
class Closed:
    reason: str


@dataclass(slots=True)
class HandshakeFailed:
    reason: str


DtlsEvent = HandshakeCompleted | ApplicationData | Closed | HandshakeFailed


class DtlsContext:
    """Shared per server (SSL_CTX creation is expensive): certificate, cipher list, use_srtp,
    verify callback, key log."""

    def __init__(
        self,
        certificate: Certificate,
        *,
        keylog: Callable[[bytes], None] | None = None,
        srtp_profiles: Sequence[str] = SRTP_PROFILES,
    ) -> None:
        unknown = [name for name in srtp_profiles if name not in SRTP_PROFILES]
        if unknown or not srtp_profiles:
            raise DtlsError(
                f"srtp_profiles must be a non-empty selection of {', '.join(SRTP_PROFILES)}; "
                f"got {', '.join(srtp_profiles) or 'nothing'}"
            )
        self.certificate = certificate
        self.srtp_profiles = tuple(srtp_profiles)
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_min_proto_version(_DTLS_1_2)
        context.set_max_proto_version(_DTLS_1_2)
        context.set_options(
            SSL.OP_NO_RENEGOTIATION
            | SSL.OP_NO_QUERY_MTU  # keep the MTU we set; a memory BIO has none to query
            | SSL.OP_CIPHER_SERVER_PREFERENCE
            | SSL.OP_NO_TICKET
        )
        context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        context.set_cipher_list(_CIPHERS)
        context.set_tlsext_use_srtp(":".join(self.srtp_profiles).encode())
        context.use_certificate(certificate.x509)
        context.use_privatekey(certificate.private_key)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_peer)
        if keylog is not None:
            context.set_keylog_callback(lambda _connection, line: keylog(line))
        self._ssl_context = context


class _PeerCheck:
    """What the verify callback needs for one connection, and why it refused, if it did."""

    def __init__(
        self, fingerprints: list[tuple[str, str]], srtp_profiles: Sequence[str], is_server: bool
    ) -> None:
        self.fingerprints = fingerprints
        self.srtp_profiles = srtp_profiles
        self.peer = "client certificate" if is_server else "server certificate"
        self.sdp = "the offer's" if is_server else "the answer's"
        self.failure: str | None = None

    def accept(self, connection: SSL.Connection, der: bytes) -> bool:
        """Refusing makes OpenSSL fail the handshake with a fatal alert; for a self-signed
        certificate that alert is unknown_ca, because the chain status is what OpenSSL reports."""
        if not any(fingerprint_of_der(der, name) == value for name, value in self.fingerprints):
            self.failure = f"{self.peer} fingerprint does not match {self.sdp} a=fingerprint"
            return False
        # OpenSSL completes a handshake without use_srtp when nothing matches; the peer's
        # certificate arrives after the profile is settled, so refuse here.
        if not connection.get_selected_srtp_profile():
            self.failure = (
                "no common SRTP protection profile "
                f"(this side accepts {', '.join(self.srtp_profiles)})"
            )
            return False
        return True


def _verify_peer(
    connection: SSL.Connection, certificate: crypto.X509, _error: int, depth: int, _ok: int
) -> bool:
    """Accept any chain (WebRTC certificates are self-signed); judge only the leaf.

    The DER comes from OpenSSL itself: re-parsing with cryptography could raise on a
    certificate OpenSSL accepted, and pyOpenSSL would re-raise that out of the handshake.
    """
    if depth > 0:
        return True
    check: _PeerCheck = connection.get_app_data()
    return check.accept(connection, crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate))


class DtlsEndpoint:
    """One DTLS association: handshake, SRTP keying material, then application data.

    Its `state` is a DtlsState.
    """

    def __init__(
        self,
        context: DtlsContext,
        remote_fingerprints: Sequence[tuple[str, str]],
        *,
        is_server: bool = True,
        mtu: int = 1200,
    ) -> None:
        fingerprints = [
            (algorithm.lower(), value.upper())
            for algorithm, value in remote_fingerprints
            if algorithm.lower() in FINGERPRINT_ALGORITHMS
        ]
        if not fingerprints:
            raise DtlsError(
                "remote_fingerprints has no entry with a supported hash algorithm "
                f"({', '.join(FINGERPRINT_ALGORITHMS)})"
            )
        if mtu < _MIN_MTU:
            raise DtlsError(f"mtu of {mtu} bytes is below OpenSSL's DTLS minimum of {_MIN_MTU}")
        self.is_server = is_server
        self.mtu = mtu
        self.state = DtlsState.NEW
        self.dropped = 0
        self._now = 0.0
        self._events: deque[DtlsEvent] = deque()
        self._peer_check = _PeerCheck(fingerprints, context.srtp_profiles, is_server)
        self._connection = SSL.Connection(context._ssl_context, None)
        self._connection.set_app_data(self._peer_check)
        if is_server:
            self._connection.set_accept_state()
        else:
            self._connection.set_connect_state()
        self._connection.set_ciphertext_mtu(mtu)

    def start(self, now: float) -> None:
        """Client role: send the ClientHello."""
        if self.is_server:
            raise DtlsError("start() is for the client role; a server waits for the ClientHello")
        if self.state is not DtlsState.NEW:
            raise DtlsError(f"start() called in state {self.state.value!r}")
        self._now = now
        self.state = DtlsState.HANDSHAKING
        self._advance_handshake()

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Feed one UDP datagram. Never raises: bad input is dropped or fails the handshake."""
        self._now = now
        expecting = self.state in _RUNNING or (self.state is DtlsState.NEW and self.is_server)
        if not expecting or not _well_framed(data):
            self.dropped += 1
            return
        if self.state is DtlsState.NEW:
            self.state = DtlsState.HANDSHAKING
        self._connection.bio_write(data)
        if self.state is DtlsState.HANDSHAKING:
            self._advance_handshake()
        if self.state is DtlsState.CONNECTED:
            self._read_application_data()

    def handle_timer(self, now: float) -> None:
        """Retransmit the last flight if OpenSSL's (real-clock) timer has expired."""
        self._now = now
        if self.state not in _RUNNING:
            return
        try:
            self._connection.DTLSv1_handle_timeout()
        except SSL.Error as error:
            self._fail(_describe(error))

    def get_timer(self) -> float | None:
        """When to call `handle_timer`, on the caller's clock: the time of the last input plus
        OpenSSL's remaining retransmit timeout. OpenSSL measures that timeout on the real
        clock, so on a fake clock `handle_timer` at this time retransmits only if that much
        real time has passed too."""
        if self.state not in _RUNNING:
            return None
        timeout = self._connection.DTLSv1_get_timeout()
        if timeout is None:
            return None
        return self._now + timeout

    def datagrams_to_send(self) -> list[bytes]:
        """Pending records, packed into datagrams of at most `mtu` bytes.

        A memory BIO hands back a whole flight in one read, so records are split on their
        headers and re-packed here.
        """
        pending = bytearray()
        while True:
            try:
                pending += self._connection.bio_read(65536)
            except SSL.WantReadError:
                break
        datagrams: list[bytes] = []
        current = bytearray()
        offset = 0
        while offset < len(pending):
            length = int.from_bytes(pending[offset + 11 : offset + 13], "big")
            record = pending[offset : offset + _RECORD_HEADER_LENGTH + length]
            offset += len(record)
            if current and len(current) + len(record) > self.mtu:
                datagrams.append(bytes(current))
                current = bytearray()
            current += record
        if current:
            datagrams.append(bytes(current))
        return datagrams

    def next_event(self) -> DtlsEvent | None:
        return self._events.popleft() if self._events else None

    def send(self, data: bytes) -> None:
        """Send application data (SCTP) in one record that fits the MTU; empty data sends nothing."""
        if self.state is not DtlsState.CONNECTED:
            raise DtlsError(f"cannot send application data in state {self.state.value!r}")
        limit = self._connection.get_cleartext_mtu()
        if len(data) > limit:
            raise DtlsError(
                f"application data of {len(data)} bytes exceeds the {limit} bytes "
                f"that fit one record in a {self.mtu}-byte datagram"
            )
        if data:
            self._connection.send(data)

    def close(self, now: float) -> None:
        """Send close_notify (if connected) and stop; a no-op once closed or failed."""
        self._now = now
        if self.state in (DtlsState.CLOSED, DtlsState.FAILED):
            return
        if self.state is DtlsState.CONNECTED:
            self._connection.shutdown()
        self._close("closed locally")

    def _advance_handshake(self) -> None:
        try:
            self._connection.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as error:
            self._fail(self._peer_check.failure or _describe(error))
            return
        profile = self._connection.get_selected_srtp_profile().decode()
        key_length, salt_length = PROFILES[profile]
        material = self._connection.export_keying_material(
            _EXPORTER_LABEL, 2 * (key_length + salt_length)
        )
        self.state = DtlsState.CONNECTED
        self._events.append(
            HandshakeCompleted(
                srtp_profile=profile,
                keying_material=material,
                cipher=self._connection.get_cipher_name() or "",
                version=self._connection.get_protocol_version_name(),
            )
        )

    def _read_application_data(self) -> None:
        while True:
            try:
                data = self._connection.recv(_MAX_RECORD_PAYLOAD)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                self._connection.shutdown()  # answer with our own close_notify
                self._close("close_notify received")
                return
            except SSL.Error as error:
                self._close(f"connection failed: {_describe(error)}")
                return
            self._events.append(ApplicationData(data))

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self._events.append(HandshakeFailed(reason))

    def _close(self, reason: str) -> None:
        self.state = DtlsState.CLOSED
        self._events.append(Closed(reason))


def _well_framed(data: bytes) -> bool:
    """Whether a datagram is a whole number of plausible DTLS records (RFC 6347 §4.1), whose
    plaintext handshake fragments are consistent (§4.2.2).

    Invalid records SHOULD be silently discarded (§4.1.2.7). OpenSSL discards bad framing by
    itself, but an inconsistent handshake fragment makes it fail the whole handshake: from a
    spoofed source address, one datagram would end someone else's session. Checking first
    drops it instead, and lets the endpoint count the drop.
    """
    if not data:
        return False
    offset = 0
    while offset < len(data):
        header = data[offset : offset + _RECORD_HEADER_LENGTH]
        if len(header) < _RECORD_HEADER_LENGTH:
            return False
        if header[0] not in _RECORD_CONTENT_TYPES or header[1] != 0xFE:
            return False
        body_start = offset + _RECORD_HEADER_LENGTH
        offset = body_start + int.from_bytes(header[11:13], "big")
        if offset > len(data):
            return False
        if header[0] == _HANDSHAKE and header[3:5] == b"\0\0" and not _fragments_consistent(data[body_start:offset]):
            return False
    return True


def _fragments_consistent(body: bytes) -> bool:
    """Each fragment header (type, length, message_seq, offset, fragment length) describes a
    non-empty piece of a message of sane size that lies inside that message and this record."""
    position = 0
    while position < len(body):
        if len(body) - position < _FRAGMENT_HEADER_LENGTH:
            return False
        length = int.from_bytes(body[position + 1 : position + 4], "big")
        fragment_offset = int.from_bytes(body[position + 6 : position + 9], "big")
        fragment_length = int.from_bytes(body[position + 9 : position + 12], "big")
        position += _FRAGMENT_HEADER_LENGTH + fragment_length
        if (length > _MAX_HANDSHAKE_MESSAGE or fragment_offset + fragment_length > length
                or (fragment_length == 0 and length != 0) or position > len(body)):
            return False
    return True


def _describe(error: SSL.Error) -> str:
    """OpenSSL's reason strings from a pyOpenSSL error, e.g. "sslv3 alert handshake failure"."""
    details = error.args[0] if error.args else None
    if isinstance(details, list) and details:
        return "; ".join(reason for _library, _function, reason in details)
    return " ".join(str(arg) for arg in error.args) or type(error).__name__
