"""SRTP — media protection (RFC 3711, RFC 7714, RFC 6188)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from toolkit.conformance.checks.common import require
from toolkit.conformance.conversation import Conversation, Session
from toolkit.conformance.liveness import counts_sequence, wait_for_sign
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import (
    Alive,
    Connect,
    Do,
    SrtpProfile,
    Step,
    dropped_by_report,
    echoes_of,
    expect_echo,
    media_token,
    next_report,
    next_timestamp,
    protected_media,
    send_silence,
    sequence_of,
)

WRAP_START = 65533
"""First sequence number of SRTP-04's stream: 65533, 65534, 65535, 0, 1, 2 cross the wrap."""
WINDOW_JUMP = 2000
"""SRTP-03: how far the stream moves on past a held-back packet: beyond the minimum replay window
(64), though a receiver may keep a larger one (RFC 3711 §3.3.2: "MAY be set to a higher value")."""

_RTP_TAG = {"SRTP_AES128_CM_SHA1_80": 10, "SRTP_AES128_CM_SHA1_32": 4, "SRTP_AEAD_AES_128_GCM": 16,
            "SRTP_AEAD_AES_256_GCM": 16}


async def must_not_echo(conversation: Conversation, datagrams: dict[str, bytes], token: bytes) -> None:
    """Send each labelled datagram; none may bring back an echo of `token`."""
    session = conversation.session("main")
    for data in datagrams.values():
        session.socket.send(data, session.remote)
    await asyncio.sleep(conversation.settings.silence)
    if echoes_of(session, token):
        raise CheckFailed(f"one of {', '.join(datagrams)} was accepted and echoed")


async def send_and_expect(conversation: Conversation, data: bytes, token: bytes, what: str) -> None:
    session = conversation.session("main")
    session.socket.send(data, session.remote)
    try:
        await expect_echo(conversation, session, token, arrives_on=session.socket.name)
    except CheckFailed as exc:
        raise CheckFailed(f"{what}: {exc}") from None


# -- SRTP-02, SRTP-03, SRTP-05, SRTP-06 --------------------------------------------------------


async def tampered(conversation: Conversation) -> None:
    session = conversation.session("main")
    if conversation.target.echoes is False:
        await dropped_by_report(conversation, session, lambda genuine: tampered_copies(session),
                                "packets with a flipped bit")
        return
    for what, index in (("a flipped payload bit", 12), ("a flipped authentication-tag bit", -1)):
        token, original = protected_media(conversation, session)
        forged = bytearray(original)
        forged[index] ^= 0x01
        # A receiver that skips the tag check decrypts a flipped payload bit into the token's first
        # byte: look for the rest of the token.
        await must_not_echo(conversation, {what: bytes(forged)}, token[1:])
        # No state change: the genuine packet with the same sequence number is still welcome.
        await send_and_expect(conversation, original, token, f"the genuine packet after {what}")
    conversation.note("forged packets were dropped; the genuine ones with their sequence numbers then accepted")


def tampered_copies(session: Session) -> list[tuple[bytes, bytes]]:
    """Two packets of the stream, protected, each with a copy whose payload bit or tag bit is
    flipped: (forged, original)."""
    from toolkit.peer.audio import SILENCE_PACKET

    pairs = []
    for index in (12, -1):
        session.peer.send_rtp(SILENCE_PACKET, timestamp=0)
        (data, _), = session.take_output()
        forged = bytearray(data)
        forged[index] ^= 0x01
        pairs.append((bytes(forged), data))
    return pairs


