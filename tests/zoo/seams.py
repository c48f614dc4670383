"""How variants reach into the reference server without adding code paths to it.

A variant is one declaration of its bug. The shapes bugs keep taking have one helper each here, so
a variant says only what differs from the reference server:

- a part swapped in whole: a `DtlsEndpoint`, `ZooSrtpSession`, `SessionTable`, `VoiceEndpoint` or
  `Conversation` subclass is a variant by itself (`core_with` and `voice_endpoint_with` build around it), and
  `dtls_core` serves with a reference DTLS context built with one setting changed;
- a hook on one step of the core: a handler that shows each datagram to the hook first
  (`intercept`, with what variants ask of a datagram at hand in `Datagram`), a datagram that ends
  its session instead (`ends_session_when`), a drop that does (`ends_session_on_drop`), and hooks
  after a drop (`after_drop`), before a session is freed (`before_free`), after an authenticated
  check (`after_check`), on the answer to an offer (`rewrite_answer`) and after an ICE restart
  (`after_ice_restart`);
- the RTP packet being handled, known while it is (`RtpInFlightCore`, which can send its echo
  elsewhere), and SRTP failures taken after all (`accepts_failed`);
- moving a session's phase where the reference server's transition table never goes
  (`back_before_dtls`, `start_dtls_over`), rebuilding a STUN message the way a buggy parser would have read it
  (`rebuilt`), state a variant keeps per instance (`per_instance`), and the crash of a server
  written in C (`crash`).

Each hook helper decorates a function and returns a `ServerCore` subclass named after it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NoReturn, TypeVar
from unittest import mock

import pylibsrtp
from OpenSSL import SSL

from reference_server import srtp, stun
from reference_server.certificate import Certificate
from reference_server.core import ServerCore
from reference_server.dtls import DtlsContext, DtlsEndpoint
from reference_server.events import Address
from reference_server.sessions import Session, SessionPhase, SessionTable
from reference_server.srtp import PROFILES, SrtpError, SrtpSession
from reference_server.voice.conversation import Conversation
from reference_server.voice.endpoint import VoiceEndpoint

CRASH_EXIT = 70
"""Exit status of a modelled crash (EX_SOFTWARE)."""

DTLS_SRTP_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2

T = TypeVar("T")


def crash(what: str) -> NoReturn:
    """A crash of a server written in C (a segfault): the process ends at once, mid-datagram."""
    print(f"zoo: the variant crashed: {what}", file=sys.stderr, flush=True)
    os._exit(CRASH_EXIT)


def per_instance(factory: Callable[[], T]) -> T:
    """A class attribute that each instance gets its own `factory()` of, on first use: the state a
    variant keeps (a table, a set) without an `__init__` that only makes it."""
    return cached_property(lambda _self: factory())  # type: ignore[return-value]


def _named(cls: type[T], hook: Callable) -> type[T]:
    """`cls`, named and documented after the hook it was made from."""
    cls.__name__ = cls.__qualname__ = hook.__name__
    cls.__module__, cls.__doc__ = hook.__module__, hook.__doc__
    return cls


# -- hooks on the core's steps ---------------------------------------------------------------------


@dataclass
class Datagram:
    """A datagram on its way into one of the core's handlers, with what variants ask of it."""

    core: ServerCore
    data: bytes
    source: Address
    now: float

    @cached_property
    def session(self) -> Session | None:
        """The session the source address is bound to."""
        return self.core.sessions.by_address.get(self.source)

    @cached_property
    def stun(self) -> stun.StunMessage | None:
        """The datagram as a STUN message, None if it does not parse as one."""
        return parse_stun(self.data)

    @cached_property
    def addressed(self) -> Session | None:
        """The session whose ufrag the STUN message's USERNAME names."""
        return addressed_session(self.core, self.stun) if self.stun is not None else None

    def resigned(self, **changes: Any) -> bytes:
        """The STUN message as the addressed session's peer would have signed it (see `rebuilt`)."""
        return rebuilt(self.stun, self.addressed.pwd.encode(), **changes)


DatagramHook = Callable[[Datagram], "bytes | None"]


