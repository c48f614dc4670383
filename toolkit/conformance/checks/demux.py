"""DEMUX — one port, many protocols (RFC 7983, RFC 9443, RFC 5761)."""

from __future__ import annotations

import socket

from toolkit.conformance.checks.common import check_request
from toolkit.conformance.conversation import Conversation, Session
from toolkit.conformance.model import Check, CheckFailed
from toolkit.conformance.steps import (
    Alive,
    Connect,
    Do,
    Expect,
    Send,
    Silence,
    StunError,
    StunSuccess,
    dropped_by_report,
    expect_echo,
)

UNUSED_FIRST_BYTES = (4, 19, 64, 127, 192, 255)
"""The edges of the ranges RFC 9443 leaves unassigned (4–19, 64–127, 192–255)."""


def unused_first_bytes(conversation: Conversation) -> list[bytes]:
    """Datagrams starting with each edge of the unassigned ranges, plus one random byte of each range."""
    rng = conversation.rng
    firsts = [*UNUSED_FIRST_BYTES, rng.randint(5, 18), rng.randint(65, 126), rng.randint(193, 254)]
    return [bytes([first]) + rng.randbytes(99) for first in firsts]


def odd_sizes(heads: tuple[bytes, bytes, bytes]):
    """A 1-byte, a 19-byte and a 65507-byte datagram (the IPv4 UDP maximum) starting with each of
    `heads` in turn: (first byte, 2-byte start, start of the longest)."""

    def payload(conversation: Conversation) -> list[bytes]:
        rng = conversation.rng
        one, short, long = heads
        return [one, short + rng.randbytes(19 - len(short)), long + rng.randbytes(65507 - len(long))]

    return payload


def stun_and_rtp_odd_sizes(conversation: Conversation) -> list[bytes]:
    """DEMUX-03's datagrams: odd sizes in the STUN and RTP ranges (the DTLS range is DEMUX-06's)."""
    return [*odd_sizes((b"\x00", b"\x00\x01", b"\x00\x01\xff\xeb\x21\x12\xa4\x42"))(conversation),
            *odd_sizes((b"\x80", b"\x80\x6f", b"\x80\x6f"))(conversation)]


dtls_odd_sizes = odd_sizes((b"\x16", b"\x16\xfe", b"\x16\xfe\xfd\x00\x00"))
"""DEMUX-06's datagrams: invalid DTLS records (RFC 6347 §4.1.2.7) of 1, 19 and 65507 bytes."""


def send_empty_datagram(conversation: Conversation) -> None:
    """A zero-length datagram from the main socket. asyncio's sendto silently skips empty data, so
    it leaves through a duplicate of the socket's descriptor (same 5-tuple)."""
    local = conversation.socket("main")
    remote = conversation.session("main").remote
    sock = local.transport.get_extra_info("socket")
    with socket.fromfd(sock.fileno(), sock.family, sock.type) as duplicate:
        duplicate.sendto(b"", remote)
    conversation.record("out", local, remote, b"")


def classic_stun_request(conversation: Conversation) -> bytes:
    """An RFC 3489 Binding request: 16-byte transaction ID, no magic cookie, a USERNAME of the session."""
    from toolkit.crafters.stun import BINDING_REQUEST, MAGIC_COOKIE, StunMessage, StunUsername

    peer = conversation.session("main").peer
    cookie = conversation.rng.getrandbits(32)
    if cookie == MAGIC_COOKIE:
        cookie ^= 1
    return bytes(StunMessage(type=BINDING_REQUEST, magic_cookie=cookie,
                             transaction_id=conversation.rng.randbytes(12),
                             attributes=[StunUsername(username=f"{peer.answer.ice_ufrag}:{peer.local_ufrag}".encode())]))


def decrypts_as_rtp(session: Session, data: bytes) -> bytes:
    """`data` unprotected as SRTP from the target (a fresh context: rollover counter 0), or b"" if it is not."""
    import pylibsrtp

    from toolkit.peer.srtp import SRTP_PROFILES

    keys = session.peer.srtp_keys
    policy = pylibsrtp.Policy(key=keys.remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                              srtp_profile=SRTP_PROFILES[keys.profile].libsrtp_id)
    try:
        return pylibsrtp.Session(policy).unprotect(data)
    except pylibsrtp.Error:
        return b""


def send_receiver_report(conversation: Conversation) -> None:
    """An SRTCP receiver report (second byte 201): RTCP, so never unprotected or echoed as RTP."""
    from toolkit.crafters.rtp import RtcpReceiverReport

    session = conversation.session("main")
    session.peer.send_rtcp(bytes(RtcpReceiverReport(ssrc=session.peer.ssrc)))
    session.flush()