async def replays(conversation: Conversation) -> None:
    """RFC 3711 §3.3.2: a packet inside the replay window that was already received is dropped. A
    packet older than the window is dropped too, but the window may be any size from 64 up, so a
    held-back packet WINDOW_JUMP behind may be accepted by a larger one: then, being inside that
    window and received, a second copy of it must be dropped."""
    session = conversation.session("main")
    if conversation.target.echoes is False:
        await replays_by_report(conversation, session)
        return
    token, packet = protected_media(conversation, session)
    await send_and_expect(conversation, packet, token, "the original packet")
    await replayed_once(conversation, packet, token, "a replayed SRTP packet was accepted a second time")
    # One packet of the stream protected and held back while the stream moves WINDOW_JUMP packets on
    # (protected, never sent: a burst of loss). The session's own stream, not a second SSRC: how a
    # target routes an unsignaled SSRC (RFC 8843 §9.2) is not what this check is about.
    old_token, old = protected_media(conversation, session)
    for _ in range(WINDOW_JUMP - 1):
        session.peer.send_rtp(b"", timestamp=0)
    session.take_output()
    new_token, new = protected_media(conversation, session)
    await send_and_expect(conversation, new, new_token, f"a packet {WINDOW_JUMP} sequence numbers ahead")
    session.socket.send(old, session.remote)
    await asyncio.sleep(conversation.settings.silence)
    if not echoes_of(session, old_token):
        conversation.note(f"the replay, and the never-seen packet {WINDOW_JUMP} behind, were dropped")
        return
    await replayed_once(conversation, old, old_token,
                        f"the packet {WINDOW_JUMP} behind was accepted (a replay window that large is allowed) "
                        "and then accepted again when replayed")
    conversation.note(f"the replay was dropped; the never-seen packet {WINDOW_JUMP} behind was accepted once (the "
                      f"target's replay window is over {WINDOW_JUMP} packets, which RFC 3711 §3.3.2 allows) and its "
                      "replay dropped")


async def replayed_once(conversation: Conversation, packet: bytes, token: bytes, failure: str) -> None:
    """Send `packet` again; its token must have been echoed exactly once, on the session's socket."""
    session = conversation.session("main")
    session.socket.send(packet, session.remote)
    await asyncio.sleep(conversation.settings.silence)
    require(echoes_of(session, token) == [session.socket.name], failure)


def runts_of(packet: bytes, profile: str) -> dict[str, bytes]:
    """Runts of one SRTP packet: shorter than an RTP header, than header + tag, or its last byte cut."""
    tag = _RTP_TAG.get(profile, 10)
    variants = {f"{size}-byte runt": packet[:size] for size in (1, 2, 11, 12, 12 + tag - 1)}
    variants["packet without its last tag byte"] = packet[:-1]
    return variants


def runt_pairs(session: Session) -> list[tuple[bytes, bytes]]:
    """(runt, the whole packet) for each runt of the session's next packet."""
    from toolkit.peer.audio import SILENCE_PACKET

    session.peer.send_rtp(SILENCE_PACKET, timestamp=0)
    (packet, _), = session.take_output()
    return [(runt, packet) for runt in runts_of(packet, session.peer.srtp_keys.profile).values()]


async def replays_by_report(conversation: Conversation, session: Session) -> None:
    """SRTP-03 against a target that does not echo, by the cumulative loss in its RTCP reports on
    our stream (expected − received: a packet taken twice, or the never-seen packet held back,
    lowers it): a packet, its replay, then a packet WINDOW_JUMP ahead, then the one held back
    before the jump, which a window over WINDOW_JUMP packets may take once, and then its replay."""
    from toolkit.peer.audio import SILENCE_PACKET

    if not conversation.target.reports:
        raise CheckSkipped("the target neither echoes media nor reports on our stream in RTCP (learned in the "
                           "sanity conversation): whether it takes replays is not observable")

    def packet() -> bytes:
        session.peer.send_rtp(SILENCE_PACKET, timestamp=next_timestamp(conversation))
        (data, _), = session.take_output()
        return data

    original = packet()
    session.socket.send(original, session.remote)
    first = await next_report(conversation, session, sequence_of(original), "the original packet")
    old = packet()  # held back: a burst of loss
    for _ in range(WINDOW_JUMP - 1):
        packet()
    new = packet()
    session.socket.send(original, session.remote)  # the replay
    session.socket.send(new, session.remote)
    jumped = await next_report(conversation, session, sequence_of(new),
                               f"a packet {WINDOW_JUMP} sequence numbers ahead")
    require(jumped.lost == first.lost + WINDOW_JUMP,
            f"a replayed SRTP packet was accepted a second time: {jumped.text}, not {first.lost + WINDOW_JUMP} "
            f"({WINDOW_JUMP} never sent)")
    last = await sent_and_reported(conversation, session, old, "the packet after the old one")
    if last.lost == jumped.lost:
        conversation.note(f"the replay, and the never-seen packet {WINDOW_JUMP} behind, were dropped: {last.text}")
        return
    require(last.lost == jumped.lost - 1, f"{last.text}: the cumulative loss should be {jumped.lost} (the packet "
                                          f"{WINDOW_JUMP} behind dropped) or {jumped.lost - 1} (taken once)")
    again = await sent_and_reported(conversation, session, old, "the packet after the old one's replay")
    require(again.lost == last.lost, f"the packet {WINDOW_JUMP} behind was accepted (a replay window that large is "
                                     f"allowed) and then accepted again when replayed: {again.text}, not {last.lost}")
    conversation.note(f"the replay was dropped; the never-seen packet {WINDOW_JUMP} behind was accepted once (the "
                      f"target's replay window is over {WINDOW_JUMP} packets, which RFC 3711 §3.3.2 allows) and its "
                      f"replay dropped: {again.text}")


