"""DEMUX variants: one port, many protocols, told apart wrongly."""

from __future__ import annotations

import socket
import struct

from reference_server import stun
from reference_server.srtp import SrtpError
from tests.zoo import variant
from tests.zoo.seams import Datagram, crash, ends_session_on_drop, ends_session_when, intercept

DTLS_RECORD_HEADER = 13


@variant("stun-dropped-after-dtls", checks=("DEMUX-01",),
         why="once a tuple's DTLS is up everything from it goes to SRTP, so its STUN checks are no longer answered")
@intercept("_receive_stun")
def stun_dropped_after_dtls(datagram: Datagram) -> bytes | None:
    if datagram.session is not None and datagram.session.srtp is not None:
        datagram.core._drop("srtp_unprotect_failed", datagram.source)
        return None
    return datagram.data


GarbageEndsSession = variant(
    "garbage-ends-session", checks=("DEMUX-02",),
    why="a datagram no protocol claims (first byte 4–19, 64–127, 192–255) ends the session of its 5-tuple",
)(ends_session_on_drop("unknown_first_byte", "protocol_error"))


@variant("crash-on-empty-datagram", checks=("DEMUX-03",),
         why="reads the first byte of an empty datagram without a length check and crashes")
@intercept("receive_datagram")
def crash_on_empty_datagram(datagram: Datagram) -> bytes:
    if not datagram.data:
        crash("read past the end of an empty datagram")
    return datagram.data


@variant("short-dtls-record-ends-session", checks=("DEMUX-06",),
         why="a DTLS-range datagram shorter than a record header (13 bytes) is taken as a fatal error: the session "
             "of its 5-tuple ends instead of the record being discarded")
@ends_session_when("receive_datagram", "protocol_error")
def short_dtls_record(datagram: Datagram) -> bool:
    return bool(datagram.data) and 19 < datagram.data[0] < 64 and len(datagram.data) < DTLS_RECORD_HEADER


@variant("rtcp-range-unbounded", checks=("DEMUX-04",),
         why="takes every second byte ≥ 192 for RTCP (no upper bound 223), so RTP with the marker bit set and "
             "payload type ≥ 64 is dropped as bad SRTCP")
@intercept("receive_datagram")
def rtcp_range_unbounded(datagram: Datagram) -> bytes | None:
    data = datagram.data
    if len(data) >= 12 and 128 <= data[0] <= 191 and data[1] > 223:
        datagram.core.metrics.packets_received["rtcp"] += 1
        datagram.core._receive_rtcp(data, datagram.source, datagram.now)
        return None
    return data


@variant("rtp-rtcp-by-trial-decryption", checks=("DEMUX-07",),
         why="tells RTCP from RTP by trying SRTCP first and SRTP second, not by payload type, so RTP whose second "
             "byte is 200 is accepted as RTP")
@intercept("_receive_rtcp")
def rtp_rtcp_by_trial_decryption(datagram: Datagram) -> bytes | None:
    if datagram.session is None or datagram.session.srtp is None:
        return datagram.data
    try:
        datagram.session.srtp.unprotect_rtcp(datagram.data)
    except SrtpError:
        datagram.core._receive_rtp(datagram.data, datagram.source, datagram.now)  # not SRTCP: try it as SRTP
    return None


@variant("answers-classic-stun", checks=("DEMUX-05",),
         why="answers RFC 3489 Binding requests (no magic cookie) with MAPPED-ADDRESS, as a public STUN server "
             "would, to anyone")
@intercept("receive_datagram")
def answers_classic_stun(datagram: Datagram) -> bytes | None:
    data = datagram.data
    if len(data) >= 20 and data[:2] == b"\x00\x01" and int.from_bytes(data[4:8], "big") != stun.MAGIC_COOKIE:
        host, port = datagram.source
        family, raw = (2, socket.inet_pton(socket.AF_INET6, host)) if ":" in host else (1, socket.inet_aton(host))
        mapped = struct.pack("!BBH", 0, family, port) + raw
        body = struct.pack("!HH", stun.MAPPED_ADDRESS, len(mapped)) + mapped
        datagram.core._send(struct.pack("!HH", 0x0101, len(body)) + data[4:20] + body, datagram.source, "stun")
        return None
    return data
