"""MIGRATE — session migration on one port: NAT rebinding, and the attacks it invites."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from toolkit.conformance.checks.common import check_request, require
from toolkit.conformance.checks.ice import echo_destination
from toolkit.conformance.checks.stun import WRONG_PASSWORD
from toolkit.conformance.conversation import Conversation, is_stun_request
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import (
    Alive,
    BindsNothing,
    Connect,
    Do,
    Echo,
    Expect,
    Offer,
    Rebind,
    Send,
    Silence,
    Socket,
    Step,
    StunError,
    StunSuccess,
    echoes_of,
    protected_media,
    send_media,
)
from toolkit.peer import DtlsConnected, IceCompleted, PeerError

SHARED_SSRC = 0x5EED5EED
EXTRA_TUPLES = 12
"""MIGRATE-06 binds this many extra 5-tuples: more than any sensible per-session cap."""


async def send_check(conversation: Conversation, via: str, **knobs) -> None:
    """An authenticated check of session main from socket `via`, answered with success."""
    await Send(check_request(**knobs), via=via).run(conversation)
    await Expect(StunSuccess(), via=via).run(conversation)


async def settle(conversation: Conversation) -> None:
    await asyncio.sleep(conversation.settings.silence)


def dtls_from_target_since(conversation: Conversation, since: float) -> int:
    return sum(1 for d in conversation.datagrams if d.direction == "in" and d.time >= since and 19 < d.data[0] < 64)


# -- MIGRATE-01 ------------------------------------------------------------------------------


ROAMING_POLICY = ("this project's roaming policy is that the latest nomination moves media at once; RFC 8445 lets a "
                  "lite agent keep its first selected pair until an ICE restart")


async def nat_rebinding(conversation: Conversation) -> None:
    session = conversation.session("main")
    switch = conversation.now()
    # First an un-nominating check, as a consent check after rebinding looks: where does media go?
    await send_check(conversation, "rebound", use_candidate=False)
    token = send_media(conversation, session)
    await settle(conversation)
    where = echoes_of(session, token)
    conversation.note("after a check without USE-CANDIDATE from the new address, media went to "
                      + (where[0] if where else "nobody"))
    # Then the check a controlling agent sends on its selected pair (libwebrtc keeps USE-CANDIDATE on it).
    await send_check(conversation, "rebound", use_candidate=True)
    tokens = []
    for _ in range(20):
        tokens.append(send_media(conversation, session))
        await asyncio.sleep(0.01)
    await settle(conversation)
    lost = [t for t in tokens if not echoes_of(session, t)]
    astray = [t for t in tokens if echoes_of(session, t) and echoes_of(session, t)[0] != "rebound"]
    require(not lost, f"{len(lost)} of {len(tokens)} packets sent after the switch were not echoed")
    require(not astray, f"{len(astray)} echoes still went to the old address after a USE-CANDIDATE from the new one: "
                        f"{ROAMING_POLICY}")
    handshakes = dtls_from_target_since(conversation, switch)
    require(handshakes == 0, f"the target sent {handshakes} DTLS datagram(s) after the rebinding: a new handshake")
    require(session.peer.state == "connected", f"the probe peer is {session.peer.state} after the rebinding")
    conversation.note(f"all {len(tokens)} packets after the switch were echoed to the new address, no new DTLS handshake")


# -- MIGRATE-02, MIGRATE-08: RTP Bleed ---------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RtpBleed(Step):
    """Plain RTP with the session's SSRC, and genuine SRTP of the session, from an unbound address;
    then genuine media from the session's own address. What came of each is kept for the judgements."""

    async def run(self, conversation: Conversation) -> None:
        from scapy.packet import Raw

        from toolkit.crafters.rtp import Rtp

        session = conversation.session("main")
        attacker = conversation.socket("attacker")
        attacker.mark = len(attacker.inbox)
        plain = Rtp(payload_type=session.peer.audio_pt, sequence=conversation.rng.getrandbits(16),
                    timestamp=conversation.rng.getrandbits(32), ssrc=session.peer.ssrc) / Raw(b"rtcgate-bleed-plain")
        attacker.send(bytes(plain), session.remote)
        conversation.scratch["bleed"] = send_media(conversation, session, via="attacker")
        await settle(conversation)
        conversation.scratch["genuine"] = send_media(conversation, session)
        await settle(conversation)

    def describe(self) -> str:
        return "RtpBleed(via=attacker)"