async def sent_and_reported(conversation: Conversation, session: Session, packet: bytes, what: str):
    """Send `packet`, then one new packet for the target's next RTCP report to count; that report."""
    session.socket.send(packet, session.remote)
    after = send_silence(conversation, session, packets=1)
    return await next_report(conversation, session, after, what)


async def runts(conversation: Conversation) -> None:
    session = conversation.session("main")
    if conversation.target.echoes is False:
        await dropped_by_report(conversation, session, lambda genuine: runt_pairs(session), "runt SRTP packets")
        return
    token, packet = protected_media(conversation, session)
    variants = runts_of(packet, session.peer.srtp_keys.profile)
    await must_not_echo(conversation, variants, token)
    await send_and_expect(conversation, packet, token, "the whole packet after its runts")
    conversation.note(f"{len(variants)} runts dropped: sizes {', '.join(str(len(v)) for v in variants.values())}")


async def plain_rtp(conversation: Conversation) -> None:
    from scapy.packet import Raw

    from toolkit.crafters.rtp import Rtp

    session = conversation.session("main")
    if conversation.target.echoes is False:
        await dropped_by_report(conversation, session, lambda genuine: [(plain_copy(session, genuine), None)],
                                "plain RTP")
        return
    token = media_token(conversation)
    packet = Rtp(payload_type=session.peer.audio_pt, sequence=conversation.rng.getrandbits(16),
                 timestamp=conversation.rng.getrandbits(32), ssrc=session.peer.ssrc) / Raw(token + bytes(20))
    await must_not_echo(conversation, {"plain RTP": bytes(packet)}, token)
    conversation.note("plain RTP was dropped")


def plain_copy(session: Session, genuine: int) -> bytes:
    """A plain (unprotected) RTP packet of the stream, 50 sequence numbers past the genuine one."""
    from scapy.packet import Raw

    from toolkit.crafters.rtp import Rtp
    from toolkit.peer.audio import SILENCE_PACKET

    return bytes(Rtp(payload_type=session.peer.audio_pt, sequence=(genuine + 50) & 0xFFFF, timestamp=0,
                     ssrc=session.peer.ssrc) / Raw(SILENCE_PACKET))


# -- SRTP-04 ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AcrossWrap(Step):
    """Send session main's packets 65533 … 2 (indexes 0 … 5 of a stream started at WRAP_START) in
    `order` (`what` says how, for messages); every one must be accepted: echoed, or, against a
    target that does not echo, counted without loss in its RTCP report (`wrap_by_report`)."""

    order: tuple[int, ...]
    what: str

    async def run(self, conversation: Conversation) -> None:
        order, what = self.order, self.what
        session = conversation.session("main")
        if conversation.target.echoes is False:
            await wrap_by_report(conversation, session, order, what)
            return
        packets = [protected_media(conversation, session) for _ in range(6)]  # 65533 … 2
        for index in order:
            session.socket.send(packets[index][1], session.remote)
            await asyncio.sleep(0.005)
        await asyncio.sleep(conversation.settings.silence)
        sequence = [(WRAP_START + index) & 0xFFFF for index in range(6)]
        missing = [sequence[index] for index, (token, _) in enumerate(packets) if not echoes_of(session, token)]
        require(not missing, f"packets with sequence numbers {missing} were not accepted across the wrap ({what})")
        conversation.note(f"sent {wrap_order(order)} ({what}): all accepted (rollover counter followed the wrap)")

    def describe(self) -> str:
        return f"AcrossWrap({wrap_order(self.order)})"


