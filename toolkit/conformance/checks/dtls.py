"""DTLS — handshake and records (RFC 6347, RFC 5764, RFC 5763, RFC 8842).

Every check plays in the role the target's answer chose (a=setup:passive: the target is the DTLS
server; active: its client). Where an attack only makes sense against one role, the check plays
its counterpart against the other: DTLS-01 expects a ClientHello instead of a ServerHello,
DTLS-07 sends a HelloVerifyRequest instead of a second ClientHello, DTLS-08 a HelloRequest
instead of an epoch-1 ClientHello, DTLS-11 tampers with the ServerKeyExchange signature instead
of the CertificateVerify, DTLS-03 selects no SRTP profile instead of offering none the target
knows, DTLS-04 waits for the target to recover the probe's lost last flight. The records of
DTLS-05, -06 and -09 are out of order or malformed for either role.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from toolkit.conformance.checks.common import check_request, require
from toolkit.conformance.conversation import Conversation, LocalSocket
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import (
    Alive,
    Alternative,
    Close,
    Connect,
    Connected,
    Do,
    DtlsAlert,
    Expect,
    NoMediaTo,
    Offer,
    Renegotiate,
    Send,
    Silence,
    Step,
    StunError,
    StunSuccess,
    Wait,
    echoes_of,
    send_media,
    srtp_from_target,
)
from toolkit.peer import DtlsConnected, PeerError, PeerFailed

LOSS = 0.3
UNSUPPORTED_SRTP_PROFILE = "SRTP_ARIA_128_CTR_HMAC_SHA1_80"
"""RFC 8269's ARIA profile: OpenSSL can offer it, no WebRTC endpoint selects it."""
CRAFTED_SEQUENCE = 40
"""Sequence numbers of crafted epoch-0 records: inside the replay window of the real handshake's
(which count from 0), never equal to one of them."""


def is_dtls(data: bytes) -> bool:
    return bool(data) and 19 < data[0] < 64


def incoming_dtls(conversation: Conversation, socket: str, since: float = 0.0) -> list:
    return [d for d in conversation.datagrams
            if d.direction == "in" and d.socket == socket and d.time >= since and is_dtls(d.data) and not d.note]


def target_role(conversation: Conversation, session: str = "main") -> str:
    """The target's DTLS role in `session`: "server" (it answered a=setup:passive) or "client" (active)."""
    return "server" if conversation.session(session).peer.dtls_role == "client" else "client"


def rtp_or_rtcp_from_target(conversation: Conversation, socket: str) -> int:
    return sum(1 for d in conversation.datagrams if d.direction == "in" and d.socket == socket and d.data
               and 127 < d.data[0] < 192)


# -- DTLS-01 ---------------------------------------------------------------------------------


def handshake_roles(conversation: Conversation) -> None:
    from toolkit.crafters.dtls import HANDSHAKE_TYPES, handshake_messages

    session = conversation.session("main")
    peer = session.peer
    sent = [d for d in conversation.datagrams if d.direction == "out" and is_dtls(d.data)]
    received = incoming_dtls(conversation, "main")
    require(bool(sent) and bool(received), "no DTLS exchange was recorded")
    role = target_role(conversation)
    first_flight = [HANDSHAKE_TYPES.get(m.msg_type, str(m.msg_type)) for m in handshake_messages(received[0].data)]
    holds = ", ".join(first_flight) or "no handshake"
    if role == "server":
        require(received[0].time >= sent[0].time,
                "the target sent DTLS before the probe peer's ClientHello although its answer says a=setup:passive")
        require(any(name in ("server_hello", "hello_verify_request") for name in first_flight),
                f"the target's first DTLS datagram holds {holds}, not a ServerHello or HelloVerifyRequest: it is "
                "not acting as the DTLS server its a=setup:passive says")
    else:
        require(received[0].time <= sent[0].time,
                "the probe peer, as DTLS server, sent DTLS before the target's ClientHello")
        require("client_hello" in first_flight,
                f"the target's first DTLS datagram holds {holds}, not a ClientHello: it is not acting as the DTLS "
                "client its a=setup:active says")
    require(peer.srtp_keys is not None and peer.srtp_keys.profile in peer.srtp_profiles,
            "no SRTP profile the client offered was negotiated through use_srtp")
    connected = next(event for _, _, event in session.events if isinstance(event, DtlsConnected))
    conversation.note(f"target is the DTLS {role} (first flight: {', '.join(first_flight)}); "
                      f"use_srtp chose {peer.srtp_keys.profile}; cipher {connected.cipher}")


