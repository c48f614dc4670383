"""MIGRATE variants: 5-tuples bound, moved and shared the wrong way on one port."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.dtls import DtlsState
from reference_server.events import Address
from reference_server.reasons import DropReason
from reference_server.sessions import Session, SessionPhase, SessionTable
from reference_server.srtp import SrtpError, SrtpSession
from tests.zoo import variant
from tests.zoo.seams import AuthenticatedCheck, Datagram, RtpInFlightCore, after_check, intercept, per_instance


def echo_of(session: Session, plain: bytes) -> bytes:
    """The reference server's echo of a plain RTP packet, under the session's outbound stream."""
    return session.outbound.reflect(plain, int.from_bytes(plain[4:8], "big"))


UnboundSrtpHook = Callable[[Datagram, Session, bytes], None]


def srtp_from_unbound(*, selected_only: bool = False) -> Callable[[UnboundSrtpHook], type[ServerCore]]:
    """A core that tries SRTP from an address no session has bound with every session's keys (only
    those with a selected pair, if `selected_only`) and hands the first session that decrypts it,
    with the plain packet, to the decorated hook, instead of dropping the packet as unbound."""

    def make(hook: UnboundSrtpHook) -> type[ServerCore]:
        def tried_by_every_session(datagram: Datagram) -> bytes | None:
            if datagram.session is not None:
                return datagram.data
            for session in list(datagram.core.sessions.by_id.values()):
                if session.srtp is None or (selected_only and session.selected is None):
                    continue
                try:
                    plain = session.srtp.unprotect_rtp(datagram.data)
                except SrtpError:
                    continue
                hook(datagram, session, plain)
                return None
            datagram.core._drop("rtp_unbound", datagram.source)
            return None

        tried_by_every_session.__name__, tried_by_every_session.__module__ = hook.__name__, hook.__module__
        return intercept("_receive_rtp")(tried_by_every_session)

    return make


@variant("srtp-latching", checks=("MIGRATE-02", "MIGRATE-08"),
         why="SRTP from an unbound 5-tuple is tried with every session's keys and, if it decrypts, latches that "
             "session's media to the new address (RTP Bleed)")
@srtp_from_unbound()
def srtp_latching(datagram: Datagram, session: Session, plain: bytes) -> None:
    core = datagram.core
    core.sessions.bind(session, datagram.source, datagram.now, core.config.max_tuples_per_session)
    session.selected = datagram.source
    core._send(session.srtp.protect_rtp(echo_of(session, plain)), datagram.source, "srtp")


@variant("srtp-from-any-address", checks=("MIGRATE-02",),
         why="SRTP from an unbound 5-tuple is tried with every session's keys and, if it decrypts, taken into that "
             "session (echoed to its selected pair), as full ICE agents that accept data from any address do")
@srtp_from_unbound(selected_only=True)
def srtp_from_any_address(datagram: Datagram, session: Session, plain: bytes) -> None:
    datagram.core._send(session.srtp.protect_rtp(echo_of(session, plain)), session.selected, "srtp")


def sessions_in(core: ServerCore, state: DtlsState) -> list[Session]:
    """The sessions whose DTLS endpoint is in `state`, oldest first."""
    return [session for session in core.sessions.by_id.values() if session.dtls.state is state]


@variant("dtls-from-any-address", checks=("MIGRATE-03", "MIGRATE-10"),
         why="a DTLS datagram from an unbound 5-tuple is given to the newest session still waiting for its "
             "ClientHello, and binds that address")
@intercept("_receive_dtls")
def dtls_from_any_address(datagram: Datagram) -> bytes:
    core, waiting = datagram.core, sessions_in(datagram.core, DtlsState.NEW)
    if datagram.session is None and waiting:
        core.sessions.bind(waiting[-1], datagram.source, datagram.now, core.config.max_tuples_per_session)
        if waiting[-1].phase is SessionPhase.OFFERED:
            waiting[-1].advance(SessionPhase.CHECKED)  # bound, as if a check had done it
    return datagram.data


@variant("dtls-client-takes-strangers-records", checks=("MIGRATE-10",), dtls_role="client",
         why="as DTLS client, a DTLS datagram from an unbound 5-tuple is fed to the newest handshake under way: a "
             "stranger's fatal alert ends it")
@intercept("_receive_dtls")
def dtls_client_takes_strangers_records(datagram: Datagram) -> bytes | None:
    handshaking = sessions_in(datagram.core, DtlsState.HANDSHAKING)
    if datagram.session is not None or not handshaking:
        return datagram.data
    handshaking[-1].dtls.receive_datagram(datagram.data, datagram.now)
    datagram.core._after_dtls_input(handshaking[-1], datagram.now)
    return None


UNEXPECTED_MESSAGE_ALERT = bytes.fromhex("15fefd00000000000000000002020a")
"""A DTLS 1.2 record, epoch 0, sequence 0: a fatal unexpected_message alert."""


@variant("dtls-client-answers-strangers", checks=("MIGRATE-03",), dtls_role="client",
         why="as DTLS client, answers a DTLS datagram from an unbound 5-tuple with a fatal alert instead of "
             "dropping it: DTLS sent on a pair no check made valid")
@intercept("_receive_dtls")
def dtls_client_answers_strangers(datagram: Datagram) -> bytes:
    if datagram.session is None:
        datagram.core._send(UNEXPECTED_MESSAGE_ALERT, datagram.source, "dtls")
    return datagram.data


@variant("replay-ends-session", checks=("MIGRATE-05",),
         why="a check whose transaction ID was already seen from another address is taken for a hijack and ends "
             "the session: one captured check is enough to hang up anyone")
class ReplayEndsSession(ServerCore):
    _first_seen: dict[bytes, Address] = per_instance(dict)

    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        super()._authenticated_check(session, msg, address, now)
        if self._first_seen.setdefault(msg.transaction_id, address) != address:
            self._free(session, "replayed_check")


@variant("nomination-only-from-new-tuples", checks=("MIGRATE-05", "ICE-05"),
         why="USE-CANDIDATE moves media only to a 5-tuple never bound before: a replayed check takes the media "
             "and the genuine client, already bound, cannot take it back")
@after_check
def nomination_only_from_new_tuples(core: ServerCore, check: AuthenticatedCheck) -> None:
    if not check.new_address:
        check.keep_earlier_selection(core)


@variant("no-tuple-cap", checks=("MIGRATE-06",),
         why="no cap on the 5-tuples bound to one session: whoever holds the credentials can bind any number")
class NoTupleCap(ServerCore):
    def __init__(self, config, *args, **kwargs) -> None:
        super().__init__(dataclasses.replace(config, max_tuples_per_session=1 << 20), *args, **kwargs)


def reorder(tuples: dict[Address, float], order: Callable[[list[Address]], list[Address]]) -> None:
    """Put a session's tuples (a dict, in the order they were bound) in `order(addresses)`, in place."""
    times = dict(tuples)
    tuples.clear()
    tuples.update((address, times[address]) for address in order(list(times)))


