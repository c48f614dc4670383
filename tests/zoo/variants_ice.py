"""ICE variants: a lite agent that nominates, times out, restarts or names itself wrongly."""

from __future__ import annotations

import itertools
import struct
import time

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.events import Address
from reference_server.sessions import Session
from tests.zoo import variant
from tests.zoo.seams import back_before_dtls, fresh_dtls_endpoint
from tests.zoo.variants_stun import UnknownUfragAnswered


@variant("short-ice-password", checks=("ICE-01",),
         why="ice-pwd of 16 characters (96 bits; RFC 8445 §5.3 asks for at least 22 characters, 128 bits)")
class ShortIcePassword(ServerCore):
    def create_session(self, offer_sdp: str, now: float) -> tuple[str, str]:
        session_id, answer = super().create_session(offer_sdp, now)
        session = self.sessions.by_id[session_id]
        short = session.pwd[:16]
        answer = answer.replace(f"a=ice-pwd:{session.pwd}\r\n", f"a=ice-pwd:{short}\r\n")
        session.pwd = short
        return session_id, answer


@variant("sequential-ufrags", checks=("ICE-01", "ICE-08"),
         why="ufrags come from a counter (sess0001, sess0002, …): a session's neighbours' ufrags are guessable")
class SequentialUfrags(ServerCore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._issued = itertools.count(1)

    def _new_ufrag(self) -> str:
        return f"sess{next(self._issued):04d}"


@variant("clock-ufrags", checks=("ICE-08",),
         why="ufrags are the microsecond clock in hex: concurrent sessions' ufrags differ in a few low digits")
class ClockUfrags(ServerCore):
    def _new_ufrag(self) -> str:
        return f"{time.time_ns() // 1000 & 0xFFFFFFFF:08x}"


@variant("sends-own-checks", checks=("ICE-02",),
         why="sends a connectivity check of its own to every newly bound address, as a full agent would")
class SendsOwnChecks(ServerCore):
    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        new = address not in session.tuples
        super()._authenticated_check(session, msg, address, now)
        if new:
            attributes = [
                (stun.USERNAME, f"{session.remote_ufrag}:{session.ufrag}".encode()),
                (stun.PRIORITY, struct.pack("!I", 0x6EFFFFFF)),
                (stun.ICE_CONTROLLED, self._random_bytes(8)),
            ]
            request = stun.build(stun.BINDING, stun.REQUEST, self._random_bytes(12), attributes,
                                 integrity_key=session.remote_pwd.encode())
            self._send(request, address, "stun")


@variant("drops-role-conflict", checks=("ICE-03",),
         why="silently drops a check that claims ICE-CONTROLLED instead of answering 487 (or switching roles)")
class DropsRoleConflict(ServerCore):
    def _reply_error(self, data: bytes, msg: stun.StunMessage, address: Address, code: int, reason: str,
                     *, key: bytes | None, extra: list[tuple[int, bytes]] = ()) -> None:
        if code != 487:
            super()._reply_error(data, msg, address, code, reason, key=key, extra=extra)


@variant("every-check-selects", checks=("ICE-04",),
         why="every authenticated check selects its pair, USE-CANDIDATE or not: media follows the latest check")
class EveryCheckSelects(ServerCore):
    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        super()._authenticated_check(session, msg, address, now)
        session.selected = address


@variant("first-nomination-wins", checks=("ICE-05", "MIGRATE-01"),
         why="only the first USE-CANDIDATE selects a pair; later nominations (another pair, a NAT rebinding) "
             "move nothing")
class FirstNominationWins(ServerCore):
    def _authenticated_check(self, session: Session, msg: stun.StunMessage, address: Address, now: float) -> None:
        selected = session.selected
        super()._authenticated_check(session, msg, address, now)
        if selected is not None and self.sessions.by_address.get(selected) is session:
            session.selected = selected


@variant("echo-to-source", checks=("ICE-09",),
         why="sends media back to wherever the last packet came from, not to the nominated pair")
class EchoToSource(ServerCore):
    _source: Address | None = None

    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        self._source = address
        try:
            super()._receive_rtp(data, address, now)
        finally:
            self._source = None

    def _send(self, data: bytes, address: Address, kind: str) -> None:
        super()._send(data, self._source if kind == "srtp" and self._source is not None else address, kind)


@variant("media-refreshes-consent", checks=("ICE-06",),
         why="any media from the bound address counts as consent (RFC 7675 wants authenticated checks), so a "
             "session whose peer stopped checking never expires")
class MediaRefreshesConsent(ServerCore):
    def _receive_rtp(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is not None:
            session.last_check = now
        super()._receive_rtp(data, address, now)


@variant("restart-resets-dtls", checks=("ICE-07",),
         why="an ICE restart throws away the session's DTLS association and SRTP keys and waits for a new "
             "handshake")
class RestartResetsDtls(ServerCore):
    def restart_ice(self, session_id: str, sdpfrag: str, now: float) -> str | None:
        answer = super().restart_ice(session_id, sdpfrag, now)
        if answer is not None:
            session = self.sessions.by_id[session_id]
            session.dtls = fresh_dtls_endpoint(self, session)
            session.srtp = None
            back_before_dtls(session)
        return answer


class AnswersAsFullAgent(SendsOwnChecks):
    """No a=ice-lite in the answer, and checks of its own: a full ICE agent as far as the probe sees."""

    def create_session(self, offer_sdp: str, now: float) -> tuple[str, str]:
        session_id, answer = super().create_session(offer_sdp, now)
        return session_id, answer.replace("a=ice-lite\r\n", "")


@variant("full-agent-answers-unknown-ufrags", checks=("STUN-07",),
         why="a full ICE agent (no a=ice-lite, checks of its own) that, like most, answers an unknown ufrag with 401")
class FullAgentAnswersUnknownUfrags(AnswersAsFullAgent, UnknownUfragAnswered):
    """Correct consent: the stand-in reference for ICE-10, which judges full ICE agents only."""


@variant("full-agent-media-refreshes-consent", checks=("ICE-10",), reference="full-agent-answers-unknown-ufrags",
         why="a full ICE agent that counts any media from the peer as consent, so it keeps sending after its "
             "checks have gone unanswered for the consent timeout")
class FullAgentMediaRefreshesConsent(AnswersAsFullAgent, MediaRefreshesConsent):
    """Full ICE (which RFC 7675 binds) with consent refreshed by media."""


@variant("restart-rehandshakes", checks=("ICE-11",), dtls_role="client",
         why="as DTLS client, an ICE restart starts a new DTLS handshake (a new ClientHello) on the next "
             "nomination, and media waits for it as it did for the first")
class RestartRehandshakes(ServerCore):
    def restart_ice(self, session_id: str, sdpfrag: str, now: float) -> str | None:
        answer = super().restart_ice(session_id, sdpfrag, now)
        if answer is not None:
            session = self.sessions.by_id[session_id]
            session.dtls = fresh_dtls_endpoint(self, session)  # state "new": the next nomination starts it
            back_before_dtls(session)
        return answer
