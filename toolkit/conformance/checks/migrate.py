"""MIGRATE — session migration on one port: NAT rebinding, and the attacks it invites."""

from __future__ import annotations

import asyncio

from toolkit.conformance.checks.common import binds_nothing, check_request, require
from toolkit.conformance.checks.stun import WRONG_PASSWORD
from toolkit.conformance.conversation import Conversation, is_stun_request
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import (
    Alive,
    Connect,
    Do,
    Echo,
    Expect,
    Offer,
    Rebind,
    Send,
    Silence,
    Socket,
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
    require(not astray, f"{len(astray)} echoes still went to the old address after the switch")
    handshakes = dtls_from_target_since(conversation, switch)
    require(handshakes == 0, f"the target sent {handshakes} DTLS datagram(s) after the rebinding: a new handshake")
    require(session.peer.state == "connected", f"the probe peer is {session.peer.state} after the rebinding")
    conversation.note(f"all {len(tokens)} packets after the switch were echoed to the new address, no new DTLS handshake")


# -- MIGRATE-02 ------------------------------------------------------------------------------


async def rtp_bleed(conversation: Conversation) -> None:
    """Plain RTP with the session's SSRC, and genuine SRTP of the session, from an unbound address."""
    from scapy.packet import Raw

    from toolkit.crafters.rtp import Rtp

    session = conversation.session("main")
    attacker = conversation.socket("attacker")
    attacker.mark = len(attacker.inbox)
    plain = Rtp(payload_type=session.peer.audio_pt, sequence=conversation.rng.getrandbits(16),
                timestamp=conversation.rng.getrandbits(32), ssrc=session.peer.ssrc) / Raw(b"rtcgate-bleed-plain")
    attacker.send(bytes(plain), session.remote)
    token = send_media(conversation, session, via="attacker")
    await settle(conversation)
    if echoes_of(session, token):
        raise CheckFailed(f"SRTP from the unbound address was decrypted into the session and echoed "
                          f"(to {echoes_of(session, token)[0]})")
    answers = [r for r in attacker.inbox[attacker.mark:]]
    require(not answers, f"the unbound address got {len(answers)} datagram(s) back: media was redirected to it")
    conversation.note("nothing came back to the unbound address; its SRTP was not echoed")


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


async def stranger_handshake_race(conversation: Conversation) -> None:
    """A stranger's DTLS from an unbound 5-tuple before, during and after the real handshake: a
    ClientHello to a target that is the DTLS server; to a DTLS client, a server's first flight and
    a fatal alert, which must neither end its handshake nor draw it to the stranger."""
    from toolkit.conformance.checks.dtls import target_role

    session = conversation.session("main")
    attacker = conversation.socket("attacker")
    remote = session.remote
    role = target_role(conversation)

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
    try:
        await session.wait_event(IceCompleted, timeout, since=since)
        if role == "server":
            stranger()  # right after the real ClientHello left
        await session.wait_event(DtlsConnected, timeout, since=since)
    except PeerError as exc:
        raise CheckFailed(f"the real handshake did not complete while {sent_by_stranger(role)} came from an "
                          f"unbound address: {exc}") from None
    finally:
        if session.socket.receive_filter is at_client_hello:
            session.socket.receive_filter = None
    stranger()  # and after it
    await settle(conversation)
    answered = [r for r in attacker.inbox if 19 < r.data[0] < 64]
    require(not answered, f"the target answered the unbound address's DTLS with {len(answered)} DTLS datagram(s)")
    require(session.peer.state == "connected", f"the probe peer is {session.peer.state}: the target ended the session")
    conversation.note(f"{sent_by_stranger(role)} from the unbound address were ignored (the target is the DTLS "
                      f"{role}); the real handshake completed")


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


async def isolation(conversation: Conversation) -> None:
    a, b = conversation.session("a"), conversation.session("b")
    token_a, token_b = send_media(conversation, a), send_media(conversation, b)
    # Session a's SRTP on session b's 5-tuple (b's socket to b's address: the same port on a
    # single-port server, b's own port on a server with a port per session).
    crossed, packet = protected_media(conversation, a)
    conversation.socket("b").send(packet, b.remote)
    await settle(conversation)
    require(echoes_of(a, token_a) == ["a"], f"session a's echo arrived on {echoes_of(a, token_a) or 'no socket'}")
    require(echoes_of(b, token_b) == ["b"], f"session b's echo arrived on {echoes_of(b, token_b) or 'no socket'}")
    require(not echoes_of(a, crossed), "session a's SRTP sent on session b's 5-tuple was echoed")
    for session in (a, b):
        foreign = session.peer.drops["srtp_unprotect_failed"] + session.peer.drops["srtcp_unprotect_failed"]
        require(foreign == 0, f"session {session.name} received {foreign} packet(s) it cannot decrypt: another "
                              "session's media")
    conversation.note("two sessions with the same SSRC each got only their own media")


CHECKS = (
    Check(
        "MIGRATE-01", "core", "RFC 8445 §7.3.1.4, §8.2, RFC 7675",
        "after NAT rebinding, an authenticated check from the new 5-tuple moves media there without a new DTLS "
        "handshake; no packets are lost beyond the switch",
        (Connect(), Echo(), Rebind("rebound"), Do(nat_rebinding, "checks and media from the new source port")),
    ),
    Check(
        "MIGRATE-02", "security", "CVE-2017-14099, CVE-2017-14114 (RTP Bleed)",
        "RTP or SRTP from an unbound 5-tuple never moves the media destination and is never decrypted into the session",
        (Connect(), Socket("attacker"), Do(rtp_bleed, "RTP and SRTP from an unbound address"), Echo()),
    ),
    Check(
        "MIGRATE-03", "security", "CVE-2023-49786, CVE-2023-51443",
        "a ClientHello from an unbound 5-tuple, before or during the real handshake, is ignored; the real "
        "handshake completes (a DTLS client target: a stranger's HelloVerifyRequest and fatal alert)",
        (Offer(), Socket("attacker", session=None),
         Do(stranger_handshake_race, "a stranger's handshake racing the real one"), Alive(media=True)),
    ),
    Check(
        "MIGRATE-04", "security", "RFC 8445 §7.3, RFC 8489 §9.1.3",
        "a check with the right ufrag and a wrong password from a new address binds nothing",
        (
            Connect(),
            Socket("attacker"),
            Send(check_request(password=WRONG_PASSWORD), via="attacker", label="right ufrag, wrong password"),
            Expect((StunError(401), Silence()), via="attacker"),
            binds_nothing("attacker"),
            Echo(),
        ),
    ),
    Check(
        "MIGRATE-05", "security", "RFC 8445 §7.3 (no replay protection in ICE)",
        "a replayed authenticated check from another address does not take the session's media away for longer "
        "than the next genuine check; the outcome is reported",
        (
            Connect(),
            Socket("attacker"),
            Do(replayed_check, "replay the nominating check from another address"),
            Send(check_request(use_candidate=True), label="the next genuine nominating check"),
            Expect(StunSuccess()),
            Echo(),
        ),
    ),
    Check(
        "MIGRATE-06", "security", "DESIGN principle 2",
        "tuples per session are capped; the oldest unselected tuple is evicted first",
        (Connect(), Do(tuple_cap, f"bind {EXTRA_TUPLES} extra 5-tuples"), Echo()),
    ),
    Check(
        "MIGRATE-07", "core", "RFC 3711 §3.2, DESIGN principle 2",
        "two sessions never exchange a packet, whatever their ufrags, SSRCs and addresses",
        (
            Connect(session="a", peer={"ssrc": SHARED_SSRC}),
            Connect(session="b", peer={"ssrc": SHARED_SSRC}),
            Do(isolation, "media of two sessions with one SSRC"),
        ),
    ),
)