# -- DTLS-02, DTLS-03, DTLS-11: handshakes that must not complete --------------------------------


def forge_fingerprint(peer) -> None:
    """Advertise a fingerprint that is not the probe's certificate's (first byte inverted)."""
    digest = bytearray(bytes.fromhex(peer.fingerprint.replace(":", "")))
    digest[0] ^= 0xFF
    peer.fingerprint = digest.hex(":").upper()


async def forged_client_refused(conversation: Conversation) -> None:
    """RFC 5763 §5: on a fingerprint mismatch the target "MUST tear down the media session
    immediately". It may refuse the handshake (RFC 8122 §5's wording) or complete it and end the
    session at once: FAIL only if the session keeps working (media comes back, or comes at all)."""
    session = conversation.session("forged")
    try:
        await conversation.start(session, until="dtls")
    except PeerError as exc:
        conversation.note(f"session forged did not connect, as required: {exc}")
        return
    await asyncio.sleep(conversation.settings.silence)
    if session.peer.state != "connected":
        conversation.note(f"the handshake completed, then the target ended the session (the probe peer is "
                          f"{session.peer.state})")
        return
    token = send_media(conversation, session)
    await asyncio.sleep(conversation.settings.silence)
    require(not echoes_of(session, token),
            "the DTLS handshake completed with a client whose certificate does not match the offer's a=fingerprint, "
            "and the session kept working: its media was echoed (RFC 5763 §5: tear the media session down "
            "immediately)")
    conversation.note("the handshake completed but the session carried no media afterwards (torn down, RFC 5763 §5)")


def offer_unsupported_profile(peer) -> None:
    peer.srtp_profiles = (UNSUPPORTED_SRTP_PROFILE,)


def alert_received(conversation: Conversation) -> None:
    from toolkit.crafters.dtls import ALERT_DESCRIPTIONS

    alerts = [d for d in incoming_dtls(conversation, "main") if d.data[0] == 21]
    if target_role(conversation) == "client":
        require(bool(alerts), "the target sent no DTLS alert: the probe, as DTLS server, selected no SRTP profile "
                              "(a ServerHello without use_srtp), and the target must refuse the handshake with an "
                              "alert (RFC 5764 §4.1.1), not go on without SRTP keys")
    else:
        require(bool(alerts), "the target sent no DTLS alert: with no SRTP profile in common it must refuse the "
                              "handshake with an alert (RFC 5764 §4.1.1), not complete it without use_srtp")
    alert = alerts[0].data
    if alert[3:5] == b"\x00\x00" and len(alert) >= 15:
        require(alert[13] == 2, f"the target's alert has level {alert[13]}, not fatal (2)")
        what = f"fatal {ALERT_DESCRIPTIONS.get(alert[14], f'alert {alert[14]}')}"
    else:
        what = "encrypted"
    conversation.note(f"the target sent a DTLS alert ({what})")


async def attempt_without_common_profile(conversation: Conversation) -> None:
    """The handshake with no SRTP profile in common, whatever its outcome: RFC 5764 §4.1.1 lets it
    fail or fall back to plain DTLS. Then a silence window for media to show up."""
    session = conversation.session("main")
    try:
        await conversation.start(session, until="dtls")
        conversation.note("the handshake completed without a common SRTP profile")
    except PeerError as exc:
        conversation.note(f"the handshake did not complete: {exc}")
    await asyncio.sleep(conversation.settings.silence)


def no_plain_media(conversation: Conversation) -> None:
    """No RTP or RTCP at all: without a negotiated SRTP profile there are no SRTP keys, so any is plain."""
    count = rtp_or_rtcp_from_target(conversation, "main")
    require(count == 0, f"the target sent {count} RTP/RTCP packet(s) although no SRTP profile was negotiated: "
                        "media without SRTP keys is plain RTP (RFC 8827 §6.5)")
    conversation.note("no RTP or RTCP came from the target")