def wrap_order(order: tuple[int, ...]) -> str:
    return ", ".join(str((WRAP_START + index) & 0xFFFF) for index in order)


IN_ORDER = (0, 1, 2, 3, 4, 5)
"""65533, 65534, 65535, 0, 1, 2."""
REORDERED = (0, 1, 3, 2, 5, 4)
"""65533, 65534, 0, 65535, 2, 1: each packet after the wrap overtakes one before it."""


async def wrap_by_report(conversation: Conversation, session: Session, order: tuple[int, ...], what: str) -> None:
    """SRTP-04 and SRTP-10 against a target that does not echo: the same six packets across the
    wrap, in `order`; its RTCP report must count the last (sequence 2, one cycle on) and lose none."""
    from toolkit.peer.audio import SILENCE_PACKET

    since = len(session.events)
    packets = []
    for _ in range(6):  # 65533 … 2
        session.peer.send_rtp(SILENCE_PACKET, timestamp=next_timestamp(conversation))
        (data, _), = session.take_output()
        packets.append(data)
    for index in order:
        session.socket.send(packets[index], session.remote)
        await asyncio.sleep(0.005)
    wait = conversation.settings.report_timeout
    last = (WRAP_START + 5) & 0xFFFF
    sign = await wait_for_sign(conversation, session, since, wait,
                               lambda sign: sign.kind == "report" and counts_sequence(sign, last))
    require(sign is not None, f"no RTCP report counting sequence {last} within {wait:g} s: packets past the wrap "
                              f"were not accepted ({what}; the rollover counter did not follow the wrap)")
    require(sign.lost == 0, f"{sign.text}: packets across the wrap were lost ({what})")
    conversation.note(f"sent {wrap_order(order)} ({what}): {sign.text}")


# -- SRTP-07, SRTP-08: SRTCP ---------------------------------------------------------------------


def _index_word(packet: bytes, profile: str) -> int:
    """Offset of SRTCP's E-flag + index word: last for AEAD (RFC 7714 §9), before the tag otherwise."""
    return len(packet) - 4 if "GCM" in profile else len(packet) - 4 - _RTP_TAG[profile]


async def srtcp(conversation: Conversation) -> None:
    from toolkit.crafters.rtp import RtcpReceiverReport, RtcpReportBlock, RtcpSenderReport

    session = conversation.session("main")
    peer = session.peer
    profile = peer.srtp_keys.profile
    sr = peer.protect_rtcp(bytes(RtcpSenderReport(ssrc=peer.ssrc, ntp_timestamp=0xE0000000_00000000,
                                                  rtp_timestamp=960, packet_count=1, octet_count=160)))
    rr = peer.protect_rtcp(bytes(RtcpReceiverReport(ssrc=peer.ssrc, reports=[RtcpReportBlock(ssrc=0x1234)])))
    e_bit = bytearray(peer.protect_rtcp(bytes(RtcpReceiverReport(ssrc=peer.ssrc))))
    e_bit[_index_word(bytes(e_bit), profile)] ^= 0x80
    index = bytearray(peer.protect_rtcp(bytes(RtcpReceiverReport(ssrc=peer.ssrc))))
    index[_index_word(bytes(index), profile) + 3] ^= 0x01
    for data in (sr, rr, bytes(e_bit), bytes(index), rr):  # the last: the RR replayed
        session.socket.send(data, session.remote)
    conversation.note("sent SRTCP SR and RR, then one with the E flag cleared, one with a wrong index and a replay; "
                      "whether the target used the reports is not observable from outside (its next report would "
                      "show it), so this checks that it kept serving")


async def malformed_rtcp(conversation: Conversation) -> None:
    from scapy.packet import Raw

    from toolkit.crafters.rtp import (
        RtcpReceiverReport,
        RtcpSdesChunk,
        RtcpSdesItem,
        RtcpSenderReport,
        RtcpSourceDescription,
    )

    session = conversation.session("main")
    peer = session.peer
    ssrc = peer.ssrc
    bodies = {
        "RR count 5 with no report blocks": bytes(RtcpReceiverReport(ssrc=ssrc, count=5)),
        "SR length past the packet": bytes(RtcpSenderReport(ssrc=ssrc, length=40)),
        "RR length 0": bytes(RtcpReceiverReport(ssrc=ssrc, length=0)),
        "SDES item length past the chunk": bytes(RtcpSourceDescription(chunks=[RtcpSdesChunk(
            ssrc=ssrc, items=[RtcpSdesItem(type=1, length=200, text=b"probe")])])),
        "compound with 3 trailing bytes": bytes(RtcpReceiverReport(ssrc=ssrc) / Raw(b"\x81\xc9\x00")),
    }
    for body in bodies.values():
        session.socket.send(peer.protect_rtcp(body), session.remote)
    conversation.note(f"sent inside valid SRTCP: {'; '.join(bodies)}. Not sent yet: RTP with a CSRC count or a "
                      "header-extension length past the end inside valid SRTP (libsrtp refuses to protect those)")


