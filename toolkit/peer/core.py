"""Sans-IO probe peer: a scriptable WebRTC offerer that drives a server under test.

It is the controlling ICE agent (aggressive nomination, RFC 8445), a DTLS endpoint in either
role and an SRTP endpoint (RFC 5764), built on independent codecs: aioice's STUN, pyOpenSSL's
DTLS, pylibsrtp. Time comes in as `now`; datagrams and events go out through
`datagrams_to_send()` and `next_event()`.

DTLS role (RFC 5763 §5, RFC 8842 §5): the offer says `a=setup:actpass` (or `active`/`passive`
when `dtls_role` forces one) and the answer decides: `passive` makes the peer the DTLS client,
`active` the DTLS server. `dtls_role` is "client" or "server" once `set_answer` has run. As
server, the peer waits for the target's ClientHello once its nominating check is answered;
a ClientHello that overtakes that answer is kept (at most EARLY_DTLS_LIMIT datagrams from an
address being checked) and handled once ICE completes.

Known exception to the fake clock: OpenSSL's DTLS retransmission timer reads the real clock.
`get_timer()` surfaces it, but on a fake clock a lost DTLS flight is only resent once that
much real time has passed.
"""

from __future__ import annotations

import datetime
import random
import string
import struct
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import pylibsrtp
from aioice import stun
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from toolkit.peer.offer import Answer, PeerError, answer_role, build_offer, parse_answer

Address = tuple[str, int]

STUN_RTO = 0.1
"""First retransmission interval of a Binding request (RFC 8489 §6.2.1 suggests 500 ms on
the open Internet; loopback and LAN targets answer in well under 100 ms)."""
STUN_MAX_INTERVAL = 1.6
"""The doubling stops here, so one check gives up after about 6 s instead of 39.5 s."""
STUN_TRANSMISSIONS = 7
"""Rc of RFC 8489 §6.2.1."""
STUN_FINAL_WAIT = 1.6
"""Rm × RTO: how long the last transmission waits for an answer."""
CONSENT_TIMEOUT = 30.0
"""RFC 7675 §5.1: consent is lost after 30 s without an answered check."""
DTLS_HANDSHAKE_TIMEOUT = 10.0
DTLS_MTU = 1200
"""Largest DTLS datagram the peer sends; flights are split into datagrams no larger."""
EARLY_DTLS_LIMIT = 8
"""DTLS datagrams kept, as DTLS server, from addresses being checked before ICE completes."""
DTLS_ROLES = {"auto": "actpass", "client": "active", "server": "passive"}
"""The `dtls_role` option and the a=setup the offer says for it (RFC 8842 §5.2)."""
PRFLX_PRIORITY = (110 << 24) | (65535 << 8) | 255
"""RFC 8445 §5.1.2.1 priority of the peer-reflexive candidate the server will learn."""
DTLS_SRTP_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"

_ICE_CHARS = string.ascii_letters + string.digits
_RTP_HEADER = struct.Struct("!BBHII")
_STUN_ATTRIBUTE_HEADER = struct.Struct("!HH")
_FINGERPRINT_HASHES = {
    "sha-1": hashes.SHA1,
    "sha-224": hashes.SHA224,
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    """A DTLS-SRTP protection profile: its libsrtp id and master key/salt lengths."""

    libsrtp_id: int
    key_length: int
    salt_length: int


SRTP_PROFILES = {
    "SRTP_AES128_CM_SHA1_80": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
    "SRTP_AES128_CM_SHA1_32": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 16, 14),
    "SRTP_AEAD_AES_128_GCM": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    "SRTP_AEAD_AES_256_GCM": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32, 12),
}


@dataclass(slots=True)
class IceCompleted:
    """The nominating check to `remote` was answered; `rtt` counts from its first transmission."""

    remote: Address
    rtt: float


@dataclass(slots=True)
class DtlsConnected:
    srtp_profile: str
    cipher: str
    role: str = "client"
    """The probe peer's DTLS role: "client" or "server"."""