def bleed_not_taken(conversation: Conversation) -> None:
    """MIGRATE-02 (POLICY): the unbound address's SRTP was not decrypted into the session, and the
    session's own media still goes to its own address."""
    session = conversation.session("main")
    bled = echoes_of(session, conversation.scratch["bleed"])
    require(not bled, f"SRTP from an unbound address was decrypted into the session and echoed (to "
                      f"{bled[0] if bled else ''}): {BLEED_POLICY}")
    genuine = echoes_of(session, conversation.scratch["genuine"])
    require(genuine == [session.socket.name], f"after media from an unbound address, the session's own media was "
                                              f"echoed to {genuine[0] if genuine else 'nobody'}, not to "
                                              f"{session.socket.name}: the unbound address moved the session's media "
                                              f"({BLEED_POLICY})")
    conversation.note("the unbound address's SRTP was not taken; the session's media stayed on its own address")


BLEED_POLICY = ("this project's policy (RTP Bleed hardening) drops media from 5-tuples no authenticated check has "
                "bound; full ICE agents may accept authenticated SRTP from any address")


def nothing_to_unbound(conversation: Conversation) -> None:
    """MIGRATE-08 (MUST, RFC 8445 §12.1): no datagram at all went back to the unbound address."""
    attacker = conversation.socket("attacker")
    answers = attacker.inbox[attacker.mark:]
    session = conversation.session("main")
    echoed = [name for token in (conversation.scratch["bleed"], conversation.scratch["genuine"])
              for name in echoes_of(session, token) if name == attacker.name]
    require(not answers, f"the unbound address got {len(answers)} datagram(s) back"
                         f"{' (echoes of the session media among them)' if echoed else ''}: data sent on a pair that "
                         "no check made valid, let alone selected")
    conversation.note("nothing came back to the unbound address")


# -- MIGRATE-03 ------------------------------------------------------------------------------


def client_hello_datagram() -> bytes:
    from toolkit.crafters.dtls import client_hello_flight

    return b"".join(bytes(record) for record in client_hello_flight())


def stranger_server_datagrams(conversation: Conversation) -> list[bytes]:
    """What a stranger posing as the DTLS server sends a client: a HelloVerifyRequest, then a fatal
    handshake_failure alert (both epoch 0, in the clear)."""
    from toolkit.conformance.checks.dtls import hello_verify_request_datagram
    from toolkit.crafters.dtls import ALERT, DtlsAlert, DtlsRecord

    alert = DtlsRecord(content_type=ALERT, sequence_number=1) / DtlsAlert(level=2, description=40)
    return [hello_verify_request_datagram(conversation.rng, sequence=0), bytes(alert)]


@dataclass(frozen=True, eq=False)
class StrangerHandshake(Step):
    """A stranger's DTLS from an unbound 5-tuple before, during and after the real handshake: a
    ClientHello to a target that is the DTLS server; to a DTLS client, a server's first flight and
    a fatal alert. How the real handshake ended is kept for MIGRATE-10 (scratch "handshake": None
    when it completed, else why not); what the stranger got back is MIGRATE-03's."""

    async def run(self, conversation: Conversation) -> None:
        from toolkit.conformance.checks.dtls import target_role

        session = conversation.session("main")
        attacker = conversation.socket("attacker")
        remote = session.remote
        role = target_role(conversation)
        conversation.scratch["role"] = role

        def stranger() -> None:
            for datagram in [client_hello_datagram()] if role == "server" else stranger_server_datagrams(conversation):
                attacker.send(datagram, remote)

        def at_client_hello(data: bytes) -> bool:
            """The target's ClientHello arrived: the stranger answers first, before the probe does."""
            if 19 < data[0] < 64:
                session.socket.receive_filter = None
                stranger()
            return True

        stranger()  # before the real handshake
        since = len(session.events)
        if role == "client":
            session.socket.receive_filter = at_client_hello
        session.peer.start(conversation.loop.time(), conversation.target.remote_override)
        session.flush()
        timeout = conversation.settings.connect_timeout
        conversation.scratch["handshake"] = None
        try:
            await session.wait_event(IceCompleted, timeout, since=since)
            if role == "server":
                stranger()  # right after the real ClientHello left
            await session.wait_event(DtlsConnected, timeout, since=since)
        except PeerError as exc:
            conversation.scratch["handshake"] = str(exc)
        finally:
            if session.socket.receive_filter is at_client_hello:
                session.socket.receive_filter = None
        stranger()  # and after it
        await settle(conversation)

    def describe(self) -> str:
        return "StrangerHandshake(via=attacker)"


