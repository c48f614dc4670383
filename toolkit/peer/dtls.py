"""The probe peer's DTLS 1.2 endpoint for DTLS-SRTP (RFC 5764, RFC 5763, RFC 8842), on pyOpenSSL.

Sans-IO: OpenSSL runs over memory BIOs. Records come in through `receive`, time through
`handle_timer(now)`; datagrams go out through `datagrams_to_send()` (whole records, packed up to
the MTU) and results through `next_event()`. The target is authenticated the WebRTC way: its
certificate must match one of the answer's a=fingerprint values (RFC 8122 §5); CA chains play
no part. Its `state` is a DtlsState.

Known exception to the fake clock: OpenSSL's retransmission timer reads the real clock.
`get_timer()` surfaces it, but on a fake clock a lost flight is only resent once that much real
time has passed.

The peer's own endpoint, not the reference server's (docs/architecture.md principle 3): the two
are written separately so that a bug in one cannot hide the same bug in the other.
"""

from __future__ import annotations

import datetime
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from toolkit.peer.events import DtlsClosed, DtlsData
from toolkit.peer.offer import PeerError
from toolkit.peer.srtp import SRTP_PROFILES

DTLS_HANDSHAKE_TIMEOUT = 10.0
DTLS_MTU = 1200
"""Largest DTLS datagram the peer sends; flights are split into datagrams no larger."""
DTLS_SRTP_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"
FINGERPRINT_HASHES = {
    "sha-1": hashes.SHA1,
    "sha-224": hashes.SHA224,
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}
"""The a=fingerprint hash functions the peer can verify a certificate against (RFC 8122 §5)."""

_RECORD_HEADER_LENGTH = 13  # RFC 6347 §4.1: type, version, epoch, sequence number, length
_READ_SIZE = 65536


class DtlsState(StrEnum):
    """Where the endpoint is: NEW → HANDSHAKING → CONNECTED → CLOSED, or FAILED when the handshake
    fails. A StrEnum: a state prints as, and compares equal to, its name in lower case."""

    NEW = "new"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    CLOSED = "closed"  # close_notify received, or close() called
    FAILED = "failed"  # the handshake failed, ran out of time, or negotiated no SRTP profile


@dataclass(slots=True)
class HandshakeCompleted:
    srtp_profile: str
    keying_material: bytes
    """The exporter output SRTP is keyed from (RFC 5764 §4.2)."""
    cipher: str


@dataclass(slots=True)
class HandshakeFailed:
    reason: str


DtlsEvent = HandshakeCompleted | DtlsData | DtlsClosed | HandshakeFailed


def self_signed_certificate(rng: random.Random) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """ECDSA P-256 like browsers use; fixed validity, since WebRTC peers trust by fingerprint.
    The serial number is the one draw from `rng`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rtcgate-probe")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(rng.getrandbits(63) + 1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2099, 12, 31, tzinfo=datetime.UTC))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def sha256_fingerprint(certificate: x509.Certificate) -> str:
    """The a=fingerprint value of a certificate: SHA-256, upper-case hex pairs joined by colons."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


