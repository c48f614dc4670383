from __future__ import annotations

import struct

import pytest
from aiortc.rtp import RtcpPacket, RtpPacket, unpack_header_extensions, unpack_remb_fci
from scapy.packet import Raw

from toolkit.crafters.common import CraftError
from toolkit.crafters.rtp import (
    AFB,
    CNAME,
    TOOL,
    OneByteElement,
    Rtcp,
    RtcpApp,
    RtcpBye,
    RtcpPayloadFeedback,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpRtpFeedback,
    RtcpSdesChunk,
    RtcpSdesItem,
    RtcpSenderReport,
    RtcpSourceDescription,
    Rtp,
    RtpHeaderExtension,
    TwoByteElement,
    nack_fci,
    remb_fci,
    rtp_padding,
)


def extension_of(data: bytes, offset: int) -> tuple[int, list[tuple[int, bytes]]]:
    profile, words = struct.unpack("!HH", data[offset : offset + 4])
    return profile, unpack_header_extensions(profile, data[offset + 4 : offset + 4 + 4 * words])


def test_rtp_with_one_byte_extensions_csrcs_and_padding_round_trips_through_aiortc():
    packet = Rtp(
        marker=1, payload_type=111, sequence=7, timestamp=960, ssrc=0x1234, csrcs=[1, 2],
        header_extension=RtpHeaderExtension(elements=[OneByteElement(id=1, data=b"\x80"),
                                                      OneByteElement(id=3, data=b"abc")]),
        padding_data=rtp_padding(4),
    ) / Raw(b"opus frame")
    data = bytes(packet)
    parsed = RtpPacket.parse(data)
    assert (parsed.marker, parsed.payload_type, parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (
        1, 111, 7, 960, 0x1234
    )
    assert parsed.csrc == [1, 2]
    assert parsed.padding_size == 4 and parsed.payload == b"opus frame"
    assert extension_of(data, 20) == (0xBEDE, [(1, b"\x80"), (3, b"abc")])
    assert bytes(Rtp(data)) == data


def test_two_byte_extensions_are_chosen_for_two_byte_elements():
    packet = Rtp(header_extension=RtpHeaderExtension(
        elements=[TwoByteElement(id=20, data=b"x" * 20), TwoByteElement(id=2, data=b"")])) / Raw(b"zz")
    data = bytes(packet)
    assert extension_of(data, 12) == (0x1000, [(20, b"x" * 20), (2, b"")])
    assert RtpPacket.parse(data).payload == b"zz"


def test_flags_counts_and_lengths_written_as_given():
    data = bytes(Rtp(padding_flag=1, extension_flag=0, csrc_count=3, csrcs=[9]) / Raw(b"p"))
    assert data[0] == 0x80 | 0x20 | 3
    with pytest.raises(ValueError):
        RtpPacket.parse(data)
    element = bytes(OneByteElement(id=5, length=15, data=b"a"))
    assert element == b"\x5fa"
    with pytest.raises(CraftError, match="holds 1 to 16 bytes"):
        bytes(OneByteElement(id=5, data=b""))


def test_rtcp_compound_round_trips_through_aiortc():
    compound = (
        RtcpSenderReport(ssrc=1, ntp_timestamp=5, rtp_timestamp=6, packet_count=7, octet_count=8, reports=[
            RtcpReportBlock(ssrc=2, fraction_lost=3, packets_lost=-2, highest_sequence=100, jitter=4,
                            last_sr=9, delay_since_last_sr=10)])
        / RtcpReceiverReport(ssrc=3, reports=[RtcpReportBlock(ssrc=4), RtcpReportBlock(ssrc=5)])
        / RtcpSourceDescription(chunks=[
            RtcpSdesChunk(ssrc=1, items=[RtcpSdesItem(type=CNAME, text=b"prob")]),
            RtcpSdesChunk(ssrc=2, items=[RtcpSdesItem(type=CNAME, text=b"abcd"),
                                         RtcpSdesItem(type=TOOL, text=b"t00l")]),
        ])
        / RtcpBye(ssrcs=[1, 2], reason=b"bye!!")
        / RtcpApp(ssrc=1, app_name=b"abcd", data=b"12345678")
        / RtcpRtpFeedback(sender_ssrc=1, media_ssrc=2, fci=nack_fci([10, 11, 13, 40]))
        / RtcpPayloadFeedback(sender_ssrc=1, media_ssrc=2)
        / RtcpPayloadFeedback(fmt=AFB, sender_ssrc=1, fci=remb_fci(1_000_000, [5, 6]))
    )
    data = bytes(compound)
    sr, rr, sdes, bye, nack, pli, remb = RtcpPacket.parse(data)  # aiortc skips APP
    assert sr.ssrc == 1 and sr.sender_info.packet_count == 7
    assert [(r.ssrc, r.packets_lost, r.highest_sequence) for r in sr.reports] == [(2, -2, 100)]
    assert [r.ssrc for r in rr.reports] == [4, 5]
    assert [(c.ssrc, c.items) for c in sdes.chunks] == [(1, [(1, b"prob")]), (2, [(1, b"abcd"), (6, b"t00l")])]
    assert bye.sources == [1, 2]
    assert nack.lost == [10, 11, 13, 40]
    assert (pli.fmt, pli.fci) == (1, b"")
    assert unpack_remb_fci(remb.fci) == (1_000_000, [5, 6])
    assert [type(layer) for layer in Rtcp(data).iterpayloads()] == [
        RtcpSenderReport, RtcpReceiverReport, RtcpSourceDescription, RtcpBye, RtcpApp,
        RtcpRtpFeedback, RtcpPayloadFeedback, RtcpPayloadFeedback,
    ]
    assert bytes(Rtcp(data)) == data


def test_sdes_chunk_ends_on_a_word_boundary():
    """RFC 3550 §6.5: items end with a null octet and pad to 32 bits (here one byte does both)."""
    data = bytes(RtcpSourceDescription(chunks=[RtcpSdesChunk(ssrc=1, items=[RtcpSdesItem(text=b"probe")])]))
    assert data == bytes.fromhex("81ca0003 00000001 0105 70726f6265 00")


def test_rr_count_and_length_computed_unless_set():
    data = bytes(RtcpReceiverReport(ssrc=9, reports=[RtcpReportBlock(ssrc=1)] * 3))
    assert data[0] & 0x1F == 3 and struct.unpack("!H", data[2:4])[0] == (8 + 3 * 24) // 4 - 1
    lying = bytes(RtcpReceiverReport(ssrc=9, count=5, length=1, reports=[RtcpReportBlock(ssrc=1)]))
    assert lying[0] & 0x1F == 5 and lying[2:4] == b"\x00\x01"