async def payload_type_72_not_rtp(conversation: Conversation) -> None:
    """RTP with payload type 72 + marker (second byte 200) must be taken for RTCP (and so fail SRTCP
    authentication), never echoed as RTP.

    An echo that kept the second byte 200 looks like RTCP to the probe peer too, which fails to
    unprotect it as SRTCP: such datagrams are tried as SRTP here."""
    session = conversation.session("main")
    if conversation.target.echoes is False:
        await dropped_by_report(conversation, session, lambda genuine: [(rtp_with_second_byte_200(session), None)],
                                "RTP with second byte 200")
        return
    token = b"rtcgate-pt72:" + conversation.rng.randbytes(8)
    since = conversation.now()
    session.peer.send_rtp(token, timestamp=960, payload_type=72, marker=True)
    for data, addr in session.take_output():
        session.socket.send(data, addr)
    await expect_echo(conversation, session, token, arrives_on=None, present=False)
    echoed = [d for d in conversation.datagrams if d.direction == "in" and d.time >= since and d.data[1:2] == b"\xc8"
              and token in decrypts_as_rtp(session, d.data)]
    if echoed:
        raise CheckFailed(f"RTP with second byte 200 was echoed as RTP (to socket {echoed[0].socket}, second byte "
                          "still 200): it must be taken for RTCP and fail SRTCP authentication")
    conversation.note("RTP with second byte 200 was not echoed as RTP")


def rtp_with_second_byte_200(session) -> bytes:
    """The session's next SRTP packet with payload type 72 and the marker bit: second byte 200."""
    session.peer.send_rtp(b"\xf8\xff\xfe", timestamp=960, payload_type=72, marker=True)
    (data, _), = session.take_output()
    return data


CHECKS = (
    Check(
        "DEMUX-01", "core", "RFC 9443 §3, RFC 7983",
        "STUN (first byte 0–3), DTLS (20–63), RTP/RTCP (128–191) each reach their handler on the same port",
        (
            Connect(),  # ICE (STUN) and the DTLS handshake on the one port
            Send(check_request(use_candidate=False), label="Binding request"),
            Expect(StunSuccess()),
            Alive(media=True),  # SRTP in (and out, or an RTCP report on it)
        ),
    ),
    Check(
        "DEMUX-02", "security", "RFC 9443 §3",
        "first bytes 4–19, 64–127, 192–255 are dropped silently, and the session survives",
        (
            Connect(),
            Send(unused_first_bytes, label="datagrams with unassigned first bytes"),
            Expect(Silence(), about="any"),
            Alive(),
        ),
    ),
    Check(
        "DEMUX-03", "security", "RFC 9443 §3, RFC 768",
        "empty datagrams, and 1-byte, 19-byte and 65507-byte ones in the STUN and RTP ranges, are dropped; no "
        "response, no crash",
        (
            Connect(),
            Send(stun_and_rtp_odd_sizes, label="1, 19 and 65507-byte datagrams in the STUN and RTP ranges"),
            Do(send_empty_datagram, "an empty datagram"),
            Expect(Silence(), about="any"),
            Alive(),
        ),
    ),
    Check(
        "DEMUX-04", "core", "RFC 5761 §4",
        "RTP with the marker bit set (second byte 239) is taken as RTP, SRTCP (192–223) as RTCP",
        (
            Connect(),
            Alive(media=True, marker=True),  # PT 111 + marker = second byte 239: RTP
            Do(send_receiver_report, "an SRTCP receiver report"),
            Alive(),
        ),
        timeout=40.0,
    ),
    Check(
        "DEMUX-05", "security", "RFC 8489 §5, RFC 9443",
        "a STUN-range first byte without the magic cookie (classic RFC 3489) is not served: silence, or an "
        "error, never a Binding success",
        (
            Connect(),
            Send(classic_stun_request, label="RFC 3489 Binding request"),
            Expect((Silence(), StunError()), about="any"),  # a refusal supports nothing; RFC 8489 §6.3 prefers silence
            Alive(),
        ),
    ),
    Check(
        "DEMUX-06", "security", "RFC 6347 §4.1.2.7, RFC 9443 §3",
        "1-byte, 19-byte and 65507-byte datagrams in the DTLS range are discarded silently, and the session "
        "survives",
        (
            Connect(),
            Send(dtls_odd_sizes, label="1, 19 and 65507-byte datagrams in the DTLS range"),
            Expect(Silence(), about="any"),
            Alive(),
        ),
    ),
    Check(
        "DEMUX-07", "security", "RFC 5761 §4",
        "RTP with second byte 200 (payload type 72 + marker) is taken for RTCP, never echoed as RTP",
        (
            Connect(),
            Do(payload_type_72_not_rtp, "RTP with second byte 200"),
            Alive(),
        ),
        timeout=40.0,
    ),
)
