"""RTP (RFC 3550) with RFC 8285 header extensions, and RTCP compound packets, as scapy layers.

None = computed at build, an explicit value is written as given: RTP's P and X bits and CSRC
count, the extension's profile, length (in words) and padding, each element's length; RTCP's
count (report blocks, SDES chunks, BYE sources) and length (in words minus one), SDES chunk
terminators, BYE reason padding.

RTP::

    Rtp(payload_type=111, sequence=1, timestamp=960, ssrc=0x1234, csrcs=[1, 2],
        header_extension=RtpHeaderExtension(elements=[OneByteElement(id=1, data=b"\\x80")]),
        padding_data=rtp_padding(4)) / Raw(b"opus frame")

`header_extension.profile` defaults to 0xBEDE when every element is a `OneByteElement` and to
0x1000 (two-byte, appbits 0) otherwise. `padding_data` is the RTP padding as written after the
payload, its last byte the count (`rtp_padding(n)` makes n correct bytes); the P bit follows it.

RTCP compound packets stack with `/`::

    RtcpSenderReport(ssrc=1, reports=[RtcpReportBlock(ssrc=2)]) / RtcpSourceDescription(
        chunks=[RtcpSdesChunk(ssrc=1, items=[RtcpSdesItem(type=CNAME, text=b"probe")])])

Also `RtcpReceiverReport`, `RtcpBye`, `RtcpApp`, `RtcpRtpFeedback` / `RtcpPayloadFeedback`
(FCI as bytes: `nack_fci(lost)`, `fir_fci(...)`, `remb_fci(...)`; PLI has no FCI).
`Rtcp(data)` dissects a compound packet into that chain of layers; `Rtp(data)` an RTP packet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scapy.base_classes import BasePacket
from scapy.fields import (
    AnyField,
    BitField,
    BitFieldLenField,
    ByteEnumField,
    ByteField,
    ConditionalField,
    Field,
    FieldLenField,
    FieldListField,
    IntField,
    LongField,
    MultipleTypeField,
    PacketField,
    PacketListField,
    ShortField,
    StrField,
    StrFixedLenField,
    StrLenField,
    XIntField,
    XShortField,
    XStrLenField,
)
from scapy.packet import Packet, Raw

from toolkit.crafters.common import CraftError

ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE = 0x1000

SR, RR, SDES, BYE, APP, RTPFB, PSFB = 200, 201, 202, 203, 204, 205, 206
RTCP_TYPES = {SR: "SR", RR: "RR", SDES: "SDES", BYE: "BYE", APP: "APP", RTPFB: "RTPFB", PSFB: "PSFB"}
END, CNAME, NAME, EMAIL, PHONE, LOC, TOOL, NOTE, PRIV = range(9)
SDES_TYPES = {END: "END", CNAME: "CNAME", NAME: "NAME", EMAIL: "EMAIL", PHONE: "PHONE", LOC: "LOC",
              TOOL: "TOOL", NOTE: "NOTE", PRIV: "PRIV"}
NACK = 1
"""RTPFB FMT of a Generic NACK (RFC 4585 §6.2.1)."""
PLI, SLI, RPSI, FIR, AFB = 1, 2, 3, 4, 15
"""PSFB FMTs (RFC 4585 §6.3, RFC 5104 §4.3.1); AFB carries REMB."""


def rtp_padding(count: int) -> bytes:
    """`count` bytes of valid RTP/RTCP padding: zeros, then the count itself."""
    if not 1 <= count <= 255:
        raise CraftError(f"RTP padding is 1 to 255 bytes, not {count}")
    return bytes(count - 1) + bytes([count])


class _AfterPayload(StrField):
    """Bytes the layer places itself (RTP padding after the payload, extension padding after the
    elements), so the generic field-by-field build and dissection skip them."""

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        return s

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, bytes]:
        return s, b""


class OneByteElement(Packet):
    """RFC 8285 §4.2 element: 4-bit id, 4-bit length (= data size - 1), 1..16 data bytes. id 0 is a padding byte."""

    name = "RTP one-byte extension element"
    fields_desc = [
        BitField("id", 1, 4),
        BitField("length", None, 4),
        XStrLenField("data", b"", length_from=lambda pkt: 0 if pkt.id == 0 else pkt.length + 1),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None and self.id != 0:
            if not 1 <= len(self.data) <= 16:
                raise CraftError(f"a one-byte RTP header extension element holds 1 to 16 bytes, not {len(self.data)}")
            pkt = bytes([(self.id << 4) | (len(self.data) - 1)]) + pkt[1:]
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class TwoByteElement(Packet):
    """RFC 8285 §4.3 element: 8-bit id, 8-bit length, 0..255 data bytes. id 0 is a padding byte."""

    name = "RTP two-byte extension element"
    fields_desc = [
        ByteField("id", 1),
        ConditionalField(FieldLenField("length", None, length_of="data", fmt="B"), lambda pkt: pkt.id != 0),
        ConditionalField(XStrLenField("data", b"", length_from=lambda pkt: pkt.length), lambda pkt: pkt.id != 0),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def _is_one_byte(pkt: Any) -> bool:
    profile: int | None = pkt.profile
    return profile == ONE_BYTE_PROFILE


def _is_two_byte(pkt: Any) -> bool:
    return pkt.profile is not None and pkt.profile & 0xFFF0 == TWO_BYTE_PROFILE


class RtpHeaderExtension(Packet):
    """The header extension block: profile, length in 32-bit words, elements (or raw `data`), padding.

    `padding` is written after the elements (None = zeros to a word boundary); a dissected
    block keeps its zero padding as id-0 elements, as RFC 8285 treats them.
    """

    name = "RTP header extension"
    fields_desc = [
        XShortField("profile", None),
        ShortField("length", None),
        MultipleTypeField(
            [(PacketListField("elements", [], TwoByteElement, length_from=lambda pkt: 4 * pkt.length), _is_two_byte)],
            PacketListField("elements", [], OneByteElement, length_from=lambda pkt: 4 * pkt.length),
        ),
        ConditionalField(
            XStrLenField("data", b"", length_from=lambda pkt: 4 * pkt.length),
            lambda pkt: pkt.profile is not None and not _is_one_byte(pkt) and not _is_two_byte(pkt),
        ),
        _AfterPayload("padding", None),
    ]

    def self_build(self) -> bytes:
        profile: int | None = self.profile
        if profile is None:
            one_byte = all(isinstance(element, OneByteElement) for element in self.elements)
            profile = ONE_BYTE_PROFILE if one_byte else TWO_BYTE_PROFILE
        if profile == ONE_BYTE_PROFILE or profile & 0xFFF0 == TWO_BYTE_PROFILE:
            body = b"".join(bytes(element) for element in self.elements)
        else:
            body = self.data
        padding = bytes(-len(body) % 4) if self.padding is None else self.padding
        length: int = (len(body) + len(padding)) // 4 if self.length is None else self.length
        return profile.to_bytes(2, "big") + length.to_bytes(2, "big") + body + padding

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class Rtp(Packet):
    name = "RTP"
    fields_desc = [
        BitField("version", 2, 2),
        BitField("padding_flag", None, 1),
        BitField("extension_flag", None, 1),
        BitFieldLenField("csrc_count", None, 4, count_of="csrcs"),
        BitField("marker", 0, 1),
        BitField("payload_type", 111, 7),
        ShortField("sequence", 0),
        IntField("timestamp", 0),
        XIntField("ssrc", 0),
        FieldListField("csrcs", [], XIntField("csrc", 0), count_from=lambda pkt: pkt.csrc_count),
        ConditionalField(
            PacketField("header_extension", None, RtpHeaderExtension),
            lambda pkt: pkt.fields.get("header_extension") is not None or pkt.extension_flag == 1,
        ),
        _AfterPayload("padding_data", b""),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        first = pkt[0]
        if self.padding_flag is None and self.padding_data:
            first |= 0x20
        if self.extension_flag is None and self.fields.get("header_extension") is not None:
            first |= 0x10
        return bytes([first]) + pkt[1:] + pay + (self.padding_data or b"")

    def do_dissect(self, s: bytes) -> bytes:
        """Take the padding off the end first (P bit set): what is left is header + payload."""
        if s and s[0] & 0x20 and 0 < s[-1] <= len(s) - 12:
            count = s[-1]
            rest = super().do_dissect(s[:-count])
            self.fields["padding_data"] = s[-count:]
            self.raw_packet_cache = None  # the cache would drop the padding on rebuild
            return rest
        return super().do_dissect(s)


class _Signed24Field(Field[int, int]):
    """RFC 3550 cumulative number of packets lost: 24-bit two's complement."""

    def __init__(self, name: str, default: int) -> None:
        super().__init__(name, default, "!I")

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        return s + ((val or 0) & 0xFFFFFF).to_bytes(3, "big")

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, int]:
        value = int.from_bytes(s[:3], "big")
        return s[3:], value - (1 << 24) if value & 0x800000 else value