@dataclass(slots=True)
class DtlsData:
    """Application data over DTLS (SCTP, when a data channel is negotiated)."""

    data: bytes


@dataclass(slots=True)
class DtlsClosed:
    """The target sent close_notify."""


@dataclass(slots=True)
class RtpReceived:
    packet: bytes
    """Decrypted RTP."""
    addr: Address


@dataclass(slots=True)
class RtcpReceived:
    packet: bytes
    """Decrypted RTCP."""
    addr: Address


@dataclass(slots=True)
class StunResponse:
    """Every STUN response that arrives, the peer's own checks' and crafted ones' alike."""

    raw: bytes
    addr: Address
    transaction_id: bytes
    is_error: bool
    error_code: int | None


@dataclass(slots=True)
class StunRequestReceived:
    """The server sent a check; a lite server never should (it is answered when authentic)."""

    raw: bytes
    addr: Address
    answered: bool


@dataclass(slots=True)
class PeerFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """Master key + salt per direction, for decrypting captures (docs/architecture.md principle 4)."""

    profile: str
    local: bytes
    remote: bytes


@dataclass(slots=True)
class _Check:
    """A Binding request in flight, retransmitted on the RFC 8489 schedule until answered."""

    request: bytes
    remote: Address
    nominating: bool
    first_sent: float
    next_at: float = 0.0
    interval: float = STUN_RTO
    transmissions: int = 0