def intercept(handler: str) -> Callable[[DatagramHook], type[ServerCore]]:
    """A core whose `handler` (`receive_datagram`, `_receive_stun`, `_receive_dtls`, `_receive_rtp`
    or `_receive_rtcp`) shows each datagram to the decorated hook first: the bytes the hook returns
    go on to the reference handler; None means the hook took the datagram."""

    def make(hook: DatagramHook) -> type[ServerCore]:
        class Intercepting(ServerCore):
            pass

        def handle(self: ServerCore, data: bytes, address: Address, now: float) -> None:
            passed_on = hook(Datagram(self, data, address, now))
            if passed_on is not None:
                getattr(super(Intercepting, self), handler)(passed_on, address, now)

        setattr(Intercepting, handler, handle)
        return _named(Intercepting, hook)

    return make


def ends_session_when(handler: str, reason: str, *, close_notify: bool = False
                      ) -> Callable[[Callable[[Datagram], bool]], type[ServerCore]]:
    """A core in which a datagram that the decorated predicate picks, from an address bound to a
    session, ends that session (close reason `reason`; after a close_notify if `close_notify`)
    instead of reaching `handler`."""

    def make(predicate: Callable[[Datagram], bool]) -> type[ServerCore]:
        def hook(datagram: Datagram) -> bytes | None:
            session = datagram.session
            if session is None or not predicate(datagram):
                return datagram.data
            if close_notify:
                session.dtls.close(datagram.now)
                datagram.core._flush_dtls(session)
            datagram.core._free(session, reason)
            return None

        hook.__name__, hook.__module__, hook.__doc__ = predicate.__name__, predicate.__module__, predicate.__doc__
        return intercept(handler)(hook)

    return make


def after_drop(hook: Callable[[ServerCore, str, Address | None, object], None]) -> type[ServerCore]:
    """A core that calls `hook(core, reason, address, detail)` after counting each drop."""

    class AfterDrop(ServerCore):
        def _drop(self, reason: str, address: Address | None, detail: object = "") -> None:
            super()._drop(reason, address, detail)
            hook(self, reason, address, detail)

    return _named(AfterDrop, hook)


def ends_session_on_drop(drop_reason: str, close_reason: str) -> type[ServerCore]:
    """A core in which a datagram dropped for `drop_reason` ends the session of its address."""

    def ends_session(core: ServerCore, reason: str, address: Address | None, _detail: object) -> None:
        session = core.sessions.by_address.get(address) if reason == drop_reason else None
        if session is not None:
            core._free(session, close_reason)

    ends_session.__name__ = f"ends_session_on_{drop_reason}"
    return after_drop(ends_session)


def before_free(hook: Callable[[ServerCore, Session, str], bool]) -> type[ServerCore]:
    """A core that asks `hook(core, session, reason)` before freeing a session: False keeps it."""

    class BeforeFree(ServerCore):
        def _free(self, session: Session, reason: str) -> None:
            if hook(self, session, reason):
                super()._free(session, reason)

    return _named(BeforeFree, hook)


@dataclass(frozen=True)
class AuthenticatedCheck:
    """A connectivity check the reference core has just taken, and the session as it was before."""

    session: Session
    msg: stun.StunMessage
    address: Address
    selected_before: Address | None
    new_address: bool
    """Whether the check bound its source address to the session for the first time."""

    def keep_earlier_selection(self, core: ServerCore) -> None:
        """Undo the check's nomination: the pair selected before it stays selected (if still bound)."""
        if self.selected_before is not None and core.sessions.by_address.get(self.selected_before) is self.session:
            self.session.selected = self.selected_before


def after_check(hook: Callable[[ServerCore, AuthenticatedCheck], None]) -> type[ServerCore]:
    """A core that calls `hook(core, check)` after each authenticated connectivity check."""

    class AfterCheck(ServerCore):
        def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address,
                                 now: float) -> None:
            check = AuthenticatedCheck(session, msg, address, session.selected, address not in session.tuples)
            super()._authenticated_check(session, msg, address, now)
            hook(self, check)

    return _named(AfterCheck, hook)


