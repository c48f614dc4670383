"""RTP and RTCP packet codecs (RFC 3550), RFC 8285 header extensions, RFC 5761 type ranges.

Parsers take untrusted bytes and raise RtpError (RtcpError for RTCP) with a message that
names the field and the numbers involved; nothing else escapes them. Serializers fill in
what the content determines (CSRC count, extension length, padding, report counts, RTCP
length words) and raise the same errors for values that do not fit their fields.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

RTP_HEADER_SIZE = 12
RTCP_HEADER_SIZE = 4
REPORT_BLOCK_SIZE = 24

RTCP_SR = 200
RTCP_RR = 201
# RFC 5761 §4: with rtcp-mux, RTCP packet types live in 192-223 so they never look like RTP.
RTCP_TYPE_RANGE = range(192, 224)

ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE = 0x1000  # the low 4 bits ("appbits") are free for the application

_NTP_FRACTION = 1 << 32


class RtpError(Exception):
    """An RTP or RTCP packet, or a value meant for one, is malformed."""


class RtcpError(RtpError):
    """An RTCP packet, or a value meant for one, is malformed."""


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    payload: bytes = b""
    padding: int = 0  # padding bytes at the end, the count byte included; 0 = no P bit


@dataclass(slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int
    packets_lost: int  # signed 24-bit: duplicates can make it negative
    highest_sequence: int
    jitter: int
    last_sr: int
    delay_since_last_sr: int


@dataclass(slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class RtcpPacket:
    """Any RTCP packet other than SR and RR (SDES, BYE, APP, RTPFB, PSFB, XR...), kept opaque."""

    packet_type: int
    count: int  # the 5-bit field after the P bit: item/report count or feedback FMT
    body: bytes  # everything after the 4-byte header, padding removed


# --- RTP ---------------------------------------------------------------------------------


def _rtp_bounds(data: bytes) -> tuple[int, int]:
    """Validate an RTP header; return (payload start, payload end)."""
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpError(f"RTP packet is {size} bytes; the fixed header is {RTP_HEADER_SIZE}")
    first = data[0]
    version = first >> 6
    if version != 2:
        raise RtpError(f"RTP version is {version}; expected 2")
    csrc_count = first & 0x0F
    offset = RTP_HEADER_SIZE + 4 * csrc_count
    if offset > size:
        raise RtpError(f"CSRC count {csrc_count} needs {offset} header bytes; packet has {size}")
    if first & 0x10:
        if offset + 4 > size:
            raise RtpError(
                f"header extension header needs 4 bytes at offset {offset}; packet has {size}"
            )
        words = (data[offset + 2] << 8) | data[offset + 3]
        end = offset + 4 + 4 * words
        if end > size:
            raise RtpError(
                f"header extension length {words} words ({4 * words} bytes) at offset {offset}"
                f" runs past the end of the {size}-byte packet"
            )
        offset = end
    payload_end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpError("padding length is 0; it must count at least its own byte")
        if padding > size - offset:
            raise RtpError(
                f"padding length {padding} is larger than the {size - offset} bytes after the header"
            )
        payload_end = size - padding
    return offset, payload_end


def parse_rtp(data: bytes) -> RtpPacket:
    payload_start, payload_end = _rtp_bounds(data)
    first, second, sequence_number, timestamp, ssrc = struct.unpack_from("!BBHII", data)
    csrc_count = first & 0x0F
    csrc = struct.unpack_from(f"!{csrc_count}I", data, RTP_HEADER_SIZE)
    extension_profile = None
    extension = b""
    if first & 0x10:
        start = RTP_HEADER_SIZE + 4 * csrc_count
        extension_profile = (data[start] << 8) | data[start + 1]
        extension = bytes(data[start + 4 : payload_start])
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence_number=sequence_number,
        timestamp=timestamp,
        ssrc=ssrc,
        marker=bool(second & 0x80),
        csrc=csrc,
        extension_profile=extension_profile,
        extension=extension,
        payload=bytes(data[payload_start:payload_end]),
        padding=len(data) - payload_end,
    )


def _check_field(error: type[RtpError], name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise error(f"{name} {value} does not fit in {bits} bits")


def serialize_rtp(packet: RtpPacket) -> bytes:
    _check_field(RtpError, "payload type", packet.payload_type, 7)
    _check_field(RtpError, "sequence number", packet.sequence_number, 16)
    _check_field(RtpError, "timestamp", packet.timestamp, 32)
    _check_field(RtpError, "SSRC", packet.ssrc, 32)
    if len(packet.csrc) > 15:
        raise RtpError(f"{len(packet.csrc)} CSRCs; the header holds at most 15")
    for csrc in packet.csrc:
        _check_field(RtpError, "CSRC", csrc, 32)
    _check_field(RtpError, "padding length", packet.padding, 8)
    first = 0x80 | len(packet.csrc)
    extension_header = b""
    if packet.extension_profile is not None:
        _check_field(RtpError, "header extension profile", packet.extension_profile, 16)
        if len(packet.extension) % 4:
            raise RtpError(
                f"header extension is {len(packet.extension)} bytes; it must be a multiple of 4"
            )
        _check_field(RtpError, "header extension length in words", len(packet.extension) // 4, 16)
        first |= 0x10
        extension_header = struct.pack("!HH", packet.extension_profile, len(packet.extension) // 4)
    elif packet.extension:
        raise RtpError("header extension data without an extension profile")
    padding = b""
    if packet.padding:
        first |= 0x20
        padding = bytes(packet.padding - 1) + bytes([packet.padding])
    return b"".join(
        (
            struct.pack(
                "!BBHII",
                first,
                (0x80 if packet.marker else 0) | packet.payload_type,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
            ),
            struct.pack(f"!{len(packet.csrc)}I", *packet.csrc),
            extension_header,
            packet.extension,
            packet.payload,
            padding,
        )
    )


_SEQUENCE_TIMESTAMP_SSRC = struct.Struct("!HII")


def rewrite_rtp(data: bytes, *, ssrc: int, sequence_number: int, timestamp: int) -> bytes:
    """Copy of a valid RTP packet with new SSRC, sequence number and timestamp.

    The echo path's fast path: no parse into objects, every other byte kept as it came.
    """
    # The common header (version 2, no padding, CSRC or extension) needs no walk.
    if len(data) < RTP_HEADER_SIZE or data[0] != 0x80:
        _rtp_bounds(data)
    if sequence_number >> 16 or timestamp >> 32 or ssrc >> 32 or min(sequence_number, timestamp, ssrc) < 0:
        _check_field(RtpError, "sequence number", sequence_number, 16)
        _check_field(RtpError, "timestamp", timestamp, 32)
        _check_field(RtpError, "SSRC", ssrc, 32)
    return data[:2] + _SEQUENCE_TIMESTAMP_SSRC.pack(sequence_number, timestamp, ssrc) + data[12:]


# --- RFC 8285 header extension elements ---------------------------------------------------


def parse_extension_elements(profile: int, data: bytes) -> list[tuple[int, bytes]]:
    """Split an RFC 8285 header extension into (id, value) elements, padding skipped."""
    if profile == ONE_BYTE_PROFILE:
        return _parse_one_byte_elements(data)
    if profile & 0xFFF0 == TWO_BYTE_PROFILE:
        return _parse_two_byte_elements(data)
    raise RtpError(f"header extension profile 0x{profile:04X} is neither 0xBEDE nor 0x100X (RFC 8285)")


def _parse_one_byte_elements(data: bytes) -> list[tuple[int, bytes]]:
    elements = []
    offset = 0
    while offset < len(data):
        element_id, length = data[offset] >> 4, (data[offset] & 0x0F) + 1
        if element_id == 0:
            offset += 1  # a padding byte (its length bits must be 0, but are ignorable)
            continue
        if element_id == 15:
            break  # RFC 8285 §4.2: ID 15 means stop processing
        end = offset + 1 + length
        if end > len(data):
            raise RtpError(
                f"extension element {element_id} length {length} at offset {offset}"
                f" runs past the end of the {len(data)}-byte extension"
            )
        elements.append((element_id, bytes(data[offset + 1 : end])))
        offset = end
    return elements


def _parse_two_byte_elements(data: bytes) -> list[tuple[int, bytes]]:
    elements = []
    offset = 0
    while offset < len(data):
        element_id = data[offset]
        if element_id == 0:
            offset += 1
            continue
        if offset + 2 > len(data):
            raise RtpError(
                f"extension element {element_id} at offset {offset} has no length byte"
            )
        length = data[offset + 1]
        end = offset + 2 + length
        if end > len(data):
            raise RtpError(
                f"extension element {element_id} length {length} at offset {offset}"
                f" runs past the end of the {len(data)}-byte extension"
            )
        elements.append((element_id, bytes(data[offset + 2 : end])))
        offset = end
    return elements


def serialize_extension_elements(elements: Sequence[tuple[int, bytes]]) -> tuple[int, bytes]:
    """Build (profile, data) for RtpPacket: the one-byte form when every element fits it."""
    if all(1 <= element_id <= 14 and 1 <= len(value) <= 16 for element_id, value in elements):
        data = b"".join(bytes([(element_id << 4) | (len(value) - 1)]) + value for element_id, value in elements)
        profile = ONE_BYTE_PROFILE
    else:
        for element_id, value in elements:
            if not 1 <= element_id <= 255:
                raise RtpError(f"extension element id {element_id} is outside 1-255")
            if len(value) > 255:
                raise RtpError(f"extension element {element_id} is {len(value)} bytes; at most 255")
        data = b"".join(bytes([element_id, len(value)]) + value for element_id, value in elements)
        profile = TWO_BYTE_PROFILE
    return profile, data + bytes(-len(data) % 4)


# --- RTCP --------------------------------------------------------------------------------


def parse_rtcp(data: bytes) -> list[SenderReport | ReceiverReport | RtcpPacket]:
    """Parse a compound RTCP packet (one or more packets back to back)."""
    size = len(data)
    if size == 0:
        raise RtcpError("empty RTCP compound packet")
    packets: list[SenderReport | ReceiverReport | RtcpPacket] = []
    offset = 0
    while offset < size:
        if size - offset < RTCP_HEADER_SIZE:
            raise RtcpError(
                f"RTCP packet at offset {offset} is {size - offset} bytes; the header is {RTCP_HEADER_SIZE}"
            )
        first, packet_type, words = struct.unpack_from("!BBH", data, offset)
        version = first >> 6
        if version != 2:
            raise RtcpError(f"RTCP version is {version} at offset {offset}; expected 2")
        if packet_type not in RTCP_TYPE_RANGE:
            raise RtcpError(
                f"RTCP packet type {packet_type} at offset {offset} is outside 192-223 (RFC 5761)"
            )
        end = offset + 4 + 4 * words
        if end > size:
            raise RtcpError(
                f"RTCP length {words} words ({4 * words} bytes) at offset {offset}"
                f" runs past the end of the {size}-byte compound packet"
            )
        body_end = end
        if first & 0x20:
            padding = data[end - 1] if words else 0
            if padding == 0 or padding > 4 * words:
                raise RtcpError(
                    f"RTCP padding length {padding} at offset {offset} does not fit"
                    f" the {4 * words}-byte packet body"
                )
            body_end = end - padding
        packets.append(_parse_rtcp_body(packet_type, first & 0x1F, bytes(data[offset + 4 : body_end])))
        offset = end
    return packets


def _parse_rtcp_body(packet_type: int, count: int, body: bytes) -> SenderReport | ReceiverReport | RtcpPacket:
    if packet_type == RTCP_SR:
        fixed, name = 24, "SR"
    elif packet_type == RTCP_RR:
        fixed, name = 4, "RR"
    else:
        return RtcpPacket(packet_type=packet_type, count=count, body=body)
    needed = fixed + REPORT_BLOCK_SIZE * count
    if needed > len(body):
        raise RtcpError(
            f"RTCP {name} with report count {count} needs {needed} bytes after the header;"
            f" the packet has {len(body)}"
        )
    reports = [_parse_report_block(body, fixed + REPORT_BLOCK_SIZE * index) for index in range(count)]
    if packet_type == RTCP_RR:
        return ReceiverReport(ssrc=struct.unpack_from("!I", body)[0], reports=reports)
    ssrc, ntp, rtp_timestamp, packet_count, octet_count = struct.unpack_from("!IQIII", body)
    return SenderReport(
        ssrc=ssrc,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_timestamp,
        packet_count=packet_count,
        octet_count=octet_count,
        reports=reports,
    )


def _parse_report_block(body: bytes, offset: int) -> ReportBlock:
    ssrc, lost_word, highest, jitter, last_sr, delay = struct.unpack_from("!IIIIII", body, offset)
    packets_lost = lost_word & 0xFFFFFF
    if packets_lost & 0x800000:
        packets_lost -= 1 << 24
    return ReportBlock(
        ssrc=ssrc,
        fraction_lost=lost_word >> 24,
        packets_lost=packets_lost,
        highest_sequence=highest,
        jitter=jitter,
        last_sr=last_sr,
        delay_since_last_sr=delay,
    )


def serialize_rtcp(packets: Sequence[SenderReport | ReceiverReport | RtcpPacket]) -> bytes:
    """Build a compound RTCP packet; counts, length words and padding come from the content."""
    if not packets:
        raise RtcpError("empty RTCP compound packet")
    return b"".join(_serialize_rtcp_packet(packet) for packet in packets)


def _serialize_rtcp_packet(packet: SenderReport | ReceiverReport | RtcpPacket) -> bytes:
    padding = b""
    if isinstance(packet, RtcpPacket):
        if packet.packet_type not in RTCP_TYPE_RANGE:
            raise RtcpError(f"RTCP packet type {packet.packet_type} is outside 192-223 (RFC 5761)")
        _check_field(RtcpError, "RTCP count", packet.count, 5)
        packet_type, count, body = packet.packet_type, packet.count, packet.body
        if len(body) % 4:
            pad = 4 - len(body) % 4
            padding = bytes(pad - 1) + bytes([pad])
    else:
        if len(packet.reports) > 31:
            raise RtcpError(f"{len(packet.reports)} report blocks; an RTCP packet holds at most 31")
        _check_field(RtcpError, "SSRC", packet.ssrc, 32)
        if isinstance(packet, SenderReport):
            _check_field(RtcpError, "NTP timestamp", packet.ntp_timestamp, 64)
            _check_field(RtcpError, "RTP timestamp", packet.rtp_timestamp, 32)
            _check_field(RtcpError, "packet count", packet.packet_count, 32)
            _check_field(RtcpError, "octet count", packet.octet_count, 32)
            packet_type = RTCP_SR
            head = struct.pack(
                "!IQIII",
                packet.ssrc,
                packet.ntp_timestamp,
                packet.rtp_timestamp,
                packet.packet_count,
                packet.octet_count,
            )
        else:
            packet_type = RTCP_RR
            head = struct.pack("!I", packet.ssrc)
        count = len(packet.reports)
        body = head + b"".join(_serialize_report_block(block) for block in packet.reports)
    length = len(body) + len(padding)
    _check_field(RtcpError, "RTCP length in words", length // 4, 16)
    first = 0x80 | (0x20 if padding else 0) | count
    return struct.pack("!BBH", first, packet_type, length // 4) + body + padding


def _serialize_report_block(block: ReportBlock) -> bytes:
    _check_field(RtcpError, "report block SSRC", block.ssrc, 32)
    _check_field(RtcpError, "fraction lost", block.fraction_lost, 8)
    if not -(1 << 23) <= block.packets_lost < (1 << 23):
        raise RtcpError(f"packets lost {block.packets_lost} does not fit in a signed 24-bit field")
    _check_field(RtcpError, "extended highest sequence number", block.highest_sequence, 32)
    _check_field(RtcpError, "jitter", block.jitter, 32)
    _check_field(RtcpError, "last SR", block.last_sr, 32)
    _check_field(RtcpError, "delay since last SR", block.delay_since_last_sr, 32)
    return struct.pack(
        "!IIIIII",
        block.ssrc,
        (block.fraction_lost << 24) | (block.packets_lost & 0xFFFFFF),
        block.highest_sequence,
        block.jitter,
        block.last_sr,
        block.delay_since_last_sr,
    )


def ntp_timestamp(seconds_since_1900: float) -> int:
    """64-bit NTP timestamp: 32 bits of seconds, 32 bits of fraction (wraps like NTP does in 2036)."""
    if seconds_since_1900 < 0:
        raise RtcpError(f"NTP time {seconds_since_1900} is before 1900")
    seconds = int(seconds_since_1900)
    fraction = round((seconds_since_1900 - seconds) * _NTP_FRACTION)
    return ((seconds << 32) + fraction) & 0xFFFF_FFFF_FFFF_FFFF
