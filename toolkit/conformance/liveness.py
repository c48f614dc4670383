"""Signs of life of a session that any media server gives, whether it echoes media or not.

An echo target proves it took our media by sending it back. A realtime voice service never
does (it answers speech with its own speech), yet every WebRTC media server, while it holds a
session:
- answers the probe peer's consent checks (RFC 7675 §5.1) on the selected pair;
- sends SRTP or SRTCP of its own that decrypts with the session's keys;
- reports on our stream in RTCP (RFC 3550 §6.4): a report block naming our SSRC, whose
  extended highest sequence number tells how far our packets got.

`signs_since` reads these from a session's events; `wait_for_sign` waits for the first one a
caller accepts. Judging what they prove is the steps' job (`steps.Alive`).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass

from toolkit.conformance.conversation import Conversation, Session
from toolkit.peer import RtcpReceived, RtpReceived, StunResponse

RTCP_SR, RTCP_RR = 200, 201
_REPORT_BLOCK = struct.Struct("!III12x")
"""SSRC, fraction lost + cumulative lost, extended highest sequence number; jitter, LSR and DLSR skipped."""


@dataclass(frozen=True, slots=True)
class Sign:
    kind: str
    """"consent" (a consent check answered), "rtp" (its own media), "rtcp" (RTCP not about our
    stream), or "report" (a report block naming our SSRC)."""
    text: str
    socket: str
    """The local socket it arrived on."""
    highest_sequence: int | None = None
    """For "report": the extended highest sequence number of ours it has received."""
    lost: int | None = None
    """For "report": the cumulative number of our packets it counts as lost."""


def report_blocks(packet: bytes) -> list[tuple[int, int, int]]:
    """(SSRC, cumulative lost, extended highest sequence) of each report block of every SR and
    RR in a compound RTCP packet; a malformed tail ends the walk."""
    blocks = []
    offset = 0
    while offset + 8 <= len(packet):
        count, packet_type = packet[offset] & 0x1F, packet[offset + 1]
        length = (struct.unpack_from("!H", packet, offset + 2)[0] + 1) * 4
        if packet_type in (RTCP_SR, RTCP_RR):
            first = offset + (28 if packet_type == RTCP_SR else 8)
            for index in range(count):
                start = first + index * 24
                if start + 24 > min(offset + length, len(packet)):
                    break
                ssrc, lost, highest = _REPORT_BLOCK.unpack_from(packet, start)
                blocks.append((ssrc, lost & 0xFFFFFF, highest))
        offset += length
    return blocks


def signs_since(session: Session, since: int) -> list[Sign]:
    """The signs of life among the session's events from index `since` on."""
    signs = []
    for socket, _, event in session.events[since:]:
        if isinstance(event, StunResponse):
            if not event.is_error and event.transaction_id in session.own_tids:
                signs.append(Sign("consent", "it answered a consent check", socket))
        elif isinstance(event, RtpReceived):
            signs.append(Sign("rtp", "its own SRTP arrived and decrypted", socket))
        elif isinstance(event, RtcpReceived):
            ours = [block for block in report_blocks(event.packet) if block[0] == session.peer.ssrc]
            if ours:
                _, lost, highest = ours[-1]
                signs.append(Sign("report", f"its RTCP report on our stream counts up to sequence {highest & 0xFFFF} "
                                            f"({lost} lost)", socket, highest, lost))
            else:
                signs.append(Sign("rtcp", "its own SRTCP arrived and decrypted", socket))
    return signs


def counts_sequence(sign: Sign, sequence: int) -> bool:
    """Whether a report's extended highest sequence number has reached our 16-bit `sequence`."""
    if sign.highest_sequence is None:
        return False
    return (sign.highest_sequence - sequence) % 0x10000 < 0x8000


async def wait_for_sign(conversation: Conversation, session: Session, since: int, timeout: float,
                        accept: Callable[[Sign], bool] = lambda sign: True) -> Sign | None:
    """The first sign at event index ≥ `since` that `accept` takes, within `timeout`; None if none came."""
    deadline = conversation.loop.time() + timeout
    while True:
        for sign in signs_since(session, since):
            if accept(sign):
                return sign
        since = len(session.events)
        left = deadline - conversation.loop.time()
        if left <= 0:
            return None
        try:
            await asyncio.wait_for(session.more_events(since), left)
        except TimeoutError:
            pass
