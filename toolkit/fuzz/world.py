"""A whole ServerCore on a fake clock, with probe peers, for the stateful fuzz targets.

Setting up costs milliseconds (certificates, DTLS handshakes), a fuzz input microseconds,
so a world serves `lifetime` inputs before it is rebuilt, and sooner once no session is
left. Between rebuilds state carries over from input to input; a finding that needs that
state shows up in triage as not reproducing alone.

The world is also the judge of its own invariants, checked after every datagram:
nothing escapes the core as an internal error; only addresses that sent an authentic
check (judged by toolkit.fuzz.stunkit, not by the server's codec) are bound; STUN answers
go back to the sender and, unauthenticated, are no larger than the request; SRTP goes
only to bound addresses and decrypts with the keys of the session that owns them.
"""
from __future__ import annotations

import logging
import os
import random

from reference_server.certificate import Certificate
from reference_server.core import CoreConfig, ServerCore
from toolkit.peer import dtls as peer_dtls
from toolkit.peer.core import ProbePeer

from . import stunkit

SERVER = ("127.0.0.1", 3478)
_CERTIFICATE = Certificate.generate(common_name="rtcgate-fuzz")


class InvariantViolation(AssertionError):
    """The server did something the world's rules forbid; `code` names the rule.

    Codes listed in $RTCGATE_FUZZ_WAIVE (comma-separated) are not raised: a way to keep a
    campaign going past a known, reported finding until it is fixed.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code


def violation(code: str, message: str) -> None:
    if code not in _WAIVED:
        raise InvariantViolation(code, message)


_WAIVED = frozenset(item.strip() for item in os.environ.get("RTCGATE_FUZZ_WAIVE", "").split(",") if item.strip())


class _InternalErrors(logging.Handler):
    """Keeps the exceptions the core logs as internal errors, so the target can re-raise them
    with their own traceback (triage groups findings by the frames where they happened)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


_internal_errors = _InternalErrors()
_server_log = logging.getLogger("rtcgate.server")
_server_log.addHandler(_internal_errors)
_server_log.propagate = False


def home(index: int) -> tuple[str, int]:
    """Where connected peer `index` sits."""
    return ("127.0.0.1", 40000 + index)


_peer_certificates: dict[int, tuple] = {}


def probe_peer(index: int) -> ProbePeer:
    """The probe peer for slot `index`, with the same credentials every time and a certificate
    made once per slot (a browser keeps its RTCCertificate across sessions too): generating a
    key pair was an eighth of what reopening a connected session cost."""
    generate = peer_dtls.self_signed_certificate

    def slot_certificate(rng: random.Random):
        if index not in _peer_certificates:
            _peer_certificates[index] = generate(rng)
        else:
            rng.getrandbits(63)  # the serial number: later draws (offer ids) stay as they were
        return _peer_certificates[index]

    peer_dtls.self_signed_certificate = slot_certificate
    try:
        return ProbePeer(consent_interval=None, rng=random.Random(index + 1))
    finally:
        peer_dtls.self_signed_certificate = generate


