"""DEMUX — one port, many protocols (RFC 7983, RFC 9443, RFC 5761)."""

from __future__ import annotations

from toolkit.conformance.checks.common import check_request
from toolkit.conformance.conversation import Conversation
from toolkit.conformance.model import Check
from toolkit.conformance.steps import Connect, Do, Echo, Expect, Send, Silence, StunSuccess, expect_echo

UNUSED_FIRST_BYTES = (4, 19, 64, 127, 192, 255)
"""The edges of the ranges RFC 9443 leaves unassigned (4–19, 64–127, 192–255)."""


def unused_first_bytes(conversation: Conversation) -> list[bytes]:
    """Datagrams starting with each edge of the unassigned ranges, plus one random byte of each range."""
    rng = conversation.rng
    firsts = [*UNUSED_FIRST_BYTES, rng.randint(5, 18), rng.randint(65, 126), rng.randint(193, 254)]
    return [bytes([first]) + rng.randbytes(99) for first in firsts]


def odd_sizes(conversation: Conversation) -> list[bytes]:
    """Empty, 1-byte and 19-byte datagrams in each protocol's range, and 65507-byte ones (the IPv4 UDP maximum)."""
    rng = conversation.rng
    datagrams = [b"", b"\x00", b"\x16", b"\x80"]
    for first in (b"\x00\x01", b"\x16\xfe", b"\x80\x6f"):
        datagrams.append(first + rng.randbytes(17))
    for first in (b"\x00\x01\xff\xeb\x21\x12\xa4\x42", b"\x16\xfe\xfd\x00\x00", b"\x80\x6f"):
        datagrams.append(first + rng.randbytes(65507 - len(first)))
    return datagrams


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


async def rtp_rtcp_split(conversation: Conversation) -> None:
    """RFC 5761 §4: second byte 192–223 is RTCP. RTP with payload type 72 + marker (byte 200) must be
    taken for RTCP (and so fail SRTCP authentication), never echoed as RTP; SRTCP is not echoed as RTP."""
    session = conversation.session("main")
    from toolkit.crafters.rtp import RtcpReceiverReport

    session.peer.send_rtcp(bytes(RtcpReceiverReport(ssrc=session.peer.ssrc)))
    session.flush()
    token = conversation.rng.randbytes(8)
    session.peer.send_rtp(b"rtcgate-pt72:" + token, timestamp=960, payload_type=72, marker=True)
    for data, addr in session.take_output():
        session.socket.send(data, addr)
    await expect_echo(conversation, session, b"rtcgate-pt72:" + token, arrives_on=None, present=False)
    conversation.note("RTP with second byte 200 was not echoed as RTP")


CHECKS = (
    Check(
        "DEMUX-01", "core", "RFC 9443 §3, RFC 7983",
        "STUN (first byte 0–3), DTLS (20–63), RTP/RTCP (128–191) each reach their handler on the same port",
        (
            Connect(),  # ICE (STUN) and the DTLS handshake on the one port
            Send(check_request(use_candidate=False), label="Binding request"),
            Expect(StunSuccess()),
            Echo(),  # SRTP in, SRTP out
        ),
    ),
    Check(
        "DEMUX-02", "security", "RFC 9443 §3",
        "first bytes 4–19, 64–127, 192–255 are dropped silently, and the session survives",
        (
            Connect(),
            Send(unused_first_bytes, label="datagrams with unassigned first bytes"),
            Expect(Silence(), about="any"),
            Echo(),
        ),
    ),
    Check(
        "DEMUX-03", "security", "RFC 9443 §3, RFC 768",
        "empty, 1-byte, 19-byte and 65507-byte datagrams are dropped; no response, no crash",
        (
            Connect(),
            Send(odd_sizes, label="empty, 1, 19 and 65507-byte datagrams"),
            Expect(Silence(), about="any"),
            Echo(),
        ),
    ),
    Check(
        "DEMUX-04", "core", "RFC 5761 §4",
        "RTP vs RTCP split by payload type 192–223",
        (
            Connect(),
            Echo(marker=True),  # PT 111 + marker = second byte 239: RTP
            Do(rtp_rtcp_split, "SRTCP RR, and RTP with second byte 200"),
            Echo(),
        ),
    ),
    Check(
        "DEMUX-05", "security", "RFC 8489 §5, RFC 9443",
        "a STUN-range first byte without the magic cookie (classic RFC 3489) is not answered",
        (
            Connect(),
            Send(classic_stun_request, label="RFC 3489 Binding request"),
            Expect(Silence(), about="any"),
            Echo(),
        ),
    ),
)
