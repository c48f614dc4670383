"""Sans-IO probe peer: a scriptable WebRTC offerer that drives a server under test.

It composes three parts, each sans-IO with its own module: `ice.IceAgent` (the controlling
agent, aggressive nomination, consent freshness), `dtls.DtlsEndpoint` (DTLS in either role) and
`srtp.SrtpSession` (SRTP keyed by DTLS-SRTP, RFC 5764), with the offer and answer of `offer`.
This module only routes: datagrams to the part the first byte names (RFC 9443), each part's
outputs into the peer's, and the peer's phase along `phase.TRANSITIONS`.

Time comes in as `now`; datagrams and events go out through `datagrams_to_send()` and
`next_event()`. Garbage in never raises: it is counted in `drops` by reason.

DTLS role (RFC 5763 §5, RFC 8842 §5): the offer says `a=setup:actpass` (or `active`/`passive`
when `dtls_role` forces one) and the answer decides: `passive` makes the peer the DTLS client,
`active` the DTLS server. `dtls_role` is "client" or "server" once `set_answer` has run. As
server, the peer waits for the target's ClientHello once its nominating check is answered;
a ClientHello that overtakes that answer is kept (at most EARLY_DTLS_LIMIT datagrams from an
address being checked) and handled once ICE completes.
"""

from __future__ import annotations

import random
import struct
from collections import Counter, deque
from collections.abc import Sequence

from toolkit.peer import dtls  # dtls.self_signed_certificate is looked up per peer: fuzz/world.py swaps it
from toolkit.peer.dtls import (
    FINGERPRINT_HASHES,
    DtlsEndpoint,
    HandshakeCompleted,
    HandshakeFailed,
    sha256_fingerprint,
)
from toolkit.peer.events import (
    Address,
    DtlsClosed,
    DtlsConnected,
    DtlsData,
    IceCompleted,
    PeerEvent,
    PeerFailed,
    RtcpReceived,
    RtpReceived,
)
from toolkit.peer.ice import IceAgent, IceFailed
from toolkit.peer.offer import Answer, PeerError, answer_role, build_offer, parse_answer
from toolkit.peer.phase import ENDED, PeerPhase, advance
from toolkit.peer.srtp import SRTP_PROFILES, SrtpKeys, SrtpSession

EARLY_DTLS_LIMIT = 8
"""DTLS datagrams kept, as DTLS server, from addresses being checked before ICE completes."""
DTLS_ROLES = {"auto": "actpass", "client": "active", "server": "passive"}
"""The `dtls_role` option and the a=setup the offer says for it (RFC 8842 §5.2)."""

_RTP_HEADER = struct.Struct("!BBHII")