def signed_message(dtls_role: str) -> tuple[int, str]:
    """The probe's handshake message whose signature proves its key: (type, name) for its DTLS role."""
    from toolkit.crafters.dtls import CERTIFICATE_VERIFY, SERVER_KEY_EXCHANGE

    return (CERTIFICATE_VERIFY, "CertificateVerify") if dtls_role == "client" else (SERVER_KEY_EXCHANGE,
                                                                                    "ServerKeyExchange")


def certificate_verify_transform(mode: str, conversation: Conversation, signed: int):
    """Rewrite the peer's flight: corrupt (`mode="corrupt"`) or drop (`"omit"`) its `signed`
    message (CertificateVerify as DTLS client, ServerKeyExchange as server)."""
    from toolkit.crafters.dtls import HANDSHAKE, RECORD_HEADER_LENGTH, parse_records

    def transform(data: bytes) -> list[bytes]:
        if not is_dtls(data):
            return [data]
        records = []
        for record in map(bytes, parse_records(data)):
            is_verify = (record[0] == HANDSHAKE and record[3:5] == b"\x00\x00"
                         and len(record) > RECORD_HEADER_LENGTH and record[RECORD_HEADER_LENGTH] == signed)
            if is_verify:
                conversation.scratch["certificate_verify_seen"] = True
                if mode == "omit":
                    continue
                record = record[:-1] + bytes([record[-1] ^ 0x01])
            records.append(record)
        return [b"".join(records)] if records else []

    return transform


@dataclass(frozen=True, eq=False)
class TamperSignature(Step):
    """From now on the session's peer corrupts (`mode="corrupt"`: one bit flipped) or leaves out
    (`"omit"`) the handshake message whose signature proves its key: its CertificateVerify as DTLS
    client, its ServerKeyExchange as DTLS server (`certificate_verify_transform`)."""

    session: str
    mode: str

    async def run(self, conversation: Conversation) -> None:
        session = conversation.session(self.session)
        signed, _ = signed_message(session.peer.dtls_role)
        session.send_transform = certificate_verify_transform(self.mode, conversation, signed)

    def describe(self) -> str:
        return f"TamperSignature(session={self.session}, {self.mode})"


def signature_was_tampered(conversation: Conversation) -> None:
    """SKIP unless the handshakes carried the signed message that was tampered with."""
    if not conversation.scratch.get("certificate_verify_seen"):
        if target_role(conversation, "corrupt") == "client":
            raise CheckSkipped("the target is the DTLS client (a=setup:active) and the cipher suite it chose has "
                               "no ServerKeyExchange, so there was no server signature to tamper with")
        raise CheckSkipped("the target did not ask for a client certificate (no CertificateRequest), so there "
                           "was no CertificateVerify to tamper with")
    _, name = signed_message(conversation.session("corrupt").peer.dtls_role)
    conversation.note(f"the probe's {name} was tampered with (the target is the DTLS "
                      f"{target_role(conversation, 'corrupt')})")


# -- DTLS-04, DTLS-05: an unreliable network ----------------------------------------------------


def retransmission_key(direction: str, data: bytes) -> tuple:
    """What a datagram and its retransmissions share (record sequence numbers change): its first
    record's content type and epoch, and for an epoch-0 handshake record the message type and
    message_seq."""
    if len(data) >= 25 and data[0] == 22 and data[3:5] == b"\x00\x00":
        return direction, 22, 0, data[13], data[17:19]
    return direction, data[0], data[3:5]


def lossy_network(conversation: Conversation) -> None:
    """Drop 30 % of DTLS datagrams each way (seeded), always the first of each direction, never two
    in a row, never a retransmission of a datagram already lost: every flight is lost at most
    once, so the handshake's time stays bounded."""
    rng = conversation.rng
    session = conversation.session("main")
    dropped = conversation.scratch.setdefault("dropped", {"out": 0, "in": 0})
    seen = {"out": 0, "in": 0}
    last_dropped = {"out": False, "in": False}
    lost: set[tuple] = set()

    def lose(direction: str, data: bytes) -> bool:
        if not is_dtls(data):
            return False
        seen[direction] += 1
        key = retransmission_key(direction, data)
        drop = key not in lost and (seen[direction] == 1 or (not last_dropped[direction] and rng.random() < LOSS))
        if drop:
            lost.add(key)
        last_dropped[direction] = drop
        dropped[direction] += drop
        return drop

    session.send_transform = lambda data: [] if lose("out", data) else [data]
    session.socket.receive_filter = lambda data: not lose("in", data)
    conversation.scratch["seen"] = seen