class ProbePeer:
    """One offerer session: create_offer → set_answer → start → media → close.

    `state` moves new → checking → dtls → connected → closed, or to failed (with a PeerFailed
    event saying why). Garbage in never raises: it is counted in `drops` by reason.
    """

    def __init__(
        self,
        *,
        srtp_profiles: Sequence[str] = ("SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80"),
        datachannel: bool = False,
        ssrc: int | None = None,
        rtp_sequence_start: int | None = None,
        audio_pt: int = 111,
        consent_interval: float | None = 5.0,
        dtls_role: str = "auto",
        rng: random.Random | None = None,
    ) -> None:
        if dtls_role not in DTLS_ROLES:
            raise PeerError(f"dtls_role {dtls_role!r} is not one of {', '.join(DTLS_ROLES)}")
        if not srtp_profiles:
            raise PeerError("srtp_profiles is empty: the peer must offer at least one SRTP profile")
        for name in srtp_profiles:
            if name not in SRTP_PROFILES:
                raise PeerError(f"unknown SRTP profile {name!r}; known: {', '.join(SRTP_PROFILES)}")
        self._rng = rng or random.Random()
        self.srtp_profiles = tuple(srtp_profiles)
        self.requested_dtls_role = dtls_role
        self.dtls_role: str | None = None
        """"client" or "server", decided by the answer's a=setup in `set_answer`."""
        self.datachannel = datachannel
        self.audio_pt = audio_pt
        self.consent_interval = consent_interval
        self.ssrc = self._rng.getrandbits(32) if ssrc is None else ssrc
        self._rtp_sequence = (
            self._rng.getrandbits(16) if rtp_sequence_start is None else rtp_sequence_start
        ) - 1
        self.local_ufrag = "".join(self._rng.choice(_ICE_CHARS) for _ in range(8))
        self.local_pwd = "".join(self._rng.choice(_ICE_CHARS) for _ in range(24))
        self.tie_breaker = self._rng.getrandbits(64)
        self._key, self._certificate = _self_signed_certificate(self._rng)
        self.fingerprint = self._certificate.fingerprint(hashes.SHA256()).hex(":").upper()
        self.keylog_lines: list[bytes] = []
        """SSLKEYLOGFILE lines (no trailing newline), so captures of this peer decrypt."""
        self.drops: Counter[str] = Counter()
        self.state = "new"
        self.answer: Answer | None = None
        self.remote: Address | None = None
        self.srtp_keys: SrtpKeys | None = None
        self._payload_type = audio_pt
        self._outgoing: list[tuple[bytes, Address]] = []
        self._events: deque[object] = deque()
        self._checks: dict[bytes, _Check] = {}
        self._consent_at: float | None = None
        self._consent_answered_at = 0.0
        self._dtls: SSL.Connection | None = None
        self._dtls_started = 0.0
        self._dtls_timer_at: float | None = None
        self._early_dtls: list[tuple[bytes, Address]] = []
        self._verify_failure: str | None = None
        self.renegotiation_refused = False  # the target answered our renegotiation with no_renegotiation
        self._srtp_tx: pylibsrtp.Session | None = None
        self._srtp_rx: pylibsrtp.Session | None = None

    # -- signaling -------------------------------------------------------------------------

    def create_offer(self) -> str:
        return build_offer(
            ice_ufrag=self.local_ufrag,
            ice_pwd=self.local_pwd,
            fingerprint=self.fingerprint,
            audio_pt=self.audio_pt,
            datachannel=self.datachannel,
            ssrc=self.ssrc,
            session_id=self._rng.getrandbits(62),
            setup=DTLS_ROLES[self.requested_dtls_role],
        )

    def set_answer(self, sdp: str) -> None:
        """Take the server's answer; raise PeerError if the peer cannot connect with it."""
        if self.answer is not None:
            raise PeerError("set_answer called twice: this peer already has an answer")
        answer = parse_answer(sdp)
        role = answer_role(DTLS_ROLES[self.requested_dtls_role], answer.setup)
        if answer.fingerprint_algorithm not in _FINGERPRINT_HASHES:
            raise PeerError(
                f"answer's a=fingerprint uses {answer.fingerprint_algorithm!r}; the probe peer "
                f"verifies {', '.join(_FINGERPRINT_HASHES)}"
            )
        self.answer = answer
        self.dtls_role = role
        if answer.audio_payload_type is not None:
            self._payload_type = answer.audio_payload_type

    # -- ICE -------------------------------------------------------------------------------

    def start(self, now: float, remote: Address | None = None, *, local_host: str | None = None) -> None:
        """Queue a nominating check to `remote`, or to every UDP candidate of the answer — of
        `local_host`'s address family when given (a socket cannot send to the other family)."""
        if self.answer is None:
            raise PeerError("start before set_answer: the peer has no answer to connect to")
        if self.state != "new":
            raise PeerError(f"start in state {self.state!r}: a peer starts once")
        targets = [remote] if remote is not None else list(self.answer.candidates)
        if remote is None and local_host is not None:
            ipv6 = ":" in local_host
            targets = [target for target in targets if (":" in target[0]) == ipv6]
            if not targets and self.answer.candidates:
                raise PeerError(f"the answer has no {'IPv6' if ipv6 else 'IPv4'} UDP candidate for a socket "
                                f"on {local_host}; pass remote= to start")
        if not targets:
            raise PeerError("the answer has no UDP candidate for component 1; pass remote= to start")
        self.state = "checking"
        for target in targets:
            self._send_new_check(target, nominating=True, now=now)

    def binding_request(
        self,
        *,
        use_candidate: bool = True,
        password: str | None = None,
        username: str | None = None,
        controlling: bool = True,
        extra_attributes: Iterable[tuple[str | int, object]] = (),
        transaction_id: bytes | None = None,
        message_integrity: bool = True,
        fingerprint: bool = True,
    ) -> bytes:
        """Build one connectivity check; the defaults are the peer's own nominating check.

        `extra_attributes` holds (aioice attribute name, value) pairs, or (type number, raw
        bytes) pairs for attributes aioice does not know; all go before MESSAGE-INTEGRITY.
        Nothing is tracked: responses show up as StunResponse events.
        """
        if (username is None or password is None) and self.answer is None:
            raise PeerError(
                "binding_request needs the answer's ice-ufrag and ice-pwd: call set_answer "
                "first, or pass username and password"
            )
        if username is None:
            username = f"{self.answer.ice_ufrag}:{self.local_ufrag}"
        if password is None:
            password = self.answer.ice_pwd
        attributes: dict[str, object] = {"USERNAME": username, "PRIORITY": PRFLX_PRIORITY}
        attributes["ICE-CONTROLLING" if controlling else "ICE-CONTROLLED"] = self.tie_breaker
        if use_candidate:
            attributes["USE-CANDIDATE"] = None
        raw_attributes = b""
        for kind, value in extra_attributes:
            if isinstance(kind, str):
                attributes[kind] = value
            else:
                raw_attributes += _stun_attribute(kind, value)
        message = stun.Message(
            stun.Method.BINDING,
            stun.Class.REQUEST,
            transaction_id=transaction_id or self._rng.getrandbits(96).to_bytes(12, "big"),
            attributes=attributes,
        )
        data = _with_stun_length(bytes(message) + raw_attributes)
        if message_integrity:
            data = _with_stun_length(
                data + _stun_attribute(0x0008, stun.message_integrity(data, password.encode()))
            )
        if fingerprint:
            data = _with_stun_length(
                data + _stun_attribute(0x8028, struct.pack("!I", stun.message_fingerprint(data)))
            )
        return data

    # -- sans-IO interface -----------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Demultiplex by first byte (RFC 9443): STUN 0–3, DTLS 20–63, RTP/RTCP 128–191."""
        if not data:
            self.drops["empty"] += 1
            return
        if self.state in ("failed", "closed"):
            self.drops[f"after_{self.state}"] += 1
            return
        first = data[0]
        if 127 < first < 192:
            self._receive_srtp(data, addr)
        elif first < 4:
            self._receive_stun(data, addr, now)
        elif 19 < first < 64:
            self._receive_dtls(data, addr, now)
        else:
            self.drops["unknown_first_byte"] += 1

    def handle_timer(self, now: float) -> None:
        if self.state in ("failed", "closed"):
            return
        for transaction_id, check in list(self._checks.items()):
            if now < check.next_at:
                continue
            if check.transmissions < STUN_TRANSMISSIONS:
                self._transmit(check, now)
                continue
            del self._checks[transaction_id]
            if check.nominating and self.state == "checking" and not self._nominating_pending():
                host, port = check.remote
                self._fail(
                    f"ICE: no answer to {STUN_TRANSMISSIONS} Binding requests to {host}:{port} "
                    f"within {now - check.first_sent:.1f} s"
                )
                return
        if self._consent_at is not None:
            if now - self._consent_answered_at >= CONSENT_TIMEOUT:
                self._fail(f"ICE consent expired: no consent check answered for {CONSENT_TIMEOUT:.0f} s")
                return
            if now >= self._consent_at:
                self._send_new_check(self.remote, nominating=False, now=now)
                self._consent_at = now + self.consent_interval * self._rng.uniform(0.8, 1.2)
        if self.state == "dtls":
            if now - self._dtls_started >= DTLS_HANDSHAKE_TIMEOUT:
                self._fail(f"DTLS handshake did not complete within {DTLS_HANDSHAKE_TIMEOUT:.0f} s")
                return
            if self._dtls_timer_at is not None and now >= self._dtls_timer_at:
                try:
                    self._dtls.DTLSv1_handle_timeout()
                except SSL.Error as exc:
                    self._fail(f"DTLS retransmission failed: {_openssl_reason(exc)}")
                    return
                self._flush_dtls()
                self._arm_dtls_timer(now)

    def get_timer(self) -> float | None:
        """The earliest time handle_timer has work to do, or None."""
        if self.state in ("failed", "closed"):
            return None
        times = [check.next_at for check in self._checks.values()]
        if self._consent_at is not None:
            times += (self._consent_at, self._consent_answered_at + CONSENT_TIMEOUT)
        if self.state == "dtls":
            times.append(self._dtls_started + DTLS_HANDSHAKE_TIMEOUT)
            if self._dtls_timer_at is not None:
                times.append(self._dtls_timer_at)
        return min(times) if times else None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        outgoing = self._outgoing
        self._outgoing = []
        return outgoing

    def next_event(self) -> object | None:
        return self._events.popleft() if self._events else None

    # -- media -----------------------------------------------------------------------------

    def send_rtp(
        self,
        payload: bytes,
        *,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
    ) -> None:
        """Build an RTP packet (own SSRC and sequence counter), protect it, queue it."""
        if self.state != "connected":
            raise PeerError(f"send_rtp in state {self.state!r}: SRTP needs a connected peer")
        payload_type = self._payload_type if payload_type is None else payload_type
        self._rtp_sequence = (self._rtp_sequence + 1) & 0xFFFF
        header = _RTP_HEADER.pack(
            0x80,
            payload_type | 0x80 if marker else payload_type,
            self._rtp_sequence,
            timestamp & 0xFFFFFFFF,
            self.ssrc,
        )
        self._outgoing.append((self._srtp_tx.protect(header + payload), self.remote))

    def send_rtcp(self, packet: bytes) -> None:
        self._outgoing.append((self.protect_rtcp(packet), self.remote))

    def protect_rtp(self, packet: bytes) -> bytes:
        """SRTP-protect a complete RTP packet the caller built (for crafted media)."""
        if self._srtp_tx is None:
            raise PeerError(f"protect_rtp in state {self.state!r}: no SRTP keys yet")
        return self._srtp_tx.protect(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        if self._srtp_tx is None:
            raise PeerError(f"protect_rtcp in state {self.state!r}: no SRTP keys yet")
        return self._srtp_tx.protect_rtcp(packet)

    def send_dtls(self, data: bytes) -> None:
        """Send application data (SCTP) over the DTLS connection."""
        if self.state != "connected":
            raise PeerError(f"send_dtls in state {self.state!r}: DTLS is not connected")
        self._dtls.send(data)
        self._flush_dtls()

    def renegotiate(self) -> None:
        """Start a DTLS renegotiation (RFC 5746), for checks that the target refuses one (RFC 8842
        §4): as DTLS client an epoch-1 ClientHello; as DTLS server a HelloRequest, which asks the
        target to send one. `renegotiation_pending` tells whether it completed."""
        if self.state != "connected":
            raise PeerError(f"renegotiate in state {self.state!r}: DTLS is not connected")
        if not self._dtls.renegotiate():
            raise PeerError("OpenSSL would not start a renegotiation on this connection")
        try:
            self._dtls.do_handshake()
        except SSL.WantReadError:
            pass
        except SSL.Error as exc:
            raise PeerError(f"renegotiation could not start: {_openssl_reason(exc)}") from None
        self._flush_dtls()

    @property
    def renegotiation_pending(self) -> bool:
        return self._dtls is not None and self._dtls.renegotiate_pending()

    def send_raw(self, data: bytes, addr: Address | None = None) -> None:
        """Queue anything, unprotected, to any address (default: the selected remote)."""
        if addr is None:
            addr = self.remote
        if addr is None:
            raise PeerError("send_raw needs an address: no remote is selected yet")
        self._outgoing.append((data, addr))

    def close(self, now: float) -> None:
        """Send close_notify if DTLS is up, and stop all timers."""
        if self.state == "closed":
            return
        if self._dtls is not None and self.state in ("dtls", "connected"):
            try:
                self._dtls.shutdown()
            except SSL.Error:
                self.drops["dtls_shutdown_error"] += 1
            self._flush_dtls()
        self.state = "closed"
        self._stop_timers()

    # -- STUN ------------------------------------------------------------------------------

    def _send_new_check(self, remote: Address, *, nominating: bool, now: float) -> None:
        transaction_id = self._rng.getrandbits(96).to_bytes(12, "big")
        request = self.binding_request(use_candidate=nominating, transaction_id=transaction_id)
        check = _Check(request=request, remote=remote, nominating=nominating, first_sent=now)
        self._checks[transaction_id] = check
        self._transmit(check, now)

    def _transmit(self, check: _Check, now: float) -> None:
        self._outgoing.append((check.request, check.remote))
        check.transmissions += 1
        if check.transmissions < STUN_TRANSMISSIONS:
            check.next_at = now + check.interval
            check.interval = min(check.interval * 2, STUN_MAX_INTERVAL)
        else:
            check.next_at = now + STUN_FINAL_WAIT

    def _nominating_pending(self) -> bool:
        return any(check.nominating for check in self._checks.values())

    def _receive_stun(self, data: bytes, addr: Address, now: float) -> None:
        try:
            message = stun.parse_message(data)
        except (ValueError, struct.error):
            self.drops["stun_malformed"] += 1
            return
        if message.message_method != stun.Method.BINDING:
            self.drops["stun_not_binding"] += 1
            return
        message_class = message.message_class
        if message_class == stun.Class.REQUEST:
            self._answer_request(message, data, addr)
            return
        if message_class == stun.Class.INDICATION:
            self.drops["stun_indication"] += 1
            return
        is_error = message_class == stun.Class.ERROR
        error_code = message.error_code
        self._events.append(StunResponse(data, addr, message.transaction_id, is_error, error_code))
        check = self._checks.get(message.transaction_id)
        if check is None:
            return
        if addr != check.remote:
            self.drops["stun_response_wrong_address"] += 1
            return
        if is_error:
            del self._checks[message.transaction_id]
            if check.nominating and self.state == "checking" and not self._nominating_pending():
                reason = message.attributes.get("ERROR-CODE", (error_code, ""))[1]
                self._fail(
                    f"ICE: Binding request to {addr[0]}:{addr[1]} was answered with error "
                    f"{error_code} {reason}".rstrip()
                )
            return
        if not message.check_message_integrity(self.answer.ice_pwd.encode()):
            self.drops["stun_response_bad_integrity"] += 1
            return
        del self._checks[message.transaction_id]
        if not check.nominating:
            self._consent_answered_at = now
        elif self.state == "checking":
            self._ice_completed(addr, now - check.first_sent, now)

    def _answer_request(self, message: stun.Message, data: bytes, addr: Address) -> None:
        """Answer an authentic check (a full-ICE server sends them; a lite one must not)."""
        username = message.attributes.get("USERNAME")
        key = self.local_pwd.encode()
        authentic = (
            isinstance(username, str)
            and username.startswith(self.local_ufrag + ":")
            and message.check_message_integrity(key)
        )
        self._events.append(StunRequestReceived(data, addr, authentic))
        if not authentic:
            self.drops["stun_request_unauthenticated"] += 1
            return
        response = stun.Message(
            stun.Method.BINDING,
            stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
            attributes={"XOR-MAPPED-ADDRESS": addr},
        )
        response.add_message_integrity(key)
        self._outgoing.append((bytes(response), addr))

    def _ice_completed(self, remote: Address, rtt: float, now: float) -> None:
        self.remote = remote
        self._checks = {tid: c for tid, c in self._checks.items() if not c.nominating}
        self._events.append(IceCompleted(remote, rtt))
        if self.consent_interval is not None:
            self._consent_answered_at = now
            self._consent_at = now + self.consent_interval * self._rng.uniform(0.8, 1.2)
        self._start_dtls(now)
        early, self._early_dtls = self._early_dtls, []
        for data, addr in early:
            if self.state not in ("dtls", "connected"):
                break  # an early datagram failed the handshake: the rest is moot
            self._receive_dtls(data, addr, now)

    # -- DTLS ------------------------------------------------------------------------------

    def _start_dtls(self, now: float) -> None:
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_options(SSL.OP_NO_QUERY_MTU)
        context.use_certificate(self._certificate)
        context.use_privatekey(self._key)
        context.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify_peer_certificate
        )
        context.set_tlsext_use_srtp(":".join(self.srtp_profiles).encode())
        context.set_keylog_callback(lambda _connection, line: self.keylog_lines.append(line))
        connection = SSL.Connection(context, None)
        if self.dtls_role == "server":
            connection.set_accept_state()  # VERIFY_PEER makes it ask for the client's certificate
        else:
            connection.set_connect_state()
        connection.set_ciphertext_mtu(DTLS_MTU)
        self._dtls = connection
        self._dtls_started = now
        self.state = "dtls"
        self._drive_handshake(now)

    def _verify_peer_certificate(
        self, connection: SSL.Connection, certificate, _error: int, depth: int, _ok: int
    ) -> bool:
        """Accept the self-signed leaf only if it matches one of the answer's a=fingerprint values
        with the most preferred hash function the answer uses (RFC 8122 §5)."""
        if depth != 0:
            return True
        algorithm = self.answer.fingerprint_algorithm
        digest = certificate.to_cryptography().fingerprint(_FINGERPRINT_HASHES[algorithm]())
        actual = digest.hex(":").upper()
        if actual not in self.answer.fingerprints:
            other = "server" if self.dtls_role == "client" else "client"
            self._verify_failure = (
                f"DTLS: {other} certificate {algorithm} fingerprint {actual} does not match "
                f"the answer's {' or '.join(self.answer.fingerprints)}"
            )
            return False
        if self.dtls_role == "server" and not connection.get_selected_srtp_profile():
            # OpenSSL's server completes without use_srtp when no profile matches; the client's
            # certificate comes after that choice, so refuse here (RFC 5764 §4.1.1 wants an alert).
            self._verify_failure = (
                f"DTLS: the client offered no SRTP profile of ours ({', '.join(self.srtp_profiles)})"
            )
            return False
        return True

    def _drive_handshake(self, now: float) -> None:
        try:
            self._dtls.do_handshake()
        except SSL.WantReadError:
            self._flush_dtls()
            self._arm_dtls_timer(now)
            return
        except SSL.Error as exc:
            self._flush_dtls()
            self._fail(self._verify_failure or f"DTLS handshake failed: {_openssl_reason(exc)}")
            return
        self._flush_dtls()
        self._dtls_established()

    def _dtls_established(self) -> None:
        self._dtls_timer_at = None
        name = self._dtls.get_selected_srtp_profile().decode()
        if name not in SRTP_PROFILES:
            chose = "the server selected" if self.dtls_role == "client" else "the client offered"
            self._fail(f"DTLS: {chose} no SRTP profile (use_srtp gave {name!r})")
            return
        profile = SRTP_PROFILES[name]
        key, salt = profile.key_length, profile.salt_length
        material = self._dtls.export_keying_material(DTLS_SRTP_EXPORTER_LABEL, 2 * (key + salt))
        # RFC 5764 §4.2: client key, server key, client salt, server salt.
        client = material[:key] + material[2 * key : 2 * key + salt]
        server = material[key : 2 * key] + material[2 * key + salt :]
        local, remote = (client, server) if self.dtls_role == "client" else (server, client)
        self.srtp_keys = SrtpKeys(name, local, remote)
        self._srtp_tx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=local, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile.libsrtp_id
            )
        )
        self._srtp_rx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile.libsrtp_id
            )
        )
        self.state = "connected"
        self._events.append(DtlsConnected(name, self._dtls.get_cipher_name() or "", self.dtls_role))

    def _receive_dtls(self, data: bytes, addr: Address, now: float) -> None:
        if self._dtls is None:
            if self._may_keep_early_dtls(addr):
                self._early_dtls.append((data, addr))
            else:
                self.drops["dtls_before_ice"] += 1
            return
        if addr != self.remote:
            self.drops["dtls_wrong_address"] += 1
            return
        self._dtls.bio_write(data)
        if self.state == "dtls":
            self._drive_handshake(now)
            return
        while True:
            try:
                self._events.append(DtlsData(self._dtls.recv(65536)))
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self._flush_dtls()
                self.state = "closed"
                self._stop_timers()
                self._events.append(DtlsClosed())
                return
            except SSL.Error as exc:
                if self.renegotiation_pending and "no renegotiation" in _openssl_reason(exc):
                    # The target refused with a no_renegotiation warning (RFC 5746 §4.4). OpenSSL
                    # takes that as fatal, but the connection before it stands (SRTP keys
                    # included): drop the fatal alert OpenSSL queued instead of sending it.
                    self.renegotiation_refused = True
                    self._discard_dtls_output()
                    return
                self.drops["dtls_record_error"] += 1
                break
        self._flush_dtls()

    def _may_keep_early_dtls(self, addr: Address) -> bool:
        """As DTLS server, the target's ClientHello may overtake the answer to our nominating
        check: keep a few from an address we are checking, for when ICE completes."""
        return (
            self.dtls_role == "server"
            and self.state == "checking"
            and len(self._early_dtls) < EARLY_DTLS_LIMIT
            and any(check.nominating and check.remote == addr for check in self._checks.values())
        )

    def _discard_dtls_output(self) -> None:
        while True:
            try:
                self._dtls.bio_read(65536)
            except SSL.WantReadError:
                return

    def _flush_dtls(self) -> None:
        chunks = []
        while True:
            try:
                chunks.append(self._dtls.bio_read(65536))
            except SSL.WantReadError:
                break
        if chunks:
            remote = self.remote
            for datagram in _records_to_datagrams(b"".join(chunks), DTLS_MTU):
                self._outgoing.append((datagram, remote))

    def _arm_dtls_timer(self, now: float) -> None:
        left = self._dtls.DTLSv1_get_timeout()
        self._dtls_timer_at = None if left is None else now + left

    # -- SRTP ------------------------------------------------------------------------------

    def _receive_srtp(self, data: bytes, addr: Address) -> None:
        srtp_rx = self._srtp_rx
        if srtp_rx is None:
            self.drops["srtp_before_keys"] += 1
            return
        if len(data) > 1 and 191 < data[1] < 224:
            try:
                packet = srtp_rx.unprotect_rtcp(data)
            except pylibsrtp.Error:
                self.drops["srtcp_unprotect_failed"] += 1
                return
            self._events.append(RtcpReceived(packet, addr))
            return
        try:
            packet = srtp_rx.unprotect(data)
        except pylibsrtp.Error:
            self.drops["srtp_unprotect_failed"] += 1
            return
        self._events.append(RtpReceived(packet, addr))

    # -- common ----------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self.state = "failed"
        self._stop_timers()
        self._events.append(PeerFailed(reason))

    def _stop_timers(self) -> None:
        self._checks.clear()
        self._consent_at = None
        self._dtls_timer_at = None