def stranger_unanswered(conversation: Conversation) -> None:
    """MIGRATE-03 (MUST): no DTLS datagram went back to the unbound address."""
    role = conversation.scratch["role"]
    answered = [r for r in conversation.socket("attacker").inbox if 19 < r.data[0] < 64]
    require(not answered, f"the target answered the unbound address's DTLS with {len(answered)} DTLS datagram(s)")
    conversation.note(f"{sent_by_stranger(role)} from the unbound address were ignored (the target is the DTLS "
                      f"{role})" + ("" if conversation.scratch["handshake"] is None
                                    else "; the real handshake did not complete (MIGRATE-10 judges that)"))


def real_handshake_completed(conversation: Conversation) -> None:
    """MIGRATE-10 (POLICY): the stranger did not keep the real handshake from completing, nor end it."""
    role, failure = conversation.scratch["role"], conversation.scratch["handshake"]
    session = conversation.session("main")
    require(failure is None, f"the real handshake did not complete while {sent_by_stranger(role)} came from an "
                             f"unbound address: {failure}; this project's policy is that a stranger's DTLS cannot "
                             "deny a session its handshake")
    require(session.peer.state == "connected", f"the probe peer is {session.peer.state}: the target ended the session "
                                               f"after {sent_by_stranger(role)} from an unbound address")
    conversation.note(f"the real handshake completed despite {sent_by_stranger(role)} from an unbound address (the "
                      f"target is the DTLS {role})")


def sent_by_stranger(role: str) -> str:
    return "ClientHellos" if role == "server" else "HelloVerifyRequests and fatal alerts"


# -- MIGRATE-05 ------------------------------------------------------------------------------


async def replayed_check(conversation: Conversation) -> None:
    session = conversation.session("main")
    captured = next(d.data for d in conversation.datagrams
                    if d.direction == "out" and d.socket == "main" and is_stun_request(d.data))
    attacker = conversation.socket("attacker")
    attacker.mark = len(attacker.inbox)
    attacker.send(captured, session.remote)
    token = send_media(conversation, session)
    await settle(conversation)
    answered = any(r.data[0] < 4 for r in attacker.inbox[attacker.mark:])
    where = echoes_of(session, token)
    conversation.note(f"outcome: the replayed nominating check was {'answered' if answered else 'not answered'}; "
                      f"media then went to {where[0] if where else 'nobody'}")
    await send_check(conversation, "main", use_candidate=False)  # a genuine consent check, not nominating
    token = send_media(conversation, session)
    await settle(conversation)
    where = echoes_of(session, token)
    conversation.note(f"after a genuine check without USE-CANDIDATE, media went to {where[0] if where else 'nobody'}")


async def genuine_nomination_takes_back(conversation: Conversation) -> None:
    """After the replay: the next genuine nominating check brings the session's media back to the peer."""
    session = conversation.session("main")
    require(session.peer.state == "connected", f"the session did not survive a replayed check (the probe peer is "
                                               f"{session.peer.state}): {REPLAY_POLICY}")
    await Send(check_request(use_candidate=True), label="the next genuine nominating check").run(conversation)
    try:
        await Expect(StunSuccess()).run(conversation)
    except CheckFailed as exc:
        raise CheckFailed(f"the genuine nominating check after the replay was not answered ({exc}): "
                          f"{REPLAY_POLICY}") from None
    where = await echo_destination(conversation, session.socket.name)
    require(where == session.socket.name, f"after the genuine nominating check, media went to {where or 'nobody'}, "
                                          f"not back to the peer: {REPLAY_POLICY}")
    conversation.note("the next genuine nominating check took the media back")


REPLAY_POLICY = ("this project's policy is that the next genuine nomination takes the media back after a replayed "
                 "check (no RFC says what a server does with a replay)")