class ProbePeer:
    """One offerer session: create_offer → set_answer → start → media → close.

    `state` is a PeerPhase: new → checking → dtls → connected → closed, or failed (with a
    PeerFailed event saying why); it moves only along `phase.TRANSITIONS`.
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
        # The draws from the rng keep this order (ssrc, sequence, ICE credentials, certificate
        # serial, then offer and checks): a seeded peer (fuzzing, replays) says the same every time.
        self.ssrc = self._rng.getrandbits(32) if ssrc is None else ssrc
        self._rtp_sequence = (
            self._rng.getrandbits(16) if rtp_sequence_start is None else rtp_sequence_start
        ) - 1
        self.drops: Counter[str] = Counter()
        self._ice = IceAgent(self._rng, self.drops, consent_interval=consent_interval)
        self._key, self._certificate = dtls.self_signed_certificate(self._rng)
        self.fingerprint = sha256_fingerprint(self._certificate)
        self.keylog_lines: list[bytes] = []
        """SSLKEYLOGFILE lines (no trailing newline), so captures of this peer decrypt."""
        self._state = PeerPhase.NEW
        self.answer: Answer | None = None
        self.srtp_keys: SrtpKeys | None = None
        self._payload_type = audio_pt
        self._outgoing: list[tuple[bytes, Address]] = []
        self._events: deque[PeerEvent] = deque()
        self._dtls: DtlsEndpoint | None = None
        self._early_dtls: list[tuple[bytes, Address]] = []
        self._srtp: SrtpSession | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> PeerPhase:
        return self._state

    def _advance(self, to: PeerPhase) -> None:
        """The one place the phase changes (IllegalTransition if TRANSITIONS forbids the move)."""
        self._state = advance(self._state, to)

    @property
    def remote(self) -> Address | None:
        """The target address ICE selected; None until then."""
        return self._ice.selected

    @property
    def local_ufrag(self) -> str:
        """Settable, like `local_pwd`: a check restarts ICE by changing both in place."""
        return self._ice.local_ufrag

    @local_ufrag.setter
    def local_ufrag(self, value: str) -> None:
        self._ice.local_ufrag = value

    @property
    def local_pwd(self) -> str:
        return self._ice.local_pwd

    @local_pwd.setter
    def local_pwd(self, value: str) -> None:
        self._ice.local_pwd = value

    @property
    def tie_breaker(self) -> int:
        return self._ice.tie_breaker

    @property
    def renegotiation_pending(self) -> bool:
        return self._dtls is not None and self._dtls.renegotiation_pending

    @property
    def renegotiation_refused(self) -> bool:
        """The target answered our renegotiation with no_renegotiation."""
        return self._dtls is not None and self._dtls.renegotiation_refused

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
        if answer.fingerprint_algorithm not in FINGERPRINT_HASHES:
            raise PeerError(
                f"answer's a=fingerprint uses {answer.fingerprint_algorithm!r}; the probe peer "
                f"verifies {', '.join(FINGERPRINT_HASHES)}"
            )
        self.answer = answer
        self._ice.remote_credentials = answer  # read at every check, so an in-place ICE restart takes effect
        self.dtls_role = role
        if answer.audio_payload_type is not None:
            self._payload_type = answer.audio_payload_type

    # -- ICE -------------------------------------------------------------------------------

    def start(self, now: float, remote: Address | None = None, *, local_host: str | None = None) -> None:
        """Queue a nominating check to `remote`, or to every UDP candidate of the answer — of
        `local_host`'s address family when given (a socket cannot send to the other family)."""
        if self.answer is None:
            raise PeerError("start before set_answer: the peer has no answer to connect to")
        if self._state is not PeerPhase.NEW:
            raise PeerError(f"start in state {self._state!r}: a peer starts once")
        targets = [remote] if remote is not None else list(self.answer.candidates)
        if remote is None and local_host is not None:
            ipv6 = ":" in local_host
            targets = [target for target in targets if (":" in target[0]) == ipv6]
            if not targets and self.answer.candidates:
                raise PeerError(f"the answer has no {'IPv6' if ipv6 else 'IPv4'} UDP candidate for a socket "
                                f"on {local_host}; pass remote= to start")
        if not targets:
            raise PeerError("the answer has no UDP candidate for component 1; pass remote= to start")
        self._advance(PeerPhase.CHECKING)
        self._ice.start(targets, now)
        self._take_ice_outputs(now)

    def binding_request(self, **options: object) -> bytes:
        """Build one connectivity check, the peer's own nominating check unless `options` say
        otherwise (their names and meaning: `IceAgent.binding_request`). Nothing is tracked:
        responses show up as StunResponse events."""
        return self._ice.binding_request(**options)

    # -- sans-IO interface -----------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Demultiplex by first byte (RFC 9443): STUN 0–3, DTLS 20–63, RTP/RTCP 128–191."""
        if not data:
            self.drops["empty"] += 1
            return
        if self._state in ENDED:
            self.drops[f"after_{self._state}"] += 1
            return
        first = data[0]
        if 127 < first < 192:
            self._receive_srtp(data, addr)
        elif first < 4:
            self._ice.receive_stun(data, addr, now)
            self._take_ice_outputs(now)
        elif 19 < first < 64:
            self._receive_dtls(data, addr, now)
        else:
            self.drops["unknown_first_byte"] += 1

    def handle_timer(self, now: float) -> None:
        if self._state in ENDED:
            return
        self._ice.handle_timer(now)
        self._take_ice_outputs(now)
        if self._state is PeerPhase.DTLS:
            self._dtls.handle_timer(now)
            self._take_dtls_outputs()

    def get_timer(self) -> float | None:
        """The earliest time handle_timer has work to do, or None."""
        if self._state in ENDED:
            return None
        times = [self._ice.get_timer()]
        if self._state is PeerPhase.DTLS:
            times.append(self._dtls.get_timer())
        times = [time for time in times if time is not None]
        return min(times) if times else None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        outgoing = self._outgoing
        self._outgoing = []
        return outgoing

    def next_event(self) -> PeerEvent | None:
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
        if self._state is not PeerPhase.CONNECTED:
            raise PeerError(f"send_rtp in state {self._state!r}: SRTP needs a connected peer")
        payload_type = self._payload_type if payload_type is None else payload_type
        self._rtp_sequence = (self._rtp_sequence + 1) & 0xFFFF
        header = _RTP_HEADER.pack(
            0x80,
            payload_type | 0x80 if marker else payload_type,
            self._rtp_sequence,
            timestamp & 0xFFFFFFFF,
            self.ssrc,
        )
        self._outgoing.append((self._srtp.protect_rtp(header + payload), self.remote))

    def send_rtcp(self, packet: bytes) -> None:
        self._outgoing.append((self.protect_rtcp(packet), self.remote))

    def protect_rtp(self, packet: bytes) -> bytes:
        """SRTP-protect a complete RTP packet the caller built (for crafted media)."""
        if self._srtp is None:
            raise PeerError(f"protect_rtp in state {self._state!r}: no SRTP keys yet")
        return self._srtp.protect_rtp(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        if self._srtp is None:
            raise PeerError(f"protect_rtcp in state {self._state!r}: no SRTP keys yet")
        return self._srtp.protect_rtcp(packet)

    def send_dtls(self, data: bytes) -> None:
        """Send application data (SCTP) over the DTLS connection."""
        if self._state is not PeerPhase.CONNECTED:
            raise PeerError(f"send_dtls in state {self._state!r}: DTLS is not connected")
        self._dtls.send(data)
        self._take_dtls_outputs()

    def renegotiate(self) -> None:
        """Start a DTLS renegotiation (RFC 5746), for checks that the target refuses one (RFC 8842
        §4): as DTLS client an epoch-1 ClientHello; as DTLS server a HelloRequest, which asks the
        target to send one. `renegotiation_pending` tells whether it completed."""
        if self._state is not PeerPhase.CONNECTED:
            raise PeerError(f"renegotiate in state {self._state!r}: DTLS is not connected")
        self._dtls.renegotiate()
        self._take_dtls_outputs()

    def send_raw(self, data: bytes, addr: Address | None = None) -> None:
        """Queue anything, unprotected, to any address (default: the selected remote)."""
        if addr is None:
            addr = self.remote
        if addr is None:
            raise PeerError("send_raw needs an address: no remote is selected yet")
        self._outgoing.append((data, addr))

    def close(self, now: float) -> None:
        """Send close_notify if DTLS is up, and stop all timers."""
        if self._state is PeerPhase.CLOSED:
            return
        if self._state in (PeerPhase.DTLS, PeerPhase.CONNECTED):
            self._dtls.close()
            self._take_dtls_outputs()
        self._end(PeerPhase.CLOSED)

    # -- routing between the parts ---------------------------------------------------------

    def _take_ice_outputs(self, now: float) -> None:
        """The agent's datagrams and events, in order; ICE completing starts DTLS."""
        self._outgoing.extend(self._ice.datagrams_to_send())
        while (event := self._ice.next_event()) is not None:
            if isinstance(event, IceFailed):
                self._fail(event.reason)
            elif isinstance(event, IceCompleted):
                self._events.append(event)
                self._start_dtls(now)
            else:
                self._events.append(event)

    def _start_dtls(self, now: float) -> None:
        self._dtls = DtlsEndpoint(
            role=self.dtls_role,
            key=self._key,
            certificate=self._certificate,
            srtp_profiles=self.srtp_profiles,
            fingerprint_algorithm=self.answer.fingerprint_algorithm,
            remote_fingerprints=self.answer.fingerprints,
            keylog=lambda line: self.keylog_lines.append(line),
            drops=self.drops,
        )
        self._advance(PeerPhase.DTLS)
        self._dtls.start(now)
        self._take_dtls_outputs()
        early, self._early_dtls = self._early_dtls, []
        for data, addr in early:
            if self._state not in (PeerPhase.DTLS, PeerPhase.CONNECTED):
                break  # an early datagram failed the handshake: the rest is moot
            self._receive_dtls(data, addr, now)

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
        self._dtls.receive(data, now)
        self._take_dtls_outputs()

    def _may_keep_early_dtls(self, addr: Address) -> bool:
        """As DTLS server, the target's ClientHello may overtake the answer to our nominating
        check: keep a few from an address we are checking, for when ICE completes."""
        return (
            self.dtls_role == "server"
            and self._state is PeerPhase.CHECKING
            and len(self._early_dtls) < EARLY_DTLS_LIMIT
            and self._ice.is_checking(addr)
        )

    def _take_dtls_outputs(self) -> None:
        """The endpoint's records (to the selected pair) and events, in order."""
        remote = self.remote
        self._outgoing.extend((datagram, remote) for datagram in self._dtls.datagrams_to_send())
        while (event := self._dtls.next_event()) is not None:
            if isinstance(event, DtlsData):
                self._events.append(event)
            elif isinstance(event, HandshakeCompleted):
                self.srtp_keys = SrtpKeys.from_keying_material(event.srtp_profile, event.keying_material, self.dtls_role)
                self._srtp = SrtpSession(self.srtp_keys, self.drops)
                self._advance(PeerPhase.CONNECTED)
                self._events.append(DtlsConnected(event.srtp_profile, event.cipher, self.dtls_role))
            elif isinstance(event, DtlsClosed):
                self._end(PeerPhase.CLOSED)
                self._events.append(event)
            elif isinstance(event, HandshakeFailed):
                self._fail(event.reason)

    def _receive_srtp(self, data: bytes, addr: Address) -> None:
        if self._srtp is None:
            self.drops["srtp_before_keys"] += 1
            return
        unprotected = self._srtp.unprotect(data)
        if unprotected is not None:
            is_rtcp, packet = unprotected
            self._events.append(RtcpReceived(packet, addr) if is_rtcp else RtpReceived(packet, addr))

    def _fail(self, reason: str) -> None:
        self._end(PeerPhase.FAILED)
        self._events.append(PeerFailed(reason))

    def _end(self, phase: PeerPhase) -> None:
        """Move to FAILED or CLOSED and stop every timer."""
        self._advance(phase)
        self._ice.stop()