class RtcpReportBlock(Packet):
    name = "RTCP report block"
    fields_desc = [
        XIntField("ssrc", 0),
        ByteField("fraction_lost", 0),
        _Signed24Field("packets_lost", 0),
        IntField("highest_sequence", 0),
        IntField("jitter", 0),
        IntField("last_sr", 0),
        IntField("delay_since_last_sr", 0),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def _rtcp_header(packet_type: int, count: AnyField) -> list[AnyField]:
    return [
        BitField("version", 2, 2),
        BitField("padding_flag", 0, 1),
        count,
        ByteEnumField("packet_type", packet_type, RTCP_TYPES),
        ShortField("length", None),
    ]


def _body_length(pkt: Any, header: int) -> int:
    """Bytes after `header` bytes of this RTCP packet, per its length field."""
    length: int = pkt.length
    return max(0, 4 * (length + 1) - header)


class Rtcp(Packet):
    """Base of the RTCP layers: `Rtcp(data)` dissects a compound packet, dispatching on packet type."""

    name = "RTCP"
    fields_desc = [
        *_rtcp_header(0, BitField("count", 0, 5)),
        XStrLenField("body", b"", length_from=lambda pkt: _body_length(pkt, 4)),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> type:
        if cls is Rtcp and _pkt and len(_pkt) >= 2:
            return _RTCP_LAYERS.get(_pkt[1], cls)
        return cls

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:2] + ((len(pkt) + 3) // 4 - 1).to_bytes(2, "big") + pkt[4:]
        return pkt + pay

    def guess_payload_class(self, payload: bytes) -> type:
        return Rtcp if len(payload) >= 4 else Raw


class RtcpSenderReport(Rtcp):
    name = "RTCP SR"
    fields_desc = [
        *_rtcp_header(SR, BitFieldLenField("count", None, 5, count_of="reports")),
        XIntField("ssrc", 0),
        LongField("ntp_timestamp", 0),
        IntField("rtp_timestamp", 0),
        IntField("packet_count", 0),
        IntField("octet_count", 0),
        PacketListField("reports", [], RtcpReportBlock, count_from=lambda pkt: pkt.count),
    ]


class RtcpReceiverReport(Rtcp):
    name = "RTCP RR"
    fields_desc = [
        *_rtcp_header(RR, BitFieldLenField("count", None, 5, count_of="reports")),
        XIntField("ssrc", 0),
        PacketListField("reports", [], RtcpReportBlock, count_from=lambda pkt: pkt.count),
    ]


class RtcpSdesItem(Packet):
    name = "RTCP SDES item"
    fields_desc = [
        ByteEnumField("type", CNAME, SDES_TYPES),
        FieldLenField("length", None, length_of="text", fmt="B"),
        StrLenField("text", b"", length_from=lambda pkt: pkt.length),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def _next_sdes_item(pkt: Packet, items: list[BasePacket], current: Packet | None, remain: bytes) -> type[Packet] | None:
    return RtcpSdesItem if remain and remain[0] != END else None


class _ChunkEnd(StrField):
    """An SDES chunk's END item and padding: 1 to 4 zero bytes to the next multiple of 4, unless given."""

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        return s + (bytes(4 - len(s) % 4) if val is None else val)

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, bytes]:
        used = 4 + sum(len(bytes(item)) for item in pkt.items)
        size = min(4 - used % 4, len(s))
        return s[size:], s[:size]


class RtcpSdesChunk(Packet):
    name = "RTCP SDES chunk"
    fields_desc = [
        XIntField("ssrc", 0),
        PacketListField("items", [], RtcpSdesItem, next_cls_cb=_next_sdes_item),
        _ChunkEnd("end", None),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class RtcpSourceDescription(Rtcp):
    name = "RTCP SDES"
    fields_desc = [
        *_rtcp_header(SDES, BitFieldLenField("count", None, 5, count_of="chunks")),
        PacketListField("chunks", [], RtcpSdesChunk, count_from=lambda pkt: pkt.count),
    ]


class _ReasonPadding(StrField):
    """Zeros after a BYE reason up to a multiple of 4 of the whole packet, unless given."""

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        return s + (bytes(-len(s) % 4) if val is None else val)

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, bytes]:
        size = min(-(1 + len(pkt.reason or b"")) % 4, len(s))
        return s[size:], s[:size]


def _has_reason(pkt: Any) -> bool:
    if pkt.fields.get("reason") is not None:
        return True
    return pkt.length is not None and pkt.count is not None and pkt.length > pkt.count


class RtcpBye(Rtcp):
    name = "RTCP BYE"
    fields_desc = [
        *_rtcp_header(BYE, BitFieldLenField("count", None, 5, count_of="ssrcs")),
        FieldListField("ssrcs", [], XIntField("ssrc", 0), count_from=lambda pkt: pkt.count),
        ConditionalField(FieldLenField("reason_length", None, length_of="reason", fmt="B"), _has_reason),
        ConditionalField(StrLenField("reason", None,  # type: ignore[arg-type]  # scapy types it bytes; None: absent
                                     length_from=lambda pkt: pkt.reason_length), _has_reason),
        ConditionalField(_ReasonPadding("reason_padding", None), _has_reason),
    ]


class RtcpApp(Rtcp):
    name = "RTCP APP"
    fields_desc = [
        *_rtcp_header(APP, BitField("subtype", 0, 5)),
        XIntField("ssrc", 0),
        StrFixedLenField("app_name", b"test", 4),
        XStrLenField("data", b"", length_from=lambda pkt: _body_length(pkt, 12)),
    ]


class RtcpRtpFeedback(Rtcp):
    """Transport-layer feedback (RFC 4585): FMT 1 = Generic NACK, FCI from `nack_fci()`."""

    name = "RTCP RTPFB"
    fields_desc = [
        *_rtcp_header(RTPFB, BitField("fmt", NACK, 5)),
        XIntField("sender_ssrc", 0),
        XIntField("media_ssrc", 0),
        XStrLenField("fci", b"", length_from=lambda pkt: _body_length(pkt, 12)),
    ]


class RtcpPayloadFeedback(Rtcp):
    """Payload-specific feedback: FMT 1 = PLI (no FCI), 4 = FIR (`fir_fci`), 15 = REMB (`remb_fci`)."""

    name = "RTCP PSFB"
    fields_desc = [
        *_rtcp_header(PSFB, BitField("fmt", PLI, 5)),
        XIntField("sender_ssrc", 0),
        XIntField("media_ssrc", 0),
        XStrLenField("fci", b"", length_from=lambda pkt: _body_length(pkt, 12)),
    ]


_RTCP_LAYERS: dict[int, type[Rtcp]] = {
    SR: RtcpSenderReport,
    RR: RtcpReceiverReport,
    SDES: RtcpSourceDescription,
    BYE: RtcpBye,
    APP: RtcpApp,
    RTPFB: RtcpRtpFeedback,
    PSFB: RtcpPayloadFeedback,
}


def nack_fci(lost: Iterable[int]) -> bytes:
    """Generic NACK FCI entries (PID + BLP bitmask of the 16 following) covering `lost` sequence numbers."""
    remaining = sorted({n & 0xFFFF for n in lost})
    out = b""
    while remaining:
        pid = remaining.pop(0)
        bitmask = 0
        while remaining and 0 < remaining[0] - pid <= 16:
            bitmask |= 1 << (remaining.pop(0) - pid - 1)
        out += pid.to_bytes(2, "big") + bitmask.to_bytes(2, "big")
    return out


def fir_fci(entries: Iterable[tuple[int, int]]) -> bytes:
    """FIR FCI (RFC 5104 §4.3.1.1): one (ssrc, command sequence number) per entry."""
    return b"".join(ssrc.to_bytes(4, "big") + bytes([seq & 0xFF]) + bytes(3) for ssrc, seq in entries)


def remb_fci(bitrate: int, ssrcs: Iterable[int]) -> bytes:
    """REMB FCI (draft-alvestrand-rmcat-remb): 'REMB', SSRC count, 6-bit exponent, 18-bit mantissa, SSRCs."""
    ssrcs = list(ssrcs)
    exponent = 0
    while bitrate >> exponent > 0x3FFFF:
        exponent += 1
    mantissa = bitrate >> exponent
    return (
        b"REMB"
        + bytes([len(ssrcs)])
        + ((exponent << 18) | mantissa).to_bytes(3, "big")
        + b"".join(s.to_bytes(4, "big") for s in ssrcs)
    )