# -- MIGRATE-06 ------------------------------------------------------------------------------


async def tuple_cap(conversation: Conversation) -> None:
    session = conversation.session("main")
    names = [f"t{number}" for number in range(EXTRA_TUPLES)]
    for name in names:
        await conversation.open_socket(name, session)
        await send_check(conversation, name, use_candidate=False)
    control = await conversation.open_socket("never-checked", session)
    tokens = {name: send_media(conversation, session, via=name) for name in [*names, control.name]}
    await settle(conversation)
    if echoes_of(session, tokens[control.name]):
        raise CheckSkipped("the target echoes media even from a 5-tuple that never sent a check (MIGRATE-02 "
                           "judges that), so which tuples stay bound cannot be observed from outside")
    bound = [name for name in names if echoes_of(session, tokens[name])]
    if not bound:
        raise CheckSkipped("the target echoes no media from bound but unselected 5-tuples, so which tuples stay "
                           "bound cannot be observed from outside")
    conversation.note(f"of {EXTRA_TUPLES} extra tuples bound oldest first, still bound: {', '.join(bound)}")
    require(len(bound) < EXTRA_TUPLES, f"all {EXTRA_TUPLES} extra 5-tuples stayed bound: no cap per session")
    first_kept = names.index(bound[0])
    evicted_newer = [name for name in names[first_kept:] if name not in bound]
    require(not evicted_newer, f"{bound[0]} (older) is still bound while newer {', '.join(evicted_newer)} "
                               "were evicted: the oldest unselected tuple must go first")
    conversation.note(f"cap: {len(bound) + 1} tuples per session (the selected one included)")


# -- MIGRATE-07 ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SharedSsrcMedia(Step):
    """Media of sessions a and b, which share an SSRC, and session a's SRTP sent on b's 5-tuple."""

    async def run(self, conversation: Conversation) -> None:
        a, b = conversation.session("a"), conversation.session("b")
        conversation.scratch["own"] = {"a": send_media(conversation, a), "b": send_media(conversation, b)}
        # Session a's SRTP on session b's 5-tuple (b's socket to b's address: the same port on a
        # single-port server, b's own port on a server with a port per session).
        crossed, packet = protected_media(conversation, a)
        conversation.socket("b").send(packet, b.remote)
        conversation.scratch["crossed"] = crossed
        await settle(conversation)

    def describe(self) -> str:
        return "SharedSsrcMedia(sessions a, b)"


def sessions_isolated(conversation: Conversation) -> None:
    """MIGRATE-07 (POLICY): each session's media is echoed, and a's SRTP on b's 5-tuple is not."""
    for name, token in conversation.scratch["own"].items():
        require(bool(echoes_of(conversation.session(name), token)),
                f"session {name}'s media was not echoed while another session used the same SSRC: {ISOLATION_POLICY}")
    require(not echoes_of(conversation.session("a"), conversation.scratch["crossed"]),
            f"session a's SRTP sent on session b's 5-tuple was echoed: {ISOLATION_POLICY}")
    conversation.note("two sessions with the same SSRC each got their own media echoed")


ISOLATION_POLICY = ("this project's policy is that media belongs to the session whose checks bound its 5-tuple, "
                    "never to the session an SSRC names")


def no_cross_session_leak(conversation: Conversation) -> None:
    """MIGRATE-09 (MUST, RFC 8445 §12.1): no echo reached another session's socket, and no peer got
    packets it cannot decrypt (another session's media)."""
    for name, token in conversation.scratch["own"].items():
        session = conversation.session(name)
        astray = [origin for origin in echoes_of(session, token) if origin != name]
        require(not astray, f"session {name}'s echo arrived on socket {astray[0] if astray else ''}, another "
                            "session's 5-tuple")
    for name in ("a", "b"):
        session = conversation.session(name)
        foreign = session.peer.drops["srtp_unprotect_failed"] + session.peer.drops["srtcp_unprotect_failed"]
        require(foreign == 0, f"session {name} received {foreign} packet(s) it cannot decrypt: another session's "
                              "media sent on its 5-tuple")
    conversation.note("no packet of one session reached the other's 5-tuple")


