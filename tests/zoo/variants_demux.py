"""DEMUX variants: one port, many protocols, told apart wrongly."""

from __future__ import annotations

import socket
import struct

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.events import Address
from reference_server.srtp import SrtpError
from tests.zoo import variant
from tests.zoo.seams import crash


@variant("stun-dropped-after-dtls", checks=("DEMUX-01",),
         why="once a tuple's DTLS is up everything from it goes to SRTP, so its STUN checks are no longer answered")
class StunDroppedAfterDtls(ServerCore):
    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is not None and session.srtp is not None:
            self._drop("srtp_unprotect_failed", address)
            return
        super()._receive_stun(data, address, now)


@variant("garbage-ends-session", checks=("DEMUX-02",),
         why="a datagram no protocol claims (first byte 4–19, 64–127, 192–255) ends the session of its 5-tuple")
class GarbageEndsSession(ServerCore):
    def _drop(self, reason: str, address: Address | None, detail: str = "") -> None:
        super()._drop(reason, address, detail)
        session = self.sessions.by_address.get(address) if reason == "unknown_first_byte" else None
        if session is not None:
            self._free(session, "protocol_error")


@variant("crash-on-empty-datagram", checks=("DEMUX-03",),
         why="reads the first byte of an empty datagram without a length check and crashes")
class CrashOnEmptyDatagram(ServerCore):
    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        if not data:
            crash("read past the end of an empty datagram")
        super().receive_datagram(data, address, now)


DTLS_RECORD_HEADER = 13


@variant("short-dtls-record-ends-session", checks=("DEMUX-06",),
         why="a DTLS-range datagram shorter than a record header (13 bytes) is taken as a fatal error: the session "
             "of its 5-tuple ends instead of the record being discarded")
class ShortDtlsRecordEndsSession(ServerCore):
    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is not None and data and 19 < data[0] < 64 and len(data) < DTLS_RECORD_HEADER:
            self._free(session, "protocol_error")
            return
        super().receive_datagram(data, address, now)


@variant("rtcp-range-unbounded", checks=("DEMUX-04",),
         why="takes every second byte ≥ 192 for RTCP (no upper bound 223), so RTP with the marker bit set and "
             "payload type ≥ 64 is dropped as bad SRTCP")
class RtcpRangeUnbounded(ServerCore):
    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        if len(data) >= 12 and 128 <= data[0] <= 191 and data[1] > 223:
            self.metrics.packets_received["rtcp"] += 1
            self._receive_rtcp(data, address, now)
            return
        super().receive_datagram(data, address, now)


@variant("rtp-rtcp-by-trial-decryption", checks=("DEMUX-07",),
         why="tells RTCP from RTP by trying SRTCP first and SRTP second, not by payload type, so RTP whose second "
             "byte is 200 is accepted as RTP")
class RtpRtcpByTrialDecryption(ServerCore):
    def _receive_rtcp(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is None or session.srtp is None:
            super()._receive_rtcp(data, address, now)
            return
        try:
            session.srtp.unprotect_rtcp(data)
        except SrtpError:
            self._receive_rtp(data, address, now)  # not SRTCP: try it as SRTP


@variant("answers-classic-stun", checks=("DEMUX-05",),
         why="answers RFC 3489 Binding requests (no magic cookie) with MAPPED-ADDRESS, as a public STUN server "
             "would, to anyone")
class AnswersClassicStun(ServerCore):
    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        if len(data) >= 20 and data[:2] == b"\x00\x01" and int.from_bytes(data[4:8], "big") != stun.MAGIC_COOKIE:
            host, port = address
            family, raw = (2, socket.inet_pton(socket.AF_INET6, host)) if ":" in host else (1, socket.inet_aton(host))
            mapped = struct.pack("!BBH", 0, family, port) + raw
            body = struct.pack("!HH", stun.MAPPED_ADDRESS, len(mapped)) + mapped
            self._send(struct.pack("!HH", 0x0101, len(body)) + data[4:20] + body, address, "stun")
            return
        super().receive_datagram(data, address, now)