class World:
    """`connected` peers with a DTLS-SRTP session each, at addresses[i], plus `pending`
    sessions created from an offer whose peer never starts (their handshake is up for grabs)."""

    def __init__(self, *, connected: int, pending: int, lifetime: int) -> None:
        self.connected = connected
        self.pending = pending
        self.lifetime = lifetime
        self.core: ServerCore | None = None
        self.inputs = 0
        self._connecting = False

    def reset(self) -> None:
        """Build a fresh core and peers (deterministic credentials, fresh DTLS keys)."""
        _internal_errors.errors.clear()
        self.now = 1000.0
        self.inputs = 0
        self.core = ServerCore(CoreConfig(advertise_address=SERVER[0], port=SERVER[1]), _CERTIFICATE,
                               random_bytes=random.Random(1).randbytes)
        count = self.connected + self.pending
        self.peers: list[ProbePeer] = [probe_peer(i) for i in range(count)]
        self.session_ids: list[str] = [""] * count
        self.peer_of: dict[str, ProbePeer] = {}
        self.peer_at: dict[tuple[str, int], ProbePeer] = {}
        self.authentic: set[tuple[str, tuple[str, int]]] = set()
        self._keepalives: list[bytes] = [b""] * self.connected
        for index in range(count):
            self._open(index)

    def begin_input(self) -> None:
        """Called before each fuzz input's steps. A live connected session gets a nominating
        check from its own address when its consent is getting old or its media moved, so
        inputs start from nearly the same state; sessions are reopened here only when the
        last input raised before its end_input."""
        if self.core is None or self.inputs >= self.lifetime:
            self.reset()
        self.inputs += 1
        self.reopen()
        for index, peer in enumerate(self.peers):
            session = self.core.sessions.by_id[self.session_ids[index]]
            while peer.next_event() is not None:
                pass
            if index < self.connected and (
                    session.selected != home(index) or self.now - (session.last_check or 0.0) > 10.0):
                self.deliver(self._keepalives[index], home(index))

    def end_input(self) -> None:
        """Called after each fuzz input's steps: the sessions it ended are opened again now (a
        connected one with a new peer and handshake, ~3 ms), so that cost is counted against
        the input that caused it, where libFuzzer's exec-time-scaled scheduling sees it."""
        self.reopen()

    def reopen(self) -> None:
        for index in range(len(self.peers)):
            if self.session_ids[index] not in self.core.sessions.by_id:
                self._open(index)

    def _open(self, index: int) -> None:
        """A session for peer `index`: connected ones get a new peer and a full ICE + DTLS
        setup from their home address; pending ones only a new session from an offer."""
        peer = self.peers[index]
        if index < self.connected and peer.state != "new":
            peer = self.peers[index] = probe_peer(index)
        session_id, answer = self.core.create_session(peer.create_offer(), self.now)
        if peer.answer is None:
            peer.set_answer(answer)
        self.peer_of.pop(self.session_ids[index], None)
        self.session_ids[index] = session_id
        self.peer_of[session_id] = peer
        if index < self.connected:
            self.peer_at[home(index)] = peer
            self._connect(peer, home(index))
            # Built once: the core keeps no transaction state, so one request serves every input.
            self._keepalives[index] = peer.binding_request()

    def session_credentials(self, index: int) -> tuple[str, str] | None:
        session = self.core.sessions.by_id.get(self.session_ids[index])
        return None if session is None else (session.ufrag, session.pwd)

    # ---- driving -----------------------------------------------------------------------------

    def deliver(self, data: bytes, source: tuple[str, int]) -> None:
        """One datagram into the core from `source`, then every invariant."""
        authentic = False
        if data[:1] and data[0] < 4:
            by_ufrag = self.core.sessions.by_ufrag
            ufrag = stunkit.authenticated_ufrag(data, {ufrag: session.pwd for ufrag, session in by_ufrag.items()})
            if ufrag is not None:
                self.authentic.add((by_ufrag[ufrag].id, source))
                authentic = True
        self.core.receive_datagram(data, source, self.now)
        self._after(data, source, authentic)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        timer = self.core.get_timer()
        if timer is not None and timer <= self.now:
            self.core.handle_timer(self.now)
            self._after(None, None, False)

    def _connect(self, peer: ProbePeer, address: tuple[str, int]) -> None:
        self._connecting = True
        peer.start(self.now)
        for _ in range(20):
            outgoing = peer.datagrams_to_send()
            if not outgoing:
                break
            for data, _ in outgoing:
                self.deliver(data, address)
        self._connecting = False
        if peer.state != "connected":
            raise RuntimeError(f"fuzz world: probe peer did not connect ({peer.state})")

    # ---- invariants ---------------------------------------------------------------------------

    def _after(self, request: bytes | None, source: tuple[str, int] | None, authentic: bool) -> None:
        core = self.core
        if core.metrics.drops["internal_error"]:
            if _internal_errors.errors:
                raise _internal_errors.errors[0]
            violation("internal-error", "internal_error counted without a logged exception")
        for data, to in core.datagrams_to_send():
            first = data[0]
            if first < 4:
                if to != source:
                    violation("stun-misrouted", f"STUN response went to {to}, the request came from {source}")
                if not authentic and len(data) > len(request):
                    violation("stun-amplification",
                               f"{len(data)}-byte STUN answer to a {len(request)}-byte unauthenticated request")
                if not self._connecting:
                    continue  # connected peers need no answers to checks
            elif 128 <= first <= 191:
                self._check_media(data, to, timer=source is None)
                continue
            elif not any(address == to for _, address in self.authentic):
                violation("dtls-unauthenticated", f"DTLS sent to {to}, which never sent an authentic check")
            peer = self.peer_at.get(to)
            if peer is not None:
                peer.receive_datagram(data, SERVER, self.now)
        for address, session in core.sessions.by_address.items():
            if (session.id, address) not in self.authentic:
                violation("bound-without-check", f"{address} is bound to session {session.id} without an authentic check")

    def _check_media(self, data: bytes, to: tuple[str, int], *, timer: bool) -> None:
        """Timer-driven output (RTCP reports) gets its own codes: it is routed from stored
        session state, not from the datagram being answered."""
        owner = self.core.sessions.by_address.get(to)
        if owner is None:
            violation("report-unbound" if timer else "media-unbound", f"SRTP sent to {to}, which is bound to no session")
            return
        peer = self.peer_of[owner.id]
        if peer.state != "connected":
            return
        drops = sum(peer.drops.values())
        peer.receive_datagram(data, SERVER, self.now)
        if sum(peer.drops.values()) != drops:
            violation("report-crosses-sessions" if timer else "media-crosses-sessions",
                       f"SRTP sent to {to} does not decrypt with the keys of session {owner.id}, which owns it")