RETRANSMISSION_TIMER = 1.0
"""RFC 6347 §4.2.4.1: the initial retransmission timer (SHOULD be 1 s), doubled on each
retransmission up to 60 s, and kept doubled until a flight goes through without loss."""
MAX_RETRANSMISSION_TIMER = 60.0


def backoff_budget(losses: int) -> float:
    """The longest the RFC 6347 schedule may wait on `losses` lost flights: each costs one timer
    expiry, and the timer may stay doubled across flights (1 + 2 + 4 + … s, each at most 60 s)."""
    return sum(min(RETRANSMISSION_TIMER * 2 ** n, MAX_RETRANSMISSION_TIMER) for n in range(losses))


async def handshake_through_loss(conversation: Conversation) -> None:
    """ICE, then the DTLS handshake under `lossy_network`, given the connect timeout plus the
    retransmission waits the RFC allows for the flights lost so far: a correct server that
    backs off as RFC 6347 allows never runs out of time by bad luck, and one that never
    retransmits still stalls (its lost flight is never resent) and FAILs."""
    session = conversation.session("main")
    since = len(session.events)
    try:
        await conversation.start(session, until="ice")
    except PeerError as exc:
        raise CheckFailed(f"session main could not complete ICE: {exc}") from None
    dropped = conversation.scratch["dropped"]
    loop = conversation.loop
    started = loop.time()
    while True:
        losses = dropped["out"] + dropped["in"]
        budget = conversation.settings.connect_timeout + backoff_budget(losses)
        left = started + budget - loop.time()
        if left <= 0:
            raise CheckFailed(f"the DTLS handshake did not complete within {budget:.0f} s (connect timeout "
                              f"{conversation.settings.connect_timeout:g} s + {backoff_budget(losses):.0f} s of "
                              f"RFC 6347 retransmission backoff for {losses} lost datagrams; state "
                              f"{session.peer.state!r})")
        try:
            await session.wait_event(DtlsConnected, min(left, 0.5), since=since)
            return
        except PeerError as exc:
            if any(isinstance(event, PeerFailed) for _, _, event in session.events[since:]):
                raise CheckFailed(f"session main could not connect under loss: {exc}") from None


async def reliable_network(conversation: Conversation) -> None:
    session = conversation.session("main")
    session.send_transform = None
    session.socket.receive_filter = None
    dropped, seen = conversation.scratch["dropped"], conversation.scratch["seen"]
    role = target_role(conversation)
    conversation.note(f"handshake completed with {dropped['out']} of {seen['out']} probe and {dropped['in']} of "
                      f"{seen['in']} target DTLS datagrams lost (the target is the DTLS {role})")
    if role == "client":
        await target_finished_handshake(conversation, session)


async def target_finished_handshake(conversation: Conversation, session) -> None:
    """As DTLS server the probe is done first; if its last flight was lost, the target completes only
    once it retransmits its own and gets the probe's again (RFC 6347 §4.2.4). Media until one is echoed."""
    deadline = conversation.loop.time() + conversation.settings.connect_timeout
    tries = 0
    while conversation.loop.time() < deadline:
        tries += 1
        token = send_media(conversation, session)
        await asyncio.sleep(conversation.settings.silence)
        if echoes_of(session, token):
            conversation.note(f"the target, as DTLS client, echoed media after {tries} attempt(s)")
            return
    raise CheckFailed(f"the target, as DTLS client, never completed its side of the handshake within "
                      f"{conversation.settings.connect_timeout:g} s: a client whose last flight gets no answer "
                      "must retransmit it (RFC 6347 §4.2.4)")