class DtlsEndpoint:
    """One DTLS association of the peer, in the role the answer gave it ("client" or "server").

    The target's certificate must match one of `remote_fingerprints` (computed with
    `fingerprint_algorithm`); as server, the endpoint also refuses a client that offered none of
    `srtp_profiles`. Drops (records that fail after the handshake, a failed shutdown) are counted
    in the shared `drops`; `keylog` gets every SSLKEYLOGFILE line.
    """

    def __init__(
        self,
        *,
        role: str,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        srtp_profiles: Sequence[str],
        fingerprint_algorithm: str,
        remote_fingerprints: Sequence[str],
        keylog: Callable[[bytes], None],
        drops: Counter[str],
    ) -> None:
        self.role = role
        self.srtp_profiles = tuple(srtp_profiles)
        self.fingerprint_algorithm = fingerprint_algorithm
        self.remote_fingerprints = tuple(remote_fingerprints)
        self.state = DtlsState.NEW
        self.renegotiation_refused = False
        """The target answered our renegotiation with a no_renegotiation warning."""
        self._drops = drops
        self._outgoing: list[bytes] = []
        self._events: deque[DtlsEvent] = deque()
        self._started = 0.0
        self._timer_at: float | None = None
        self._verify_failure: str | None = None
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_options(SSL.OP_NO_QUERY_MTU)
        context.use_certificate(certificate)
        context.use_privatekey(key)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify_peer_certificate)
        context.set_tlsext_use_srtp(":".join(self.srtp_profiles).encode())
        context.set_keylog_callback(lambda _connection, line: keylog(line))
        connection = SSL.Connection(context, None)
        if role == "server":
            connection.set_accept_state()  # VERIFY_PEER makes it ask for the client's certificate
        else:
            connection.set_connect_state()
        connection.set_ciphertext_mtu(DTLS_MTU)
        self._connection = connection

    # -- inputs ----------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin the handshake: as client, send the ClientHello; as server, wait for one."""
        self._started = now
        self.state = DtlsState.HANDSHAKING
        self._drive_handshake(now)

    def receive(self, data: bytes, now: float) -> None:
        """One datagram of DTLS records from the target. While handshaking it only moves the
        handshake on; once connected, application data comes out as DtlsData events."""
        self._connection.bio_write(data)
        if self.state is DtlsState.HANDSHAKING:
            self._drive_handshake(now)
            return
        while True:
            try:
                self._events.append(DtlsData(self._connection.recv(_READ_SIZE)))
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self._flush()
                self.state = DtlsState.CLOSED
                self._timer_at = None
                self._events.append(DtlsClosed())
                return
            except SSL.Error as exc:
                if self.renegotiation_pending and "no renegotiation" in openssl_reason(exc):
                    # The target refused with a no_renegotiation warning (RFC 5746 §4.4). OpenSSL
                    # takes that as fatal, but the connection before it stands (SRTP keys
                    # included): drop the fatal alert OpenSSL queued instead of sending it.
                    self.renegotiation_refused = True
                    self._discard_output()
                    return
                self._drops["dtls_record_error"] += 1
                break
        self._flush()

    def handle_timer(self, now: float) -> None:
        """Give up on a handshake older than DTLS_HANDSHAKE_TIMEOUT; resend a lost flight."""
        if self.state is not DtlsState.HANDSHAKING:
            return
        if now - self._started >= DTLS_HANDSHAKE_TIMEOUT:
            self._fail(f"DTLS handshake did not complete within {DTLS_HANDSHAKE_TIMEOUT:.0f} s")
            return
        if self._timer_at is not None and now >= self._timer_at:
            try:
                self._connection.DTLSv1_handle_timeout()
            except SSL.Error as exc:
                self._fail(f"DTLS retransmission failed: {openssl_reason(exc)}")
                return
            self._flush()
            self._arm_timer(now)

    def send(self, data: bytes) -> None:
        """Application data (SCTP) in one record."""
        self._connection.send(data)
        self._flush()

    def renegotiate(self) -> None:
        """Start a renegotiation (RFC 5746): as client an epoch-1 ClientHello, as server a
        HelloRequest. `renegotiation_pending` tells whether it completed."""
        if not self._connection.renegotiate():
            raise PeerError("OpenSSL would not start a renegotiation on this connection")
        try:
            self._connection.do_handshake()
        except SSL.WantReadError:
            pass
        except SSL.Error as exc:
            raise PeerError(f"renegotiation could not start: {openssl_reason(exc)}") from None
        self._flush()

    def close(self) -> None:
        """Send close_notify (while handshaking or connected) and stop."""
        if self.state in (DtlsState.HANDSHAKING, DtlsState.CONNECTED):
            try:
                self._connection.shutdown()
            except SSL.Error:
                self._drops["dtls_shutdown_error"] += 1
            self._flush()
        self.state = DtlsState.CLOSED
        self._timer_at = None

    # -- outputs ---------------------------------------------------------------------------

    @property
    def renegotiation_pending(self) -> bool:
        return self._connection.renegotiate_pending()

    def get_timer(self) -> float | None:
        """While handshaking: the handshake deadline or OpenSSL's retransmission time, whichever
        comes first (the latter on the caller's clock, from OpenSSL's real-clock timeout)."""
        if self.state is not DtlsState.HANDSHAKING:
            return None
        deadline = self._started + DTLS_HANDSHAKE_TIMEOUT
        return deadline if self._timer_at is None else min(deadline, self._timer_at)

    def datagrams_to_send(self) -> list[bytes]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def next_event(self) -> DtlsEvent | None:
        return self._events.popleft() if self._events else None

    # -- inside ----------------------------------------------------------------------------

    def _drive_handshake(self, now: float) -> None:
        try:
            self._connection.do_handshake()
        except SSL.WantReadError:
            self._flush()
            self._arm_timer(now)
            return
        except SSL.Error as exc:
            self._flush()
            self._fail(self._verify_failure or f"DTLS handshake failed: {openssl_reason(exc)}")
            return
        self._flush()
        self._established()

    def _established(self) -> None:
        self._timer_at = None
        name = self._connection.get_selected_srtp_profile().decode()
        if name not in SRTP_PROFILES:
            chose = "the server selected" if self.role == "client" else "the client offered"
            self._fail(f"DTLS: {chose} no SRTP profile (use_srtp gave {name!r})")
            return
        material = self._connection.export_keying_material(
            DTLS_SRTP_EXPORTER_LABEL, SRTP_PROFILES[name].keying_material_length
        )
        self.state = DtlsState.CONNECTED
        self._events.append(HandshakeCompleted(name, material, self._connection.get_cipher_name() or ""))

    def _verify_peer_certificate(
        self, connection: SSL.Connection, certificate, _error: int, depth: int, _ok: int
    ) -> bool:
        """Accept the self-signed leaf only if it matches one of the answer's a=fingerprint values
        with the most preferred hash function the answer uses (RFC 8122 §5)."""
        if depth != 0:
            return True
        algorithm = self.fingerprint_algorithm
        digest = certificate.to_cryptography().fingerprint(FINGERPRINT_HASHES[algorithm]())
        actual = digest.hex(":").upper()
        if actual not in self.remote_fingerprints:
            other = "server" if self.role == "client" else "client"
            self._verify_failure = (
                f"DTLS: {other} certificate {algorithm} fingerprint {actual} does not match "
                f"the answer's {' or '.join(self.remote_fingerprints)}"
            )
            return False
        if self.role == "server" and not connection.get_selected_srtp_profile():
            # OpenSSL's server completes without use_srtp when no profile matches; the client's
            # certificate comes after that choice, so refuse here (RFC 5764 §4.1.1 wants an alert).
            self._verify_failure = (
                f"DTLS: the client offered no SRTP profile of ours ({', '.join(self.srtp_profiles)})"
            )
            return False
        return True

    def _arm_timer(self, now: float) -> None:
        left = self._connection.DTLSv1_get_timeout()
        self._timer_at = None if left is None else now + left

    def _flush(self) -> None:
        """Move what OpenSSL wrote to the outgoing datagrams, whole records per datagram."""
        chunks = []
        while True:
            try:
                chunks.append(self._connection.bio_read(_READ_SIZE))
            except SSL.WantReadError:
                break
        if chunks:
            self._outgoing.extend(records_to_datagrams(b"".join(chunks), DTLS_MTU))

    def _discard_output(self) -> None:
        while True:
            try:
                self._connection.bio_read(_READ_SIZE)
            except SSL.WantReadError:
                return

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self._timer_at = None
        self._events.append(HandshakeFailed(reason))


def records_to_datagrams(data: bytes, mtu: int) -> list[bytes]:
    """Pack whole DTLS records into datagrams of at most `mtu` bytes where they fit.

    A memory BIO hands back a whole flight at once; record boundaries come from each
    record's 13-byte header (length in bytes 11–12).
    """
    datagrams = []
    start = position = 0
    while position < len(data):
        end = position + _RECORD_HEADER_LENGTH + int.from_bytes(data[position + 11 : position + 13], "big")
        if end - start > mtu and position > start:
            datagrams.append(data[start:position])
            start = position
        position = end
    datagrams.append(data[start:])
    return datagrams


def openssl_reason(exc: SSL.Error) -> str:
    """OpenSSL's error queue as 'reason; reason' instead of a list of tuples."""
    errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else None
    if errors:
        return "; ".join(str(entry[-1]) for entry in errors)
    return str(exc) or type(exc).__name__
