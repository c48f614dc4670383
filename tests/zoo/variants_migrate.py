"""MIGRATE variants: 5-tuples bound, moved and shared the wrong way on one port."""

from __future__ import annotations

import dataclasses

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.dtls import DtlsState
from reference_server.events import Address
from reference_server.reasons import DropReason
from reference_server.sessions import Session, SessionPhase, SessionTable
from reference_server.srtp import SrtpError
from tests.zoo import variant


def echo_of(session: Session, plain: bytes) -> bytes:
    """The reference server's echo of a plain RTP packet, under the session's outbound stream."""
    return session.outbound.reflect(plain, int.from_bytes(plain[4:8], "big"))


@variant("srtp-latching", checks=("MIGRATE-02", "MIGRATE-08"),
         why="SRTP from an unbound 5-tuple is tried with every session's keys and, if it decrypts, latches that "
             "session's media to the new address (RTP Bleed)")
class SrtpLatching(ServerCore):
    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        if address in self.sessions.by_address:
            super()._receive_rtp(data, address, now)
            return
        for session in list(self.sessions.by_id.values()):
            if session.srtp is None:
                continue
            try:
                plain = session.srtp.unprotect_rtp(data)
            except SrtpError:
                continue
            self.sessions.bind(session, address, now, self.config.max_tuples_per_session)
            session.selected = address
            self._send(session.srtp.protect_rtp(echo_of(session, plain)), address, "srtp")
            return
        self._drop("rtp_unbound", address)


@variant("srtp-from-any-address", checks=("MIGRATE-02",),
         why="SRTP from an unbound 5-tuple is tried with every session's keys and, if it decrypts, taken into that "
             "session (echoed to its selected pair), as full ICE agents that accept data from any address do")
class SrtpFromAnyAddress(ServerCore):
    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        if address in self.sessions.by_address:
            super()._receive_rtp(data, address, now)
            return
        for session in list(self.sessions.by_id.values()):
            if session.srtp is None or session.selected is None:
                continue
            try:
                plain = session.srtp.unprotect_rtp(data)
            except SrtpError:
                continue
            self._send(session.srtp.protect_rtp(echo_of(session, plain)), session.selected, "srtp")
            return
        self._drop("rtp_unbound", address)


@variant("dtls-from-any-address", checks=("MIGRATE-03", "MIGRATE-10"),
         why="a DTLS datagram from an unbound 5-tuple is given to the newest session still waiting for its "
             "ClientHello, and binds that address")
class DtlsFromAnyAddress(ServerCore):
    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        if address not in self.sessions.by_address:
            waiting = [session for session in self.sessions.by_id.values() if session.dtls.state is DtlsState.NEW]
            if waiting:
                self.sessions.bind(waiting[-1], address, now, self.config.max_tuples_per_session)
                if waiting[-1].phase is SessionPhase.OFFERED:
                    waiting[-1].advance(SessionPhase.CHECKED)  # bound, as if a check had done it
        super()._receive_dtls(data, address, now)


@variant("dtls-client-takes-strangers-records", checks=("MIGRATE-10",), dtls_role="client",
         why="as DTLS client, a DTLS datagram from an unbound 5-tuple is fed to the newest handshake under way: a "
             "stranger's fatal alert ends it")
class DtlsClientTakesStrangersRecords(ServerCore):
    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        if address not in self.sessions.by_address:
            handshaking = [session for session in self.sessions.by_id.values()
                           if session.dtls.state is DtlsState.HANDSHAKING]
            if handshaking:
                session = handshaking[-1]
                session.dtls.receive_datagram(data, now)
                self._after_dtls_input(session, now)
                return
        super()._receive_dtls(data, address, now)


UNEXPECTED_MESSAGE_ALERT = bytes.fromhex("15fefd00000000000000000002020a")
"""A DTLS 1.2 record, epoch 0, sequence 0: a fatal unexpected_message alert."""


@variant("dtls-client-answers-strangers", checks=("MIGRATE-03",), dtls_role="client",
         why="as DTLS client, answers a DTLS datagram from an unbound 5-tuple with a fatal alert instead of "
             "dropping it: DTLS sent on a pair no check made valid")