def shuffled_flights(conversation: Conversation) -> None:
    """Each epoch-0 handshake message of the probe's flights in three fragments, last fragment first,
    the first one twice; the handshake records of a flight in reverse order, one per datagram; every
    datagram sent twice."""
    from scapy.packet import Raw

    from toolkit.crafters.dtls import HANDSHAKE, DtlsHandshake, DtlsRecord, fragment_handshake, parse_records

    stats = conversation.scratch.setdefault("shuffled", {"messages": 0, "datagrams": 0})

    def transform(data: bytes) -> list[bytes]:
        if not is_dtls(data):
            return [data]
        handshakes, rest = [], []
        for record in parse_records(data):
            if record.content_type != HANDSHAKE or record.epoch != 0:
                rest.append(bytes(record))
                continue
            message = DtlsHandshake(bytes(record.payload))
            body = bytes(message.payload)
            pieces = fragment_handshake(message, 3) if len(body) >= 3 else [message]
            order = [pieces[-1], *pieces[:-1], pieces[0]]
            rebuilt = DtlsRecord(content_type=HANDSHAKE, version=record.version, epoch=0,
                                 sequence_number=record.sequence_number) / Raw(b"".join(map(bytes, order)))
            handshakes.append(bytes(rebuilt))
            stats["messages"] += 1
        datagrams = [*reversed(handshakes), *([b"".join(rest)] if rest else [])]
        stats["datagrams"] += len(datagrams)
        return datagrams + datagrams

    conversation.session("main").send_transform = transform


def shuffle_report(conversation: Conversation) -> None:
    conversation.session("main").send_transform = None
    stats = conversation.scratch["shuffled"]
    conversation.note(f"{stats['messages']} handshake messages went as reordered, duplicated fragments in "
                      f"{stats['datagrams']} datagrams (each sent twice)")


# -- DTLS-06, DTLS-09: crafted records -----------------------------------------------------------


def out_of_order_records(conversation: Conversation) -> list[bytes]:
    """CCS before ClientHello, Finished before CCS, epoch-1 data before CCS, an epoch-1 ClientHello."""
    from scapy.packet import Raw

    from toolkit.crafters.dtls import (
        APPLICATION_DATA,
        CHANGE_CIPHER_SPEC,
        CLIENT_HELLO,
        FINISHED,
        HANDSHAKE,
        DtlsChangeCipherSpec,
        DtlsHandshake,
        DtlsRecord,
        client_hello,
    )

    rng = conversation.rng
    sequence = CRAFTED_SEQUENCE
    return [
        bytes(DtlsRecord(content_type=CHANGE_CIPHER_SPEC, sequence_number=sequence) / DtlsChangeCipherSpec()),
        bytes(DtlsRecord(content_type=HANDSHAKE, sequence_number=sequence + 1)
              / DtlsHandshake(msg_type=FINISHED, message_seq=4) / Raw(rng.randbytes(12))),
        bytes(DtlsRecord(content_type=APPLICATION_DATA, epoch=1, sequence_number=0) / Raw(rng.randbytes(48))),
        bytes(DtlsRecord(content_type=HANDSHAKE, epoch=1, sequence_number=1)
              / DtlsHandshake(msg_type=CLIENT_HELLO) / client_hello()),
    ]