def rewrite_answer(hook: Callable[[ServerCore, Session, str], str]) -> type[ServerCore]:
    """A core whose SDP answer to each offer is `hook(core, session, answer)`."""

    class RewritingAnswers(ServerCore):
        def create_session(self, offer_sdp: str, now: float) -> tuple[str, str]:
            session_id, answer = super().create_session(offer_sdp, now)
            return session_id, hook(self, self.sessions.by_id[session_id], answer)

    return _named(RewritingAnswers, hook)


def after_ice_restart(hook: Callable[[ServerCore, Session], None]) -> type[ServerCore]:
    """A core that calls `hook(core, session)` after each ICE restart it accepts."""

    class AfterIceRestart(ServerCore):
        def restart_ice(self, session_id: str, sdpfrag: str, now: float) -> str | None:
            answer = super().restart_ice(session_id, sdpfrag, now)
            if answer is not None:
                hook(self, self.sessions.by_id[session_id])
            return answer

    return _named(AfterIceRestart, hook)


class RtpInFlightCore(ServerCore):
    """Knows the RTP datagram it is handling (`rtp_in_flight`, None outside `_receive_rtp`), and
    sends the SRTP echo of it to `echo_address(rtp, address)` instead of `address`."""

    rtp_in_flight: Datagram | None = None

    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        self.rtp_in_flight = Datagram(self, data, address, now)
        try:
            super()._receive_rtp(data, address, now)
        finally:
            self.rtp_in_flight = None

    def _send(self, data: bytes, address: Address, kind: str) -> None:
        if kind == "srtp" and self.rtp_in_flight is not None:
            address = self.echo_address(self.rtp_in_flight, address)
        super()._send(data, address, kind)

    def echo_address(self, rtp: Datagram, address: Address) -> Address:
        return address


# -- DTLS -------------------------------------------------------------------------------------


def fresh_dtls_endpoint(core: ServerCore, session: Session, endpoint_class: type[DtlsEndpoint] = DtlsEndpoint
                        ) -> DtlsEndpoint:
    """A new endpoint for `session`: same context, offer fingerprints, role and MTU."""
    old = session.dtls
    return endpoint_class(core._dtls_context, old._peer_check.fingerprints, is_server=old.is_server, mtu=old.mtu)


def back_before_dtls(session: Session) -> None:
    """Put a session back in the phase it had before its DTLS began (SELECTED, or CHECKED while no
    pair is nominated): the step back of a server that starts DTLS over, which the reference
    server's transition table does not have. Media waits for the next handshake again."""
    session._phase = SessionPhase.SELECTED if session.selected is not None else SessionPhase.CHECKED


def start_dtls_over(core: ServerCore, session: Session) -> None:
    """Give a session a new DTLS endpoint (state NEW) and put it back before its DTLS began; the
    SRTP keys in use stay until the caller drops them."""
    session.dtls = fresh_dtls_endpoint(core, session)
    back_before_dtls(session)


def dtls_context_with(certificate: Certificate, *, keylog: Callable[[bytes], None] | None = None,
                      srtp_profiles: tuple[str, ...] | None = None, use_srtp: bool = True,
                      options: Callable[[int], int] | None = None, verify_peer: bool = True) -> DtlsContext:
    """The reference DTLS context, built offering only `srtp_profiles`, with the use_srtp extension
    left out (`use_srtp=False`), with its SSL options passed through `options`, or asking for no
    peer certificate (`verify_peer=False`). pyOpenSSL can take neither use_srtp nor an option back
    once set, so the reference's own calls are changed while it builds the context."""
    set_options, set_use_srtp = SSL.Context.set_options, SSL.Context.set_tlsext_use_srtp
    with (mock.patch.object(SSL.Context, "set_options",
                            lambda context, given: set_options(context, options(given) if options else given)),
          mock.patch.object(SSL.Context, "set_tlsext_use_srtp",
                            lambda context, profiles: set_use_srtp(context, profiles) if use_srtp else None)):
        context = DtlsContext(certificate, keylog=keylog, **({"srtp_profiles": srtp_profiles} if srtp_profiles else {}))
    if not verify_peer:
        context._ssl_context.set_verify(SSL.VERIFY_NONE)
    return context


