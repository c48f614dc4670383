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
from tests.zoo.seams import (
    AuthenticatedCheck,
    Datagram,
    RtpInFlightCore,
    after_check,
    after_ice_restart,
    intercept,
    per_instance,
    rewrite_answer,
    start_dtls_over,
)
from tests.zoo.variants_stun import unknown_ufrag_answered


@variant("short-ice-password", checks=("ICE-01",),
         why="ice-pwd of 16 characters (96 bits; RFC 8445 §5.3 asks for at least 22 characters, 128 bits)")
@rewrite_answer
def short_ice_password(_core: ServerCore, session: Session, answer: str) -> str:
    short = session.pwd[:16]
    answer = answer.replace(f"a=ice-pwd:{session.pwd}\r\n", f"a=ice-pwd:{short}\r\n")
    session.pwd = short
    return answer


@variant("sequential-ufrags", checks=("ICE-01", "ICE-08"),
         why="ufrags come from a counter (sess0001, sess0002, …): a session's neighbours' ufrags are guessable")
class SequentialUfrags(ServerCore):
    _issued = per_instance(lambda: itertools.count(1))

    def _new_ufrag(self) -> str:
        return f"sess{next(self._issued):04d}"


@variant("clock-ufrags", checks=("ICE-08",),
         why="ufrags are the microsecond clock in hex: concurrent sessions' ufrags differ in a few low digits")
class ClockUfrags(ServerCore):
    def _new_ufrag(self) -> str:
        return f"{time.time_ns() // 1000 & 0xFFFFFFFF:08x}"


@variant("sends-own-checks", checks=("ICE-02",),
         why="sends a connectivity check of its own to every newly bound address, as a full agent would")
@after_check
def sends_own_checks(core: ServerCore, check: AuthenticatedCheck) -> None:
    if check.new_address:
        session = check.session
        attributes = [
            (stun.USERNAME, f"{session.remote_ufrag}:{session.ufrag}".encode()),
            (stun.PRIORITY, struct.pack("!I", 0x6EFFFFFF)),
            (stun.ICE_CONTROLLED, core._random_bytes(8)),
        ]
        request = stun.build(stun.BINDING, stun.REQUEST, core._random_bytes(12), attributes,
                             integrity_key=session.remote_pwd.encode())
        core._send(request, check.address, "stun")


@variant("drops-role-conflict", checks=("ICE-03",),
         why="silently drops a check that claims ICE-CONTROLLED instead of answering 487 (or switching roles)")
class DropsRoleConflict(ServerCore):
    def _reply_error(self, data: bytes, msg: stun.StunMessage, address: Address, code: int, reason: str,
                     *, key: bytes | None, extra: list[tuple[int, bytes]] = ()) -> None:
        if code != 487:
            super()._reply_error(data, msg, address, code, reason, key=key, extra=extra)


@variant("every-check-selects", checks=("ICE-04",),
         why="every authenticated check selects its pair, USE-CANDIDATE or not: media follows the latest check")
@after_check
def every_check_selects(_core: ServerCore, check: AuthenticatedCheck) -> None:
    check.session.selected = check.address


@variant("first-nomination-wins", checks=("ICE-05", "MIGRATE-01"),
         why="only the first USE-CANDIDATE selects a pair; later nominations (another pair, a NAT rebinding) "
             "move nothing")
@after_check
def first_nomination_wins(core: ServerCore, check: AuthenticatedCheck) -> None:
    check.keep_earlier_selection(core)


@variant("echo-to-source", checks=("ICE-09",),
         why="sends media back to wherever the last packet came from, not to the nominated pair")
class EchoToSource(RtpInFlightCore):
    def echo_address(self, rtp: Datagram, address: Address) -> Address:
        return rtp.source


@variant("media-refreshes-consent", checks=("ICE-06",),
         why="any media from the bound address counts as consent (RFC 7675 wants authenticated checks), so a "
             "session whose peer stopped checking never expires")
@intercept("_receive_rtp")
def media_refreshes_consent(datagram: Datagram) -> bytes:
    if datagram.session is not None:
        datagram.session.last_check = datagram.now
    return datagram.data


@variant("restart-resets-dtls", checks=("ICE-07",),
         why="an ICE restart throws away the session's DTLS association and SRTP keys and waits for a new "
             "handshake")
@after_ice_restart
def restart_resets_dtls(core: ServerCore, session: Session) -> None:
    start_dtls_over(core, session)
    session.srtp = None


@rewrite_answer
def answers_without_ice_lite(_core: ServerCore, _session: Session, answer: str) -> str:
    return answer.replace("a=ice-lite\r\n", "")


class AnswersAsFullAgent(answers_without_ice_lite, sends_own_checks):
    """No a=ice-lite in the answer, and checks of its own: a full ICE agent as far as the probe sees."""


@variant("full-agent-answers-unknown-ufrags", checks=("STUN-07",),
         why="a full ICE agent (no a=ice-lite, checks of its own) that, like most, answers an unknown ufrag with 401")
class FullAgentAnswersUnknownUfrags(AnswersAsFullAgent, unknown_ufrag_answered):
    """Correct consent: the stand-in reference for ICE-10, which judges full ICE agents only."""


@variant("full-agent-media-refreshes-consent", checks=("ICE-10",), reference="full-agent-answers-unknown-ufrags",
         why="a full ICE agent that counts any media from the peer as consent, so it keeps sending after its "
             "checks have gone unanswered for the consent timeout")
class FullAgentMediaRefreshesConsent(AnswersAsFullAgent, media_refreshes_consent):
    """Full ICE (which RFC 7675 binds) with consent refreshed by media."""


@variant("restart-rehandshakes", checks=("ICE-11",), dtls_role="client",
         why="as DTLS client, an ICE restart starts a new DTLS handshake (a new ClientHello) on the next "
             "nomination, and media waits for it as it did for the first")
@after_ice_restart
def restart_rehandshakes(core: ServerCore, session: Session) -> None:
    start_dtls_over(core, session)  # state "new": the next nomination starts it