def _self_signed_certificate(rng: random.Random) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """ECDSA P-256 like browsers use; fixed validity, since WebRTC peers trust by fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rtcgate-probe")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(rng.getrandbits(63) + 1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
        .not_valid_after(datetime.datetime(2099, 12, 31, tzinfo=datetime.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _stun_attribute(kind: int, value: bytes) -> bytes:
    return _STUN_ATTRIBUTE_HEADER.pack(kind, len(value)) + value + bytes(-len(value) % 4)


def _with_stun_length(data: bytes) -> bytes:
    return data[:2] + struct.pack("!H", len(data) - 20) + data[4:]


def _records_to_datagrams(data: bytes, mtu: int) -> list[bytes]:
    """Pack whole DTLS records into datagrams of at most `mtu` bytes where they fit.

    A memory BIO hands back a whole flight at once; record boundaries come from each
    record's 13-byte header (length in bytes 11–12).
    """
    datagrams = []
    start = position = 0
    while position < len(data):
        end = position + 13 + int.from_bytes(data[position + 11 : position + 13], "big")
        if end - start > mtu and position > start:
            datagrams.append(data[start:position])
            start = position
        position = end
    datagrams.append(data[start:])
    return datagrams


def _openssl_reason(exc: SSL.Error) -> str:
    """OpenSSL's error queue as 'reason; reason' instead of a list of tuples."""
    errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else None
    if errors:
        return "; ".join(str(entry[-1]) for entry in errors)
    return str(exc) or type(exc).__name__