class DtlsCore(ServerCore):
    """Serves with the DTLS context `dtls_context_with(**dtls_context_settings)` builds, and gives
    every session a `dtls_endpoint_class` endpoint."""

    dtls_endpoint_class: type[DtlsEndpoint] = DtlsEndpoint
    dtls_context_settings: dict[str, Any] = {}

    def __init__(self, config, certificate: Certificate, **kwargs) -> None:
        super().__init__(config, certificate, **kwargs)
        if self.dtls_context_settings:
            self._dtls_context = dtls_context_with(certificate, keylog=kwargs.get("keylog"),
                                                   **self.dtls_context_settings)

    def create_session(self, offer_sdp: str, now: float) -> tuple[str, str]:
        session_id, answer = super().create_session(offer_sdp, now)
        session = self.sessions.by_id[session_id]
        session.dtls = fresh_dtls_endpoint(self, session, self.dtls_endpoint_class)
        return session_id, answer


def dtls_core(endpoint_class: type[DtlsEndpoint] = DtlsEndpoint, **context_settings: Any) -> type[DtlsCore]:
    """A core with `endpoint_class` endpoints and a context built by `dtls_context_with(**context_settings)`."""
    return type(f"{endpoint_class.__name__}Core", (DtlsCore,),
                {"__module__": endpoint_class.__module__, "dtls_endpoint_class": endpoint_class,
                 "dtls_context_settings": context_settings})


# -- SRTP -------------------------------------------------------------------------------------


class ZooSrtpSession(SrtpSession):
    """An SrtpSession that also keeps the client's master key and salt, so a variant can decrypt
    the way a buggy receiver would (without the replay window, without the tag); its replay window
    is `replay_window` packets."""

    replay_window = 1024
    client_master: bytes = b""

    @classmethod
    def from_keying_material(cls, profile: str, material: bytes, *, is_server: bool,
                             replay_window: int | None = None) -> ZooSrtpSession:
        session = super().from_keying_material(profile, material, is_server=is_server,
                                               replay_window=replay_window or cls.replay_window)
        key_length, salt_length = PROFILES[profile]
        session.client_master = (material[:key_length]
                                 + material[2 * key_length: 2 * key_length + salt_length])
        return session

    @property
    def tag_length(self) -> int:
        return self._rtp_tag_length

    def _client_policy(self, ssrc_type: int) -> pylibsrtp.Session:
        return pylibsrtp.Session(pylibsrtp.Policy(key=self.client_master, ssrc_type=ssrc_type,
                                                  srtp_profile=srtp._LIBSRTP_PROFILES[self.profile]))

    def unprotect_statelessly(self, packet: bytes) -> bytes:
        """Authenticate and decrypt with a fresh receive context: no replay window, rollover counter 0."""
        try:
            return self._client_policy(pylibsrtp.Policy.SSRC_ANY_INBOUND).unprotect(packet)
        except pylibsrtp.Error as error:
            raise SrtpError(f"unprotect RTP failed: {error}") from None

    def decrypt_unauthenticated(self, packet: bytes) -> bytes:
        """The plain RTP packet, its tag unchecked (rollover counter 0).

        Both profiles encrypt with a counter-mode keystream, so protecting the ciphertext again
        with the sender's key and the same index XORs the keystream back out; the tag that
        protection appends is cut off."""
        body = packet[: len(packet) - self.tag_length]
        return self._client_policy(pylibsrtp.Policy.SSRC_ANY_OUTBOUND).protect(body)[: len(body)]


def accepts_failed(failure: str, recover: Callable[[ZooSrtpSession, bytes], bytes], *,
                   replay_window: int = ZooSrtpSession.replay_window) -> type[ZooSrtpSession]:
    """An SRTP session that takes an RTP packet whose unprotecting failed with an error saying
    `failure` ("" for any error) after all, as `recover(session, packet)` reads it."""

    class AcceptsFailed(ZooSrtpSession):
        def unprotect_rtp(self, packet: bytes) -> bytes:
            try:
                return super().unprotect_rtp(packet)
            except SrtpError as error:
                if failure not in str(error):
                    raise
                return recover(self, packet)

    AcceptsFailed.replay_window = replay_window
    return AcceptsFailed