def malformed_records(conversation: Conversation) -> list[bytes]:
    """Record length past the datagram, zero-length fragments, fragment offset past the length, future
    epochs, and fragments of an announced 16 MiB message (CVE-2014-3507, CVE-2009-1377/1387)."""
    from scapy.packet import Raw

    from toolkit.crafters.dtls import CERTIFICATE, CLIENT_HELLO, HANDSHAKE, DtlsHandshake, DtlsRecord

    rng = conversation.rng
    sequence = CRAFTED_SEQUENCE
    datagrams = [
        bytes(DtlsRecord(content_type=HANDSHAKE, sequence_number=sequence, length=500) / Raw(rng.randbytes(10))),
        bytes(DtlsRecord(content_type=HANDSHAKE, sequence_number=sequence + 1)
              / DtlsHandshake(msg_type=CLIENT_HELLO, length=1000, message_seq=0, fragment_offset=2000,
                              fragment_length=10) / Raw(rng.randbytes(10))),
        bytes(DtlsRecord(content_type=HANDSHAKE, epoch=7, sequence_number=3) / Raw(rng.randbytes(40))),
        bytes(DtlsRecord(content_type=HANDSHAKE, epoch=0xFFFF, sequence_number=0xFFFFFFFFFFFF) / Raw(rng.randbytes(40))),
    ]
    for number in range(8):
        datagrams.append(bytes(DtlsRecord(content_type=HANDSHAKE, sequence_number=sequence + 2 + number)
                               / DtlsHandshake(msg_type=CLIENT_HELLO, length=100, message_seq=number,
                                               fragment_offset=0, fragment_length=0)))
    for number in range(8):
        datagrams.append(bytes(DtlsRecord(content_type=HANDSHAKE, sequence_number=sequence + 10 + number)
                               / DtlsHandshake(msg_type=CERTIFICATE, length=0xFFFFFF, message_seq=1,
                                               fragment_offset=number * 1000, fragment_length=1000)
                               / Raw(rng.randbytes(1000))))
    return datagrams


def client_hello_datagram(conversation: Conversation) -> bytes:
    from toolkit.crafters.dtls import client_hello_flight

    return b"".join(bytes(record) for record in client_hello_flight(first_sequence=CRAFTED_SEQUENCE))


def hello_verify_request_datagram(rng, sequence: int = CRAFTED_SEQUENCE) -> bytes:
    """An epoch-0 HelloVerifyRequest: the first flight of a server starting a handshake."""
    from toolkit.crafters.dtls import HANDSHAKE, HELLO_VERIFY_REQUEST, DtlsHandshake, DtlsHelloVerifyRequest, DtlsRecord

    return bytes(DtlsRecord(content_type=HANDSHAKE, sequence_number=sequence)
                 / DtlsHandshake(msg_type=HELLO_VERIFY_REQUEST, message_seq=0)
                 / DtlsHelloVerifyRequest(cookie=rng.randbytes(20)))


def new_handshake_datagram(conversation: Conversation) -> bytes:
    """What starts a new handshake on the connected 5-tuple: a ClientHello to a DTLS server (RFC 6347
    §4.2.8), a HelloVerifyRequest to a DTLS client (the first flight of a server that restarted)."""
    if target_role(conversation) == "server":
        return client_hello_datagram(conversation)
    conversation.note("the target is the DTLS client: a HelloVerifyRequest stands for the new handshake")
    return hello_verify_request_datagram(conversation.rng)


class DtlsRetransmission(Alternative):
    """A datagram the target already sent, byte for byte: its last flight again, which RFC 6347
    §4.2.4 has a server resend when records that look like the client's last flight arrive."""

    def judge(self, data: bytes, conversation: Conversation, socket: LocalSocket) -> tuple[bool, str] | None:
        if not is_dtls(data) or sum(received.data == data for received in socket.inbox) < 2:
            return None
        return True, "a retransmission of the target's last handshake flight"

    def __str__(self) -> str:
        return "a retransmission of its last flight"


# -- DTLS-08 ---------------------------------------------------------------------------------


def renegotiation_refused(conversation: Conversation) -> None:
    session = conversation.session("main")
    require(session.peer.renegotiation_pending,
            "the target completed a renegotiation (RFC 8827 §6.5: a WebRTC endpoint must reject it)"
            + (" after the probe's HelloRequest" if target_role(conversation) == "client" else ""))
    how = ("refused with a no_renegotiation alert" if session.peer.renegotiation_refused
           else "ignored (no answer to the renegotiation)")
    conversation.note(f"{how}; the target is the DTLS {target_role(conversation)}")


# -- DTLS-10 ---------------------------------------------------------------------------------


CLOSE_GRACE = 0.3
"""DTLS-10: seconds after close_notify leaves during which SRTP from the target is not counted.
A packet the target sent before it read the close_notify arrives within about one round trip
(well under a millisecond on loopback, a few tens of ms across a continent); the rest covers a
busy target that reads its socket late."""


