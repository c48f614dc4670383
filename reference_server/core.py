"""The sans-IO server: every datagram on the one port, every session, no clock and no socket.

Inputs: `create_session`, `restart_ice`, `close_session` (from signaling), `receive_datagram`
and `handle_timer` (from the shell). Outputs, drained after every input: `datagrams_to_send()`,
`get_timer()`, `next_event()`. Nothing raises out of `receive_datagram`: a datagram that cannot
be handled is dropped and counted by its DropReason in `metrics.drops`.

Each session moves through the phases of `sessions.TRANSITIONS` (OFFERED, CHECKED, SELECTED,
DTLS_HANDSHAKING, CONNECTED, CLOSED), only forward and only through `_advance`. Every call is
either guarded by the phase it leaves or legal by construction (said where it is made), so no
datagram can make a transition illegal.

Data channels: SCTP runs in the shell (it needs asyncio), so for a session whose offer had a
data channel the core only carries DTLS application data: `DataChannelBytes` events out,
`send_application_data` in.

Media: without a `voice_factory` the core echoes each session's RTP back under the server's own
stream. With one, each connected session gets a voice endpoint: Opus payloads in, paced Opus
frames out; its data-channel texts leave as `VoiceMessage` events and its model requests as
`VoiceAction` events (the model itself runs in the shell), and come back through `voice_event`
and `voice_input`.
"""
from __future__ import annotations

import heapq
import logging
import os
import secrets
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import credentials, events, stun
from .certificate import Certificate
from .demux import DemuxError, Kind, classify
from .dtls import ApplicationData, Closed, DtlsContext, DtlsEndpoint, DtlsState, HandshakeCompleted, HandshakeFailed
from .events import Address
from .metrics import Metrics
from .outbound import OutboundStream
from .ratelimit import TokenBucket
from .reasons import CloseReason, DropReason
from .reception import ReceptionStats
from .rtp import ReceiverReport, RtpError, SenderReport, ntp_timestamp, parse_rtcp, parse_rtp, serialize_rtcp
from .sdp import (
    AnswerParams,
    SdpError,
    build_answer,
    build_ice_sdpfrag,
    host_candidates,
    parse_ice_sdpfrag,
    parse_offer,
)
from .sessions import Session, SessionPhase, SessionTable
from .srtp import SrtpError, SrtpSession

if TYPE_CHECKING:
    from .voice.endpoint import VoiceEndpoint

log = logging.getLogger("rtcgate.server")

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 to 1970
SWEEP_INTERVAL = 1.0
_SEQUENCE_TIMESTAMP_SSRC = struct.Struct("!HII")  # RTP header bytes 2..12
DTLS_MTU = 1200  # audio-only sessions: DTLS carries only the handshake
# SCTP packets from WebRTC stacks reach 1189 bytes (sized for the IPv6 minimum MTU) and each
# must fit one DTLS record; 1280 leaves room for the largest record overhead of our cipher
# suites (CBC + SHA-1: 13 header + 16 IV + 20 MAC + up to 16 padding).
DATACHANNEL_DTLS_MTU = 1280
DATACHANNEL = "datachannel"  # the Session.app key of a session's DataChannelOffer
# Module globals: read per datagram, cheaper than Kind's class attributes and `.value`.
_STUN, _RTP, _RTCP = Kind.STUN, Kind.RTP, Kind.RTCP
_BEFORE_DTLS = (SessionPhase.CHECKED, SessionPhase.SELECTED)  # a bound tuple, DTLS not begun