CHECKS = (
    Check(
        "MIGRATE-01", "core", "RFC 8445 §7.3.1.4, §8.2, RFC 7675",
        "after NAT rebinding, an authenticated check from the new 5-tuple moves media there without a new DTLS "
        "handshake; no packets are lost beyond the switch",
        (Connect(), Echo(), Rebind("rebound"), Do(nat_rebinding, "checks and media from the new source port")),
    ),
    Check(
        "MIGRATE-02", "security", "CVE-2017-14099, CVE-2017-14114 (RTP Bleed)",
        "RTP or SRTP from an unbound 5-tuple is never decrypted into the session and never moves where its media goes",
        (Connect(), Socket("attacker"), RtpBleed(),
         Do(bleed_not_taken, "the unbound address's media not taken")),
    ),
    Check(
        "MIGRATE-03", "security", "RFC 8445 §12.1.1, CVE-2023-49786, CVE-2023-51443",
        "DTLS from an unbound 5-tuple before, during or after the real handshake is never answered (a ClientHello; "
        "to a DTLS client target, a stranger's HelloVerifyRequest and fatal alert)",
        (Offer(), Socket("attacker", session=None),
         StrangerHandshake(),
         Do(stranger_unanswered, "no DTLS to the unbound address")),
    ),
    Check(
        "MIGRATE-04", "security", "RFC 8445 §7.3, RFC 8489 §9.1.3",
        "a check with the right ufrag and a wrong password from a new address binds nothing",
        (
            Connect(),
            Socket("attacker"),
            Send(check_request(password=WRONG_PASSWORD), via="attacker", label="right ufrag, wrong password"),
            Expect((StunError(401), Silence()), via="attacker"),
            BindsNothing("attacker"),
            Echo(),
        ),
    ),
    Check(
        "MIGRATE-05", "security", "RFC 8445 §7.3 (no replay protection in ICE)",
        "a replayed authenticated check from another address does not take the session's media away for longer "
        "than the next genuine nominating check; the outcome is reported",
        (
            Connect(),
            Socket("attacker"),
            Do(replayed_check, "replay the nominating check from another address"),
            Do(genuine_nomination_takes_back, "the next genuine nominating check takes the media back"),
        ),
    ),
    Check(
        "MIGRATE-06", "security", "docs/architecture.md principle 2",
        "tuples per session are capped; the oldest unselected tuple is evicted first",
        (Connect(), Do(tuple_cap, f"bind {EXTRA_TUPLES} extra 5-tuples"), Echo()),
    ),
    Check(
        "MIGRATE-07", "core", "RFC 3711 §3.2, docs/architecture.md principle 2",
        "two sessions sharing an SSRC each get their own media echoed, and one's SRTP on the other's 5-tuple is "
        "not taken",
        (
            Connect(session="a", peer={"ssrc": SHARED_SSRC}),
            Connect(session="b", peer={"ssrc": SHARED_SSRC}),
            SharedSsrcMedia(),
            Do(sessions_isolated, "each session's media, and only its own, taken"),
        ),
    ),
    Check(
        "MIGRATE-08", "security", "RFC 8445 §12.1, CVE-2017-14099 (RTP Bleed)",
        "nothing is ever sent to a 5-tuple that no authenticated check bound, whatever RTP or SRTP came from it",
        (Connect(), Socket("attacker"), RtpBleed(),
         Do(nothing_to_unbound, "nothing back to the unbound address")),
    ),
    Check(
        "MIGRATE-09", "core", "RFC 8445 §12.1",
        "two sessions sharing an SSRC never get a packet of each other's: no echo on the other's 5-tuple, nothing "
        "a peer cannot decrypt",
        (
            Connect(session="a", peer={"ssrc": SHARED_SSRC}),
            Connect(session="b", peer={"ssrc": SHARED_SSRC}),
            SharedSsrcMedia(),
            Do(no_cross_session_leak, "no packet on the other session's 5-tuple"),
        ),
    ),
    Check(
        "MIGRATE-10", "security", "CVE-2023-49786, CVE-2023-51443",
        "the real handshake completes despite a stranger's DTLS from an unbound 5-tuple racing it (a ClientHello; "
        "to a DTLS client target, a HelloVerifyRequest and fatal alert)",
        (Offer(), Socket("attacker", session=None),
         StrangerHandshake(),
         Do(real_handshake_completed, "the real handshake completed"), Alive(media=True)),
    ),
)