class DtlsClientAnswersStrangers(ServerCore):
    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        if address not in self.sessions.by_address:
            self._send(UNEXPECTED_MESSAGE_ALERT, address, "dtls")
        super()._receive_dtls(data, address, now)


@variant("replay-ends-session", checks=("MIGRATE-05",),
         why="a check whose transaction ID was already seen from another address is taken for a hijack and ends "
             "the session: one captured check is enough to hang up anyone")
class ReplayEndsSession(ServerCore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._first_seen: dict[bytes, Address] = {}

    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        super()._authenticated_check(session, msg, address, now)
        if self._first_seen.setdefault(msg.transaction_id, address) != address:
            self._free(session, "replayed_check")


@variant("nomination-only-from-new-tuples", checks=("MIGRATE-05", "ICE-05"),
         why="USE-CANDIDATE moves media only to a 5-tuple never bound before: a replayed check takes the media "
             "and the genuine client, already bound, cannot take it back")
class NominationOnlyFromNewTuples(ServerCore):
    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        selected, known = session.selected, address in session.tuples
        super()._authenticated_check(session, msg, address, now)
        if known and selected is not None and self.sessions.by_address.get(selected) is session:
            session.selected = selected


@variant("no-tuple-cap", checks=("MIGRATE-06",),
         why="no cap on the 5-tuples bound to one session: whoever holds the credentials can bind any number")
class NoTupleCap(ServerCore):
    def __init__(self, config, *args, **kwargs) -> None:
        super().__init__(dataclasses.replace(config, max_tuples_per_session=1 << 20), *args, **kwargs)


class NewestEvictedTable(SessionTable):
    def bind(self, session: Session, address: Address, now: float, max_tuples: int) -> list[Address]:
        evicted = super().bind(session, address, now, 1 << 20)
        while len(session.tuples) > max_tuples:
            victim = next((a for a in reversed(session.tuples) if a not in (session.selected, address)), None)
            if victim is None:
                break
            del session.tuples[victim]
            del self.by_address[victim]
            evicted.append(victim)
        return evicted


@variant("evicts-newest-tuple", checks=("MIGRATE-06",),
         why="at the tuple cap the newest unselected 5-tuple is evicted instead of the oldest, so stale tuples "
             "stay bound for good")
class EvictsNewestTuple(ServerCore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sessions = NewestEvictedTable()


@variant("echo-address-by-ssrc", checks=("MIGRATE-09",),
         why="the address media is echoed to is looked up by the SSRC it came with, first come first served: of "
             "two sessions with the same SSRC, the second's media goes to the first's 5-tuple")
class EchoAddressBySsrc(ServerCore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._echo_address: dict[bytes, Address] = {}
        self._ssrc = b""

    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        self._ssrc = data[8:12]
        try:
            super()._receive_rtp(data, address, now)
        finally:
            self._ssrc = b""

    def _send(self, data: bytes, address: Address, kind: str) -> None:
        if kind == "srtp" and self._ssrc:
            address = self._echo_address.setdefault(self._ssrc, address)
        super()._send(data, address, kind)


@variant("media-routed-by-ssrc", checks=("MIGRATE-07",),
         why="SRTP is routed to the session that first used its SSRC, not by 5-tuple: two sessions with the same "
             "SSRC get each other's packets")
class MediaRoutedBySsrc(ServerCore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._ssrc_owner: dict[bytes, Session] = {}
        self._ssrc = b""

    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        self._ssrc = data[8:12]
        super()._receive_rtp(data, address, now)

    def _media_session(self, address: Address, unbound: DropReason, before_dtls: DropReason):
        rtp = unbound is DropReason.RTP_UNBOUND
        owner = self._ssrc_owner.get(self._ssrc) if rtp else None
        if owner is not None and self.sessions.by_id.get(owner.id) is owner and owner.srtp is not None:
            return owner, owner.srtp
        media = super()._media_session(address, unbound, before_dtls)
        if media is not None and rtp:
            self._ssrc_owner.setdefault(self._ssrc, media[0])
        return media