class SignalingError(Exception):
    """A signaling request the core refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CoreConfig:
    advertise_address: str = "127.0.0.1"
    port: int = 3478
    extra_addresses: tuple[str, ...] = ()  # more host candidates on the same port (a dual-stack server)
    consent_timeout: float = 30.0  # RFC 7675
    connect_timeout: float = 30.0  # a session that is not DTLS-connected by then is freed
    max_tuples_per_session: int = 4
    max_sessions: int = 10_000
    worker_id: int = 0
    rtcp_interval: float = 5.0
    wall_clock_offset: float = 0.0  # add to `now` to get Unix time, for RTCP SR timestamps only
    # Error responses (400, 401) to unauthenticated requests, per second, in bursts of up to one
    # second's worth; past that such requests get silence (drop reason stun_error_rate_limited).
    # 0: never answer them.
    stun_error_rate: float = 100.0
    # "server": answer a=setup:passive and wait for the ClientHello; "client": answer a=setup:active
    # (what RFC 5763 §5 recommends to answerers) and send the ClientHello once ICE selects a pair.
    dtls_role: str = "server"


@dataclass(frozen=True, slots=True)
class DataChannelOffer:
    """What the offer's m=application section said: the shell's SCTP association needs it."""

    mid: str | None
    sctp_port: int
    max_message_size: int | None  # None: the offer said nothing (RFC 8841 §6.1: 64 KiB)


class ServerCore:
    def __init__(self, config: CoreConfig, certificate: Certificate, *,
                 keylog: Callable[[bytes], None] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom,
                 routing_secret: bytes | None = None,
                 voice_factory: Callable[[str, float], VoiceEndpoint] | None = None) -> None:
        self.config = config
        self.certificate = certificate
        self.fingerprint = certificate.fingerprint("sha-256")
        self.metrics = Metrics()
        if config.dtls_role not in ("server", "client"):
            raise ValueError(f"dtls_role must be 'server' or 'client', not {config.dtls_role!r}")
        self.sessions = SessionTable()
        self._dtls_context = DtlsContext(certificate, keylog=keylog)
        self._random_bytes = random_bytes
        self._routing_secret = routing_secret if routing_secret is not None else random_bytes(32)
        self._outbox: list[tuple[bytes, Address]] = []
        self._events: deque[events.Event] = deque()
        self._handshaking: set[Session] = set()  # the sessions in DTLS_HANDSHAKING: their DTLS timers run
        self._next_sweep: float | None = None
        self._voice_factory = voice_factory
        self._voice_timers: list[tuple[float, str]] = []  # heap; an entry is live while it equals session.voice_timer
        self._stun_error_budget = TokenBucket(config.stun_error_rate, config.stun_error_rate)

    # ---- signaling ------------------------------------------------------------------------

    def create_session(self, offer_sdp: str, now: float) -> tuple[str, str]:
        """Parse an offer, create the session, return (session id, SDP answer)."""
        if len(self.sessions) >= self.config.max_sessions:
            raise SignalingError(503, f"server is full ({self.config.max_sessions} sessions)")
        try:
            offer = parse_offer(offer_sdp, answer_setup=self._answer_setup)
        except SdpError as exc:
            raise SignalingError(400, str(exc)) from None
        ufrag = self._new_ufrag()
        pwd = credentials.make_password(self._random_bytes)
        session_id = secrets.token_hex(16)
        datachannel = None
        if offer.sctp_port is not None:
            datachannel = DataChannelOffer(offer.datachannel_mid, offer.sctp_port, offer.max_message_size)
        dtls = DtlsEndpoint(self._dtls_context, offer.fingerprints, is_server=self.config.dtls_role == "server",
                            mtu=DATACHANNEL_DTLS_MTU if datachannel else DTLS_MTU)
        seeds = self._random_bytes(10)
        session = Session(
            id=session_id, ufrag=ufrag, pwd=pwd,
            remote_ufrag=offer.ice_ufrag, remote_pwd=offer.ice_pwd, created_at=now, dtls=dtls,
            outbound=OutboundStream(int.from_bytes(seeds[:4], "big"), int.from_bytes(seeds[4:6], "big"),
                                    int.from_bytes(seeds[6:10], "big")),
            reception=ReceptionStats(), audio_payload_type=offer.opus_payload_type,
        )
        answer = build_answer(offer, AnswerParams(
            ice_ufrag=ufrag, ice_pwd=pwd, fingerprint=f"sha-256 {self.fingerprint}",
            address=self.config.advertise_address, port=self.config.port, extra_addresses=self.config.extra_addresses,
            session_id=int.from_bytes(seeds[:8], "big") >> 1,
            accept_datachannel=datachannel is not None, audio_ssrc=session.outbound.ssrc,
            setup=self._answer_setup,
        ))
        if datachannel is not None:
            session.app[DATACHANNEL] = datachannel
        self.sessions.add(session)
        self.metrics.sessions_created += 1
        self.metrics.sessions = len(self.sessions)
        self._events.append(events.SessionCreated(session_id))
        self._arm_sweep(now)
        log.debug("session %s created, ufrag %s", session_id, ufrag)
        return session_id, answer

    def restart_ice(self, session_id: str, sdpfrag: str, now: float) -> str | None:
        """WHIP PATCH: new remote credentials restart ICE (new local ones too) and keep DTLS/SRTP.

        Returns the answer sdpfrag, or None when the fragment only trickles candidates."""
        session = self._session_or_404(session_id)
        try:
            ufrag, pwd, _candidates = parse_ice_sdpfrag(sdpfrag)
        except SdpError as exc:
            raise SignalingError(400, str(exc)) from None
        if ufrag is None or ufrag == session.remote_ufrag:
            return None
        if not pwd:
            raise SignalingError(400, "ICE restart fragment has a=ice-ufrag but no a=ice-pwd")
        session.remote_ufrag, session.remote_pwd = ufrag, pwd
        self.sessions.set_credentials(session, self._new_ufrag(), credentials.make_password(self._random_bytes))
        candidates = host_candidates((self.config.advertise_address, *self.config.extra_addresses), self.config.port)
        return build_ice_sdpfrag(session.ufrag, session.pwd, candidates, None)

    def close_session(self, session_id: str, now: float) -> None:
        session = self._session_or_404(session_id)
        if session.dtls.state is DtlsState.CONNECTED:
            session.dtls.close(now)
            self._flush_dtls(session)
        self._free(session, CloseReason.SIGNALING)

    # ---- data channels ----------------------------------------------------------------------

    def datachannel_offer(self, session_id: str) -> DataChannelOffer | None:
        """The session's data-channel offer; None for an unknown session or one without."""
        session = self.sessions.by_id.get(session_id)
        return session.app.get(DATACHANNEL) if session is not None else None

    def send_application_data(self, session_id: str, data: bytes) -> bool:
        """DTLS-encrypt one SCTP packet and queue it to the session's DTLS address.

        False when there is nothing to send it on (session gone, DTLS not connected): a
        packet for a dead association is lost like any datagram. A packet too large for one
        record raises DtlsError, as it is the caller's bug."""
        session = self.sessions.by_id.get(session_id)
        if session is None or session.dtls.state is not DtlsState.CONNECTED:
            return False
        session.dtls.send(data)
        self._flush_dtls(session)
        return True

    # ---- voice: the shell's side of each session's voice endpoint ---------------------------------

    def voice_endpoint(self, session_id: str) -> VoiceEndpoint | None:
        session = self.sessions.by_id.get(session_id)
        return session.voice if session is not None else None

    def voice_channel_opened(self, session_id: str, now: float) -> None:
        """The client's events channel is open: the voice events queued so far may go out."""
        session = self.sessions.by_id.get(session_id)
        if session is not None and session.voice is not None:
            session.voice_channel_open = True
            self._flush_voice(session, session.voice, now)

    def voice_event(self, session_id: str, text: str | bytes, now: float) -> None:
        """A client event from the events channel."""
        session = self.sessions.by_id.get(session_id)
        if session is not None and session.voice is not None:
            session.voice.receive_event(text, now)
            self._flush_voice(session, session.voice, now)

    def voice_input(self, session_id: str, now: float) -> None:
        """The model driver fed the conversation: send what became due."""
        session = self.sessions.by_id.get(session_id)
        if session is not None and session.voice is not None:
            self._flush_voice(session, session.voice, now)

    def _flush_voice(self, session: Session, voice: VoiceEndpoint, now: float) -> None:
        """Send what `voice` (the session's endpoint) has ready: audio, events, model actions."""
        target = self._destination(session)
        srtp = session.srtp  # keyed on entering CONNECTED, before the endpoint was made: never None here
        for out in voice.audio_to_send():
            packet = session.outbound.packetize(session.audio_payload_type, out.payload, out.timestamp, out.marker)
            if target is not None and srtp is not None:
                self._send(srtp.protect_rtp(packet), target, "srtp")
                self._first_response(session, now)
        if session.voice_channel_open:
            for text in voice.events_to_send():
                self._events.append(events.VoiceMessage(session.id, text))
        elif DATACHANNEL not in session.app:
            voice.events_to_send()  # no events channel was offered: nobody to tell
        while (action := voice.next_action()) is not None:
            self._events.append(events.VoiceAction(session.id, action))
        for timing in voice.timings_to_report():
            for part in ("stop_to_first_audio", "model_think", "server_share"):
                value = getattr(timing, part)
                if value is not None:
                    self.metrics.voice[part].observe(value)
        timer = voice.get_timer()
        if timer != session.voice_timer:
            session.voice_timer = timer
            if timer is not None:
                heapq.heappush(self._voice_timers, (timer, session.id))

    def _live_voice_timer(self) -> float | None:
        heap = self._voice_timers
        while heap:
            at, session_id = heap[0]
            session = self.sessions.by_id.get(session_id)
            if session is not None and session.voice_timer == at:
                return at
            heapq.heappop(heap)
        return None

    def _session_or_404(self, session_id: str) -> Session:
        session = self.sessions.by_id.get(session_id)
        if session is None:
            raise SignalingError(404, f"no session {session_id}")
        return session

    @property
    def _answer_setup(self) -> str:
        return "passive" if self.config.dtls_role == "server" else "active"

    def _new_ufrag(self) -> str:
        while True:
            ufrag = credentials.make_ufrag(self.config.worker_id, self._routing_secret, self._random_bytes)
            if ufrag not in self.sessions.by_ufrag:
                return ufrag

    # ---- outputs --------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> events.Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        timer = self._next_sweep
        voice = self._live_voice_timer()
        if voice is not None and (timer is None or voice < timer):
            timer = voice
        for session in self._handshaking:
            t = session.dtls.get_timer()
            if t is not None and (timer is None or t < timer):
                timer = t
        return timer

    # ---- inputs ---------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        try:
            kind = classify(data)
        except DemuxError as exc:
            self._drop(exc.reason, address)
            return
        received = self.metrics.packets_received
        try:
            if kind is _RTP:
                received["rtp"] += 1
                self._receive_rtp(data, address, now)
            elif kind is _STUN:
                received["stun"] += 1
                self._receive_stun(data, address, now)
            elif kind is _RTCP:
                received["rtcp"] += 1
                self._receive_rtcp(data, address, now)
            else:
                received["dtls"] += 1
                self._receive_dtls(data, address, now)
        except Exception:  # the datagram path never raises: count, log, keep serving
            log.exception("internal error handling a %s datagram from %s", kind.name, address)
            self._drop(DropReason.INTERNAL_ERROR, address)

    def handle_timer(self, now: float) -> None:
        for session in list(self._handshaking):
            t = session.dtls.get_timer()
            if t is not None and t <= now:
                session.dtls.handle_timer(now)
                self._after_dtls_input(session, now)
        while (at := self._live_voice_timer()) is not None and at <= now:
            session = self.sessions.by_id[heapq.heappop(self._voice_timers)[1]]
            session.voice_timer = None
            if session.voice is not None:  # a voice timer is only ever armed by a session's endpoint
                session.voice.handle_timer(now)
                self._flush_voice(session, session.voice, now)
        if self._next_sweep is not None and now >= self._next_sweep:
            self._sweep(now)

    # ---- STUN / ICE-lite --------------------------------------------------------------------

    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        try:
            msg = stun.parse(data)
        except stun.StunError as exc:
            self._drop(DropReason.STUN_MALFORMED, address, exc)
            return
        if msg.method != stun.BINDING:
            self._drop(DropReason.STUN_UNSUPPORTED_METHOD, address)
            return
        if msg.msg_class == stun.INDICATION:
            return  # RFC 7675 keepalives: no response, and they refresh nothing
        if msg.msg_class != stun.REQUEST:
            self._drop(DropReason.STUN_UNEXPECTED_RESPONSE, address)  # a lite agent sends no checks
            return
        if msg.fingerprint_offset is None:
            self._drop(DropReason.STUN_NO_FINGERPRINT, address)
            return
        if not stun.fingerprint_ok(data, msg):
            self._drop(DropReason.STUN_BAD_FINGERPRINT, address)
            return
        username = msg.get(stun.USERNAME)
        if username is None or msg.integrity_offset is None:
            self._refuse(data, msg, address, now, DropReason.STUN_BAD_REQUEST, 400, "Bad Request")
            return
        local_ufrag = username.partition(b":")[0].decode("utf-8", "replace")
        session = self.sessions.by_ufrag.get(local_ufrag)
        if session is None:
            self._drop(DropReason.STUN_UNKNOWN_UFRAG, address)  # silence: no enumeration, no reflection
            return
        key = session.pwd.encode()
        if not stun.integrity_ok(data, msg, key):
            self._refuse(data, msg, address, now, DropReason.STUN_BAD_INTEGRITY, 401, "Unauthorized")
            return
        # Authenticated from here on.
        unknown = msg.unknown_comprehension_required()
        if unknown:
            self._drop(DropReason.STUN_UNKNOWN_ATTRIBUTE, address)
            self._reply_error(data, msg, address, 420, "Unknown Attribute", key=key,
                              extra=[(stun.UNKNOWN_ATTRIBUTES, stun.unknown_attributes(unknown))])
            return
        if msg.get(stun.ICE_CONTROLLED) is not None or msg.get(stun.ICE_CONTROLLING) is None:
            # A lite agent is always controlled; a peer claiming that role too must switch.
            self._drop(DropReason.STUN_ROLE_CONFLICT, address)
            self._reply_error(data, msg, address, 487, "Role Conflict", key=key)
            return
        self._authenticated_check(session, msg, address, now)
        response = stun.build(stun.BINDING, stun.SUCCESS, msg.transaction_id,
                              [(stun.XOR_MAPPED_ADDRESS, stun.xor_address(address[0], address[1], msg.transaction_id))],
                              integrity_key=key)
        self._send(response, address, "stun")
        if session.phase is SessionPhase.SELECTED and not session.dtls.is_server:
            self._start_dtls_client(session, now)  # SELECTED: its endpoint is still NEW

    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        if session.phase is SessionPhase.OFFERED:
            self._advance(session, SessionPhase.CHECKED)
            session.first_stun_at = now
            self._observe("signaling_to_first_stun", now - session.created_at)
        session.last_check = now
        for evicted in self.sessions.bind(session, address, now, self.config.max_tuples_per_session):
            log.debug("session %s: evicted tuple %s", session.id, evicted)
        if msg.get(stun.USE_CANDIDATE) is not None and session.selected != address:
            if session.selected is None:
                if session.first_stun_at is not None:  # set when the session left OFFERED, above or earlier
                    self._observe("first_stun_to_selected", now - session.first_stun_at)
                session.selected_at = now
            session.selected = address  # the latest nomination wins (ICE-05)
            if session.phase is SessionPhase.CHECKED:
                self._advance(session, SessionPhase.SELECTED)
            self._events.append(events.PairSelected(session.id, address))
        self.metrics.bound_tuples = len(self.sessions.by_address)

    def _refuse(self, data: bytes, msg: stun.StunMessage, address: Address, now: float, reason: DropReason,
                code: int, phrase: str) -> None:
        """Drop an unauthenticated request with an error response while the budget lasts, else
        silently: a flood of them must not make the core build and send a reply for each."""
        if not self._stun_error_budget.take(now):
            self._drop(DropReason.STUN_ERROR_RATE_LIMITED, address)
            return
        self._drop(reason, address)
        self._reply_error(data, msg, address, code, phrase, key=None)

    def _reply_error(self, data: bytes, msg: stun.StunMessage, address: Address, code: int, reason: str,
                     *, key: bytes | None, extra: Sequence[tuple[int, bytes]] = ()) -> None:
        attributes = [(stun.ERROR_CODE, stun.error_code(code, reason)), *extra]
        response = stun.build(stun.BINDING, stun.ERROR, msg.transaction_id, attributes, integrity_key=key)
        if key is None and len(response) > len(data):
            # Unauthenticated: never answer with more bytes than we got (no amplification).
            attributes[0] = (stun.ERROR_CODE, stun.error_code(code, ""))
            response = stun.build(stun.BINDING, stun.ERROR, msg.transaction_id, attributes, integrity_key=None)
            if len(response) > len(data):
                return
        self._send(response, address, "stun")

    # ---- DTLS -------------------------------------------------------------------------------

    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is None:
            self._drop(DropReason.DTLS_UNBOUND, address)
            return
        session.dtls_address = address
        session.dtls.receive_datagram(data, now)
        self._after_dtls_input(session, now)

    def _start_dtls_client(self, session: Session, now: float) -> None:
        """DTLS client role: the ClientHello goes to the selected pair, after the check's answer."""
        session.dtls.start(now)
        self._after_dtls_input(session, now)

    def _after_dtls_input(self, session: Session, now: float) -> None:
        if session.phase in _BEFORE_DTLS and session.dtls.state is not DtlsState.NEW:
            # This input took the endpoint out of NEW. An OFFERED session cannot get here: DTLS
            # reaches a session only from a tuple an authenticated check bound (CHECKED), or as
            # DTLS client after a nomination (SELECTED).
            self._advance(session, SessionPhase.DTLS_HANDSHAKING)
        self._flush_dtls(session)
        while (event := session.dtls.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                # Legal by construction: an endpoint completes once, from HANDSHAKING, and the
                # session followed it into DTLS_HANDSHAKING above (on this input or an earlier one).
                self._advance(session, SessionPhase.CONNECTED)
                session.srtp = SrtpSession.from_keying_material(event.srtp_profile, event.keying_material,
                                                                is_server=session.dtls.is_server)
                session.dtls_at = now
                session.next_report_at = now + self.config.rtcp_interval
                if session.selected_at is not None:
                    self._observe("selected_to_dtls", now - session.selected_at)
                self._events.append(events.DtlsConnected(session.id, event.srtp_profile, event.cipher))
                if self._voice_factory is not None:
                    session.voice = self._voice_factory(session.id, now)
                    self._events.append(events.VoiceStarted(session.id))
                    self._flush_voice(session, session.voice, now)
            elif isinstance(event, HandshakeFailed):
                log.info("session %s: DTLS handshake failed: %s", session.id, event.reason)
                self._free(session, CloseReason.DTLS_FAILED)
                return
            elif isinstance(event, Closed):
                self._free(session, CloseReason.DTLS_CLOSED)
                return
            elif isinstance(event, ApplicationData):
                if DATACHANNEL in session.app:
                    self._events.append(events.DataChannelBytes(session.id, event.data))
                else:
                    self._drop(DropReason.DTLS_APPLICATION_DATA, session.dtls_address)  # no data channel offered

    def _flush_dtls(self, session: Session) -> None:
        target = self._destination(session)
        for datagram in session.dtls.datagrams_to_send():
            if target is not None:
                self._send(datagram, target, "dtls")

    def _destination(self, session: Session) -> Address | None:
        """Where server-initiated packets of a session go: the selected tuple, else the tuple DTLS
        last came from; only while that tuple is still bound to this session (a NAT may have
        handed it to another client, or it may have been evicted)."""
        for address in (session.selected, session.dtls_address):
            if address is not None and self.sessions.by_address.get(address) is session:
                return address
        return None

    # ---- SRTP media ---------------------------------------------------------------------------

    def _media_session(self, address: Address, unbound: DropReason,
                       before_dtls: DropReason) -> tuple[Session, SrtpSession] | None:
        """The session whose SRTP checks a media datagram from `address`, with its SRTP keys;
        or None (dropped with the reason given for that case)."""
        session = self.sessions.by_address.get(address)
        if session is None:
            self._drop(unbound, address)  # RTP Bleed: unbound tuples never steer media
            return None
        srtp = session.srtp  # set on entering CONNECTED
        if session.phase is not SessionPhase.CONNECTED or srtp is None:
            self._drop(before_dtls, address)
            return None
        return session, srtp

    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        media = self._media_session(address, DropReason.RTP_UNBOUND, DropReason.RTP_BEFORE_DTLS)
        if media is None:
            return
        session, srtp = media
        try:
            plain = srtp.unprotect_rtp(data)
        except SrtpError as exc:
            self._drop(DropReason.SRTP_UNPROTECT_FAILED, address, exc)
            return
        sequence, timestamp, ssrc = _SEQUENCE_TIMESTAMP_SSRC.unpack_from(plain, 2)  # unprotect checked the length
        try:
            if session.voice is None:
                reply = session.outbound.reflect(plain, timestamp)
            else:
                packet = parse_rtp(plain)
        except RtpError as exc:
            self._drop(DropReason.RTP_MALFORMED, address, exc)
            return
        session.reception.update(ssrc, sequence, timestamp, now)
        if session.first_srtp_at is None:
            session.first_srtp_at = now
            if session.dtls_at is not None:
                self._observe("dtls_to_first_srtp", now - session.dtls_at)
            self._observe("signaling_to_first_srtp", now - session.created_at)
            self._events.append(events.MediaStarted(session.id))
        if session.voice is None:
            self._send(srtp.protect_rtp(reply), session.selected or address, "srtp")
            self._first_response(session, now)
        elif packet.payload_type != session.audio_payload_type:
            self._drop(DropReason.RTP_UNEXPECTED_PAYLOAD_TYPE, address)
        else:
            session.voice.receive_rtp(packet.sequence_number, packet.payload, now)
            self._flush_voice(session, session.voice, now)

    def _first_response(self, session: Session, now: float) -> None:
        if session.first_response_at is None and session.first_srtp_at is not None:
            session.first_response_at = now
            self._observe("first_srtp_to_first_response", now - session.first_srtp_at)

    def _receive_rtcp(self, data: bytes, address: Address, now: float) -> None:
        media = self._media_session(address, DropReason.RTCP_UNBOUND, DropReason.RTCP_BEFORE_DTLS)
        if media is None:
            return
        session, srtp = media
        try:
            plain = srtp.unprotect_rtcp(data)
        except SrtpError as exc:
            self._drop(DropReason.SRTCP_UNPROTECT_FAILED, address, exc)
            return
        try:
            packets = parse_rtcp(plain)
        except RtpError as exc:
            self._drop(DropReason.RTCP_MALFORMED, address, exc)
            return
        for packet in packets:
            if isinstance(packet, SenderReport):
                session.reception.on_sender_report(packet.ntp_timestamp, now)

    def _send_report(self, session: Session, now: float) -> None:
        block = session.reception.report_block(now)
        reports = [block] if block is not None else []
        stream = session.outbound
        report: SenderReport | ReceiverReport
        if stream.packets_sent:
            unix = now + self.config.wall_clock_offset
            report = SenderReport(ssrc=stream.ssrc, ntp_timestamp=ntp_timestamp(unix + NTP_UNIX_OFFSET),
                                  rtp_timestamp=stream.last_timestamp, packet_count=stream.packets_sent & 0xFFFFFFFF,
                                  octet_count=stream.octets_sent & 0xFFFFFFFF, reports=reports)
        else:
            report = ReceiverReport(ssrc=stream.ssrc, reports=reports)
        target = self._destination(session)
        if target is not None and session.srtp is not None:  # reports start on entering CONNECTED, SRTP keyed
            self._send(session.srtp.protect_rtcp(serialize_rtcp([report])), target, "srtcp")

    # ---- time -------------------------------------------------------------------------------

    def _arm_sweep(self, now: float) -> None:
        if self._next_sweep is None:
            self._next_sweep = now + SWEEP_INTERVAL

    def _sweep(self, now: float) -> None:
        """Once a second: consent and connect timeouts, stale tuples, RTCP reports."""
        consent_deadline = now - self.config.consent_timeout
        for session in list(self.sessions.by_id.values()):
            if session.phase is not SessionPhase.CONNECTED:
                if now - session.created_at >= self.config.connect_timeout:
                    self._free(session, CloseReason.CONNECT_TIMEOUT)
                continue
            if session.last_check is None or session.last_check <= consent_deadline:
                self._free(session, CloseReason.CONSENT_TIMEOUT)
                continue
            self.sessions.unbind_stale(session, consent_deadline)
            if session.next_report_at is not None and now >= session.next_report_at:
                session.next_report_at = now + self.config.rtcp_interval
                self._send_report(session, now)
        self.metrics.bound_tuples = len(self.sessions.by_address)
        self._next_sweep = now + SWEEP_INTERVAL if len(self.sessions) else None

    # ---- helpers ------------------------------------------------------------------------------

    def _free(self, session: Session, reason: CloseReason) -> None:
        if session.phase is SessionPhase.CLOSED:
            return
        self._advance(session, SessionPhase.CLOSED)
        self.sessions.remove(session)
        self.metrics.sessions = len(self.sessions)
        self.metrics.bound_tuples = len(self.sessions.by_address)
        self.metrics.sessions_closed[reason] += 1
        self._events.append(events.SessionClosed(session.id, reason))
        log.debug("session %s freed: %s", session.id, reason)

    def _send(self, data: bytes, address: Address, kind: str) -> None:
        self._outbox.append((data, address))
        self.metrics.packets_sent[kind] += 1

    def _drop(self, reason: DropReason, address: Address | None, detail: object = "") -> None:
        """Count a drop; `detail` (an exception, say) becomes text only when debug logging is on."""
        self.metrics.drops[reason] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("drop %s from %s%s", reason, address, f": {detail}" if detail else "")

    def _advance(self, session: Session, to: SessionPhase) -> None:
        """Every phase change of the core, so that `_handshaking` holds the DTLS_HANDSHAKING sessions."""
        session.advance(to)
        if to is SessionPhase.DTLS_HANDSHAKING:
            self._handshaking.add(session)
        else:
            self._handshaking.discard(session)

    def _observe(self, phase: str, seconds: float) -> None:
        self.metrics.phases[phase].observe(seconds)