async def after_close_notify(conversation: Conversation) -> None:
    from scapy.packet import Raw

    from toolkit.crafters.rtp import Rtp

    session = conversation.session("main")
    closed_at = conversation.now()
    conversation.scratch["closed_at"] = closed_at
    await asyncio.sleep(max(conversation.settings.silence, 2 * CLOSE_GRACE))
    packet = Rtp(payload_type=session.peer.audio_pt, sequence=conversation.rng.getrandbits(16), timestamp=0,
                 ssrc=session.peer.ssrc + 1) / Raw(b"rtcgate-after-close")
    session.socket.send(session.peer.protect_rtp(bytes(packet)), session.remote)
    await asyncio.sleep(conversation.settings.silence)
    in_flight = srtp_from_target(conversation, "main", since=closed_at) - srtp_from_target(
        conversation, "main", since=closed_at + CLOSE_GRACE)
    media = srtp_from_target(conversation, "main", since=closed_at + CLOSE_GRACE)
    require(media == 0, f"the target sent {media} SRTP packet(s) more than {CLOSE_GRACE:g} s after close_notify")
    if in_flight:
        conversation.note(f"{in_flight} SRTP packet(s) arrived within {CLOSE_GRACE:g} s of close_notify: sent before "
                          "the target read it, not counted")
    replies = [d for d in incoming_dtls(conversation, "main", since=closed_at) if d.data[0] == 21]
    conversation.note("the target answered with its own close_notify" if replies else "no close_notify came back")