CHECKS = (
    Check(
        "SRTP-01", "core", "RFC 3711, RFC 5764 §4.1.2, RFC 8827 §6.5",
        "protected RTP in both directions with the mandatory profile AES_CM_128_HMAC_SHA1_80",
        (
            Connect(session="cm", peer={"srtp_profiles": ("SRTP_AES128_CM_SHA1_80",)}),
            Alive(session="cm", media=True),
            SrtpProfile("SRTP_AES128_CM_SHA1_80", "AES_CM_128_HMAC_SHA1_80", session="cm"),
        ),
        timeout=40.0,
    ),
    Check(
        "SRTP-02", "security", "RFC 3711 §3.3, RFC 7714 §7",
        "a flipped bit in payload or tag → dropped, no state change",
        (Connect(), Do(tampered, "flip payload and tag bits"), Alive(media=True)),
        timeout=40.0,
    ),
    Check(
        "SRTP-03", "security", "RFC 3711 §3.3.2",
        "a replayed packet inside the replay window → dropped (a packet older than 64 packets may be accepted once, "
        "by a larger window, never twice)",
        (Connect(), Do(replays, "replay and too-old packets"), Alive(media=True)),
        timeout=40.0,
    ),
    Check(
        "SRTP-04", "core", "RFC 3711 §3.3.1",
        "sequence-number wrap (ROC increment), delivered in order → accepted",
        (Connect(peer={"rtp_sequence_start": WRAP_START}),
         AcrossWrap(IN_ORDER, "in order")),
    ),
    Check(
        "SRTP-05", "security", "RFC 3711 §3.1, CVE-2013-2139",
        "runt packets (shorter than header + tag) → dropped, no crash",
        (Connect(), Do(runts, "runt SRTP packets"), Alive(media=True)),
        timeout=40.0,
    ),
    Check(
        "SRTP-06", "security", "RFC 3711 §3.3, RFC 5764 §5",
        "plain RTP on an SRTP session → dropped",
        (Connect(), Do(plain_rtp, "plain RTP from the bound address"), Alive(media=True)),
    ),
    Check(
        "SRTP-07", "core", "RFC 3711 §3.4, RFC 7714 §9",
        "SRTCP (SR/RR) accepted; bad SRTCP index or E-bit → dropped",
        (Connect(), Alive(), Do(srtcp, "SRTCP reports, bad E flag, bad index"), Alive(media=True)),
    ),
    Check(
        "SRTP-08", "security", "RFC 3550 §6.4, mediasoup#241, mediasoup#251",
        "malformed RTP/RTCP inside valid SRTP (CSRC count past the end, header-extension length past the end, "
        "RTCP count/length mismatch) → dropped, no crash",
        (Connect(), Do(malformed_rtcp, "malformed RTCP inside valid SRTCP"), Alive(media=True)),
    ),
    Check(
        "SRTP-09", "core", "RFC 7714, RFC 5764 §4.1.2",
        "protected RTP in both directions with AEAD_AES_128_GCM",
        (
            Connect(session="gcm", peer={"srtp_profiles": ("SRTP_AEAD_AES_128_GCM",)}),
            Alive(session="gcm", media=True),
            SrtpProfile("SRTP_AEAD_AES_128_GCM", "AEAD_AES_128_GCM", session="gcm"),
        ),
        timeout=40.0,
    ),
    Check(
        "SRTP-10", "core", "RFC 3711 §3.3.1, Appendix A",
        "packets delivered out of order across the sequence-number wrap (0 before 65535, 2 before 1) → accepted",
        (Connect(peer={"rtp_sequence_start": WRAP_START}),
         AcrossWrap(REORDERED, "out of order")),
    ),
)