@variant("evicts-newest-tuple", checks=("MIGRATE-06",),
         why="at the tuple cap the newest unselected 5-tuple is evicted instead of the oldest, so stale tuples "
             "stay bound for good")
class NewestEvictedTable(SessionTable):
    """The reference eviction takes the first unselected tuple in the session's order, the oldest;
    shown the tuples newest first, it takes the newest instead."""

    def bind(self, session: Session, address: Address, now: float, max_tuples: int) -> list[Address]:
        reorder(session.tuples, lambda addresses: addresses[::-1])
        try:
            return super().bind(session, address, now, max_tuples)
        finally:  # back to the order they were bound in; this address (just bound) stays last
            reorder(session.tuples, lambda addresses: [*addresses[-2::-1], addresses[-1]])


@variant("echo-address-by-ssrc", checks=("MIGRATE-09",),
         why="the address media is echoed to is looked up by the SSRC it came with, first come first served: of "
             "two sessions with the same SSRC, the second's media goes to the first's 5-tuple")
class EchoAddressBySsrc(RtpInFlightCore):
    _echo_address: dict[bytes, Address] = per_instance(dict)

    def echo_address(self, rtp: Datagram, address: Address) -> Address:
        return self._echo_address.setdefault(rtp.data[8:12], address)


@variant("media-routed-by-ssrc", checks=("MIGRATE-07",),
         why="SRTP is routed to the session that first used its SSRC, not by 5-tuple: two sessions with the same "
             "SSRC get each other's packets")
class MediaRoutedBySsrc(RtpInFlightCore):
    _ssrc_owner: dict[bytes, Session] = per_instance(dict)

    def _media_session(self, address: Address, unbound: DropReason, before_dtls: DropReason
                       ) -> tuple[Session, SrtpSession] | None:
        if self.rtp_in_flight is None:  # RTCP
            return super()._media_session(address, unbound, before_dtls)
        ssrc = self.rtp_in_flight.data[8:12]
        owner = self._ssrc_owner.get(ssrc)
        if owner is not None and self.sessions.by_id.get(owner.id) is owner and owner.srtp is not None:
            return owner, owner.srtp
        media = super()._media_session(address, unbound, before_dtls)
        if media is not None:
            self._ssrc_owner.setdefault(ssrc, media[0])
        return media