class SrtpSessionCore(ServerCore):
    """Every session's SRTP is a `srtp_session_class` (keyed from the same DTLS handshake)."""

    srtp_session_class: type[ZooSrtpSession] = ZooSrtpSession

    def _after_dtls_input(self, session: Session, now: float) -> None:
        before = session.srtp
        super()._after_dtls_input(session, now)
        if session.srtp is not None and session.srtp is not before:
            profile = session.srtp.profile
            key_length, salt_length = PROFILES[profile]
            material = session.dtls._connection.export_keying_material(
                DTLS_SRTP_EXPORTER_LABEL, 2 * (key_length + salt_length))
            session.srtp = self.srtp_session_class.from_keying_material(profile, material,
                                                                        is_server=session.dtls.is_server)


# -- voice ------------------------------------------------------------------------------------


class ConversationEndpoint(VoiceEndpoint):
    """A voice endpoint whose conversation loop is `conversation_class` (built like the reference's)."""

    conversation_class: type[Conversation] = Conversation

    def __init__(self, session_id: str, now: float, **options) -> None:
        super().__init__(session_id, now, **options)
        reference = self.conversation
        self.conversation = self.conversation_class(
            session_id, now, vad=reference.vad, turn_config=reference.turn.config,
            model_name=reference.model_name, wall_clock_offset=reference.wall_clock_offset)


# -- a part swapped in whole ----------------------------------------------------------------------


class SessionTableCore(ServerCore):
    """Keeps its sessions in a `session_table_class`."""

    session_table_class: type[SessionTable] = SessionTable

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sessions = self.session_table_class()


def core_with(part: type) -> type[ServerCore] | None:
    """The core that serves with `part`, a DtlsEndpoint, ZooSrtpSession or SessionTable subclass,
    where the reference core has its own (None for another class)."""
    if issubclass(part, SessionTable):
        return type(f"{part.__name__}Core", (SessionTableCore,), {"__module__": part.__module__,
                                                                   "session_table_class": part})
    if issubclass(part, DtlsEndpoint):
        return dtls_core(part)
    if issubclass(part, ZooSrtpSession):
        return type(f"{part.__name__}Core", (SrtpSessionCore,), {"__module__": part.__module__,
                                                                  "srtp_session_class": part})
    return None


def voice_endpoint_with(part: type) -> type[VoiceEndpoint] | None:
    """The voice endpoint that serves with `part`, a VoiceEndpoint or Conversation subclass (None
    for another class)."""
    if issubclass(part, Conversation):
        return type(f"{part.__name__}Endpoint", (ConversationEndpoint,), {"__module__": part.__module__,
                                                                          "conversation_class": part})
    return part if issubclass(part, VoiceEndpoint) else None


# -- STUN -------------------------------------------------------------------------------------


def parse_stun(data: bytes) -> stun.StunMessage | None:
    try:
        return stun.parse(data)
    except stun.StunError:
        return None


def addressed_session(core: ServerCore, msg: stun.StunMessage) -> Session | None:
    """The session whose ufrag the request's USERNAME names, if any."""
    username = msg.get(stun.USERNAME)
    if username is None:
        return None
    return core.sessions.by_ufrag.get(username.split(b":", 1)[0].decode("utf-8", "replace"))


def rebuilt(msg: stun.StunMessage, key: bytes, *, msg_class: int | None = None, without: frozenset[int] = frozenset()
            ) -> bytes:
    """`msg` as a sender with `key` would have built it: the attributes that count (those before
    MESSAGE-INTEGRITY), minus `without`, then a valid MESSAGE-INTEGRITY and FINGERPRINT."""
    attributes = []
    for attr_type, value in msg.attributes:
        if attr_type in (stun.MESSAGE_INTEGRITY, stun.MESSAGE_INTEGRITY_SHA256, stun.FINGERPRINT):
            break
        if attr_type not in without:
            attributes.append((attr_type, value))
    return stun.build(msg.method, msg.msg_class if msg_class is None else msg_class, msg.transaction_id,
                      attributes, integrity_key=key)