CHECKS = (
    Check(
        "DTLS-01", "core", "RFC 5763 §5, RFC 8842 §5, RFC 5764 §4.1",
        "handshake completes with the role from SDP (a=setup:passive answer ⇒ target is DTLS server, active ⇒ "
        "DTLS client); SRTP profile negotiated via use_srtp",
        (Connect(), Do(handshake_roles, "roles and use_srtp"), Alive(media=True)),
    ),
    Check(
        "DTLS-02", "core", "RFC 5763 §5, RFC 8122 §5",
        "the certificate's fingerprint equals the SDP a=fingerprint; the target rejects a client whose "
        "certificate does not match the offer's fingerprint",
        (
            Connect(),  # the probe peer verifies the target's certificate against a=fingerprint
            Offer(session="forged", prepare=forge_fingerprint),
            Do(forged_client_refused, "the handshake fails, or the session ends at once"),
            NoMediaTo("forged"),
            Alive(),
        ),
    ),
    Check(
        "DTLS-03", "core", "RFC 5764 §4.1.1",
        "no common SRTP profile → the handshake is refused with a DTLS alert",
        (
            Connect(prepare=offer_unsupported_profile, must_fail=True,
                    why=f"the probe accepts only {UNSUPPORTED_SRTP_PROFILE}"),
            Do(alert_received, "a DTLS alert"),
        ),
    ),
    Check(
        "DTLS-04", "core", "RFC 6347 §4.2.4",
        "lost flight → retransmission; handshake completes under 30 % loss",
        (Offer(), Do(lossy_network, "30 % DTLS loss each way"),
         Do(handshake_through_loss, "handshake, timed by the RFC 6347 backoff for the losses"),
         Do(reliable_network, "loss report"), Alive(media=True)),
        timeout=120.0,
    ),
    Check(
        "DTLS-05", "core", "RFC 6347 §4.2.2, §4.2.3",
        "reordered, duplicated and fragmented handshake messages are reassembled",
        (Offer(), Do(shuffled_flights, "fragment, reorder and duplicate the probe's flights"), Connect(),
         Do(shuffle_report, "report"), Alive(media=True)),
    ),
    Check(
        "DTLS-06", "security", "RFC 6347 §4.1, pion/dtls#145, tinydtls#12/#13, CVE-2017-7243",
        "ChangeCipherSpec before ClientHello, Finished before ChangeCipherSpec, epoch-1 records before CCS, "
        "epoch-1 ClientHello → ignored or alert, no crash, no state corruption",
        (
            Offer(),
            Send(check_request(use_candidate=False), label="bind the address"),
            Expect(StunSuccess()),
            Send(out_of_order_records, label="out-of-order records before the handshake"),
            Expect((Silence(), DtlsAlert()), about="any"),
            Connect(after="after out-of-order records from its bound address"),
            Send(out_of_order_records, label="the same after the handshake"),
            Expect((Silence(), DtlsAlert(), DtlsRetransmission()), about="any"),
            Alive(media=True),
        ),
    ),
    Check(
        "DTLS-07", "security", "RFC 6347 §4.2.8",
        "a second ClientHello after the handshake does not reset the session (a DTLS client target: a "
        "HelloVerifyRequest)",
        (
            Connect(),
            Send(new_handshake_datagram, label="a new ClientHello (to a DTLS client: a HelloVerifyRequest) on the "
                                               "connected 5-tuple"),
            Wait(),
            Alive(media=True),
            Connected(),
        ),
    ),
    Check(
        "DTLS-08", "security", "RFC 8827 §6.5, RFC 5746",
        "renegotiation is refused",
        (
            Connect(),
            Renegotiate(),
            Wait(),
            Do(renegotiation_refused, "the target did not renegotiate"),
        ),
    ),
    Check(
        "DTLS-09", "security", "RFC 6347 §4.1.2.7, CVE-2014-3507, CVE-2009-1377, CVE-2009-1387",
        "malformed records (length past the datagram, zero-length fragments, fragment offset past length, future "
        "epochs) → dropped; memory stays bounded",
        (
            Offer(),
            Send(check_request(use_candidate=False), label="bind the address"),
            Expect(StunSuccess()),
            Send(malformed_records, label="malformed records before the handshake"),
            Expect((Silence(), DtlsAlert()), about="any"),
            Connect(within=3.0, after="after malformed records from its bound address"),
            Send(malformed_records, label="the same after the handshake"),
            Expect((Silence(), DtlsAlert(), DtlsRetransmission()), about="any"),
            Alive(media=True),
        ),
    ),
    Check(
        "DTLS-10", "core", "RFC 6347 §4.2.7, RFC 5246 §7.2.1",
        "no SRTP from the target after close_notify (beyond packets already in flight)",
        (
            Connect(),
            Alive(),
            Close(how="dtls"),
            Do(after_close_notify, "no media after close_notify"),
        ),
    ),
    Check(
        "DTLS-11", "security", "CVE-2022-29222, CVE-2014-3572, RFC 5246 §7.4.3, §7.4.8",
        "client Certificate without a valid CertificateVerify is rejected (a DTLS client target: a ServerKeyExchange "
        "with a bad or no signature)",
        (
            Offer(session="corrupt"),
            TamperSignature("corrupt", "corrupt"),
            Connect(session="corrupt", must_fail=True, within=5.0,
                    why="the probe's signature is invalid (its CertificateVerify as DTLS client, its ServerKeyExchange "
                        "as server)"),
            Offer(session="omit"),
            TamperSignature("omit", "omit"),
            Connect(session="omit", must_fail=True, within=2.5,
                    why="the probe left out its signed message (CertificateVerify as DTLS client, ServerKeyExchange "
                        "as server)"),
            Do(signature_was_tampered, "the probe's signature was tampered with"),
            NoMediaTo("corrupt", "omit"),
        ),
    ),
    Check(
        "DTLS-12", "core", "RFC 8827 §6.5, RFC 5764 §4.1.1",
        "no common SRTP profile → no media from the target, whether the handshake fails or falls back to DTLS",
        (
            Offer(prepare=offer_unsupported_profile),
            Do(attempt_without_common_profile, "a handshake with no SRTP profile in common"),
            Do(no_plain_media, "no RTP or RTCP"),
        ),
    ),
    Check(
        "DTLS-13", "security", "RFC 5246 §7.2.2, RFC 8827 §6.5",
        "after a refused renegotiation the session and its media go on",
        (
            Connect(),
            Renegotiate(),
            Wait(),
            Alive(media=True),
            Connected(),
        ),
    ),
    Check(
        "DTLS-14", "security", "RFC 6347 §4.2.7, RFC 5246 §7.2.1",
        "after close_notify the closed session's ICE credentials are no longer answered",
        (
            Connect(),
            Alive(),
            Close(how="dtls"),
            Wait(),  # for the session to end
            Send(check_request(), label="check with the closed session's credentials"),
            Expect((Silence(), StunError())),
        ),
    ),
)
