from __future__ import annotations

import struct

import pytest
from aiortc import rtp as aiortc_rtp
from hypothesis import given
from hypothesis import strategies as st

from reference_server.rtp import (
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    RtpError,
    RtpPacket,
    SenderReport,
    ntp_timestamp,
    parse_extension_elements,
    parse_rtcp,
    parse_rtp,
    rewrite_rtp,
    serialize_extension_elements,
    serialize_rtcp,
    serialize_rtp,
)

# RFC 7714 §16.1: the plaintext RTP packet of the AEAD_AES_128_GCM test vectors.
RFC7714_RTP = bytes.fromhex(
    "8040f17b8041f8d35501a0b2"
    "47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573"
)


def rtp_header(first: int = 0x80, second: int = 0x60) -> bytes:
    return struct.pack("!BBHII", first, second, 1, 2, 3)


# --- RTP -----------------------------------------------------------------------------------


def test_parse_rfc7714_vector() -> None:
    packet = parse_rtp(RFC7714_RTP)
    assert packet == RtpPacket(
        payload_type=64,
        sequence_number=0xF17B,
        timestamp=0x8041F8D3,
        ssrc=0x5501A0B2,
        payload=b"Gallia est omnis divisa in partes tres",
    )
    assert serialize_rtp(packet) == RFC7714_RTP


def test_round_trip_with_every_header_feature() -> None:
    profile, extension = serialize_extension_elements([(1, b"\x90"), (3, b"abc")])
    packet = RtpPacket(
        payload_type=111,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0xDEADBEEF,
        marker=True,
        csrc=(1, 2, 0xFFFFFFFF),
        extension_profile=profile,
        extension=extension,
        payload=b"\xf8\xff\xfe",
        padding=5,
    )
    data = serialize_rtp(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[1] == 0x80 | 111
    assert data[-5:] == b"\x00\x00\x00\x00\x05"
    assert len(data) == 12 + 12 + 4 + len(extension) + 3 + 5
    assert parse_rtp(data) == packet


def test_parse_agrees_with_aiortc_on_a_full_packet() -> None:
    packet = RtpPacket(
        payload_type=96, sequence_number=7, timestamp=960, ssrc=42, marker=True, csrc=(9,),
        extension_profile=0xBEDE, extension=b"\x10\x7f\x00\x00", payload=b"opus", padding=3,
    )
    theirs = aiortc_rtp.RtpPacket.parse(serialize_rtp(packet))
    assert (theirs.payload_type, theirs.sequence_number, theirs.timestamp, theirs.ssrc) == (96, 7, 960, 42)
    assert (theirs.marker, theirs.csrc, theirs.payload, theirs.padding_size) == (1, [9], b"opus", 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet is 0 bytes; the fixed header is 12"),
        (rtp_header()[:11], "RTP packet is 11 bytes; the fixed header is 12"),
        (rtp_header(first=0x40), "RTP version is 1; expected 2"),
        (rtp_header(first=0xC0), "RTP version is 3; expected 2"),
        (rtp_header(first=0x82) + b"\0" * 4, "CSRC count 2 needs 20 header bytes; packet has 16"),
        (rtp_header(first=0x90) + b"\xbe\xde", "header extension header needs 4 bytes at offset 12; packet has 14"),
        (
            rtp_header(first=0x91) + b"\0" * 4 + b"\xbe\xde\x00\x02" + b"\0" * 7,
            "header extension length 2 words (8 bytes) at offset 16 runs past the end of the 27-byte packet",
        ),
        (rtp_header(first=0xA0) + b"abc\x00", "padding length is 0; it must count at least its own byte"),
        (rtp_header(first=0xA0) + b"abc\x05", "padding length 5 is larger than the 4 bytes after the header"),
        (rtp_header(first=0xA0), "padding length 3 is larger than the 0 bytes after the header"),
    ],
)
def test_malformed_rtp_exact_errors(data: bytes, message: str) -> None:
    with pytest.raises(RtpError) as parse_error:
        parse_rtp(data)
    assert str(parse_error.value) == message
    with pytest.raises(RtpError) as rewrite_error:
        rewrite_rtp(data, ssrc=1, sequence_number=1, timestamp=1)
    assert str(rewrite_error.value) == message


def test_padding_may_fill_everything_after_the_header() -> None:
    packet = parse_rtp(rtp_header(first=0xA0) + b"\x00\x00\x03")
    assert (packet.payload, packet.padding) == (b"", 3)


def test_rewrite_replaces_only_ssrc_sequence_and_timestamp() -> None:
    original = serialize_rtp(
        RtpPacket(payload_type=111, sequence_number=1, timestamp=2, ssrc=3, marker=True, csrc=(4,),
                  extension_profile=0x1000, extension=b"\x05\x01\xaa\x00", payload=b"voice", padding=2)
    )
    rewritten = rewrite_rtp(original, ssrc=0xCAFEBABE, sequence_number=0xFFFF, timestamp=0x12345678)
    assert rewritten[:2] == original[:2]
    assert rewritten[2:12] == struct.pack("!HII", 0xFFFF, 0x12345678, 0xCAFEBABE)
    assert rewritten[12:] == original[12:]
    assert isinstance(rewritten, bytes)


def test_rewrite_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(RtpError, match="^sequence number 65536 does not fit in 16 bits$"):
        rewrite_rtp(RFC7714_RTP, ssrc=1, sequence_number=65536, timestamp=1)
    with pytest.raises(RtpError, match="^SSRC -1 does not fit in 32 bits$"):
        rewrite_rtp(RFC7714_RTP, ssrc=-1, sequence_number=1, timestamp=1)


def blank_rtp(**changes: object) -> RtpPacket:
    return RtpPacket(**{"payload_type": 0, "sequence_number": 0, "timestamp": 0, "ssrc": 0, **changes})


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (blank_rtp(payload_type=128), "payload type 128 does not fit in 7 bits"),
        (blank_rtp(timestamp=2**32), "timestamp 4294967296 does not fit in 32 bits"),
        (blank_rtp(csrc=tuple(range(16))), "16 CSRCs; the header holds at most 15"),
        (blank_rtp(padding=256), "padding length 256 does not fit in 8 bits"),
        (blank_rtp(extension_profile=0xBEDE, extension=b"abc"),
         "header extension is 3 bytes; it must be a multiple of 4"),
        (blank_rtp(extension=b"abcd"), "header extension data without an extension profile"),
    ],
)
def test_serialize_rtp_rejects_values_that_do_not_fit(packet: RtpPacket, message: str) -> None:
    with pytest.raises(RtpError) as error:
        serialize_rtp(packet)
    assert str(error.value) == message


def _aiortc_verdict(data: bytes) -> tuple[int, int, int, int, int, list[int], bytes, int] | None:
    try:
        packet = aiortc_rtp.RtpPacket.parse(data)
    except ValueError:
        return None
    return (packet.payload_type, packet.sequence_number, packet.timestamp, packet.ssrc, packet.marker,
            packet.csrc, packet.payload, packet.padding_size)


def _header_like_bytes() -> st.SearchStrategy[bytes]:
    first = st.integers(0x80, 0xBF).map(lambda b: bytes([b]))
    return st.one_of(st.binary(max_size=80), st.builds(lambda a, b: a + b, first, st.binary(max_size=80)))


@given(_header_like_bytes())
def test_parse_rtp_matches_aiortc_and_round_trips(data: bytes) -> None:
    theirs = _aiortc_verdict(data)
    try:
        packet = parse_rtp(data)
    except RtpError:
        assert theirs is None
        return
    assert theirs == (packet.payload_type, packet.sequence_number, packet.timestamp, packet.ssrc,
                      int(packet.marker), list(packet.csrc), packet.payload, packet.padding)
    expected = data  # padding bytes come back as zeros, the count byte as it was
    if packet.padding:
        expected = data[: len(data) - packet.padding] + bytes(packet.padding - 1) + data[-1:]
    assert serialize_rtp(packet) == expected
    assert rewrite_rtp(data, ssrc=packet.ssrc, sequence_number=packet.sequence_number,
                       timestamp=packet.timestamp) == data


# --- RFC 8285 header extension elements ----------------------------------------------------


def test_one_byte_elements_skip_padding_and_stop_at_id_15() -> None:
    data = b"\x10\xaa" + b"\x00\x00" + b"\x21\xbb\xcc" + b"\xf0\xdd" + b"\x30\xee"
    assert parse_extension_elements(0xBEDE, data) == [(1, b"\xaa"), (2, b"\xbb\xcc")]


def test_two_byte_elements_with_appbits_and_empty_values() -> None:
    data = b"\x01\x00" + b"\x00" + b"\xff\x02\x01\x02" + b"\x00\x00"
    assert parse_extension_elements(0x100F, data) == [(1, b""), (255, b"\x01\x02")]


@pytest.mark.parametrize(
    ("profile", "data", "message"),
    [
        (0xBEDE, b"\x13\xaa", "extension element 1 length 4 at offset 0 runs past the end of the 2-byte extension"),
        (0x1000, b"\x05", "extension element 5 at offset 0 has no length byte"),
        (0x1000, b"\x05\x03\xaa", "extension element 5 length 3 at offset 0 runs past the end of the 3-byte extension"),
        (0xABCD, b"", "header extension profile 0xABCD is neither 0xBEDE nor 0x100X (RFC 8285)"),
    ],
)
def test_malformed_extension_elements_exact_errors(profile: int, data: bytes, message: str) -> None:
    with pytest.raises(RtpError) as error:
        parse_extension_elements(profile, data)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("elements", "profile"),
    [
        ([(1, b"\x01"), (14, b"x" * 16)], 0xBEDE),
        ([(15, b"\x01")], 0x1000),
        ([(1, b"")], 0x1000),
        ([(2, b"x" * 17)], 0x1000),
        ([(200, b"y" * 255), (3, b"z")], 0x1000),
    ],
)
def test_extension_elements_pick_the_form_that_fits_and_match_aiortc(
    elements: list[tuple[int, bytes]], profile: int
) -> None:
    built = serialize_extension_elements(elements)
    assert built == aiortc_rtp.pack_header_extensions(elements)
    assert built[0] == profile
    assert len(built[1]) % 4 == 0
    assert parse_extension_elements(*built) == elements


def test_extension_elements_that_fit_no_form() -> None:
    with pytest.raises(RtpError, match="^extension element 3 is 256 bytes; at most 255$"):
        serialize_extension_elements([(3, bytes(256))])
    with pytest.raises(RtpError, match="^extension element id 0 is outside 1-255$"):
        serialize_extension_elements([(0, b"a")])


# --- RTCP ----------------------------------------------------------------------------------


BLOCK = ReportBlock(ssrc=0x11111111, fraction_lost=64, packets_lost=-3, highest_sequence=70000,
                    jitter=120, last_sr=0xABCD1234, delay_since_last_sr=65536)


def test_sender_report_layout_and_round_trip() -> None:
    report = SenderReport(ssrc=0xDEADBEEF, ntp_timestamp=0x83AA7E80_80000000, rtp_timestamp=48000,
                          packet_count=50, octet_count=8000, reports=[BLOCK])
    data = serialize_rtcp([report])
    assert data[:4] == bytes([0x81, 200, 0, 12])
    assert len(data) == 4 + 24 + 24
    assert data[4 + 24 + 4 : 4 + 24 + 8] == bytes([64, 0xFF, 0xFF, 0xFD])  # -3 in 24-bit two's complement
    assert parse_rtcp(data) == [report]


def test_compound_with_opaque_packets_round_trips() -> None:
    compound = [
        ReceiverReport(ssrc=7, reports=[BLOCK, ReportBlock(8, 0, 0x7FFFFF, 1, 2, 3, 4)]),
        RtcpPacket(packet_type=202, count=1, body=b"\x00\x00\x00\x07\x01\x03abc\x00\x00\x00"),  # SDES CNAME
        RtcpPacket(packet_type=206, count=1, body=struct.pack("!II", 7, 9)),  # PSFB PLI
        RtcpPacket(packet_type=203, count=1, body=struct.pack("!I", 7) + b"\x04ciao"),  # BYE, reason
    ]
    data = serialize_rtcp(compound)
    assert parse_rtcp(data) == compound
    bye = data[-16:]  # a 9-byte body takes 3 bytes of padding to reach a word boundary
    assert bye[:4] == bytes([0x80 | 0x20 | 1, 203, 0, 3])
    assert bye[-3:] == b"\x00\x00\x03"


def test_rtcp_agrees_with_aiortc_both_ways() -> None:
    ours = serialize_rtcp([
        SenderReport(ssrc=1, ntp_timestamp=2, rtp_timestamp=3, packet_count=4, octet_count=5, reports=[BLOCK]),
        RtcpPacket(packet_type=203, count=1, body=struct.pack("!I", 1)),
    ])
    sr, bye = aiortc_rtp.RtcpPacket.parse(ours)
    assert (sr.ssrc, sr.sender_info.ntp_timestamp, sr.sender_info.octet_count) == (1, 2, 5)
    info = sr.reports[0]
    assert (info.ssrc, info.fraction_lost, info.packets_lost, info.lsr, info.dlsr) == (
        BLOCK.ssrc, BLOCK.fraction_lost, BLOCK.packets_lost, BLOCK.last_sr, BLOCK.delay_since_last_sr)
    assert bye.sources == [1]

    theirs = bytes(aiortc_rtp.RtcpRrPacket(ssrc=9, reports=[aiortc_rtp.RtcpReceiverInfo(
        ssrc=5, fraction_lost=1, packets_lost=-100, highest_sequence=2, jitter=3, lsr=4, dlsr=5)]))
    assert parse_rtcp(theirs) == [ReceiverReport(ssrc=9, reports=[ReportBlock(5, 1, -100, 2, 3, 4, 5)])]


def test_rtcp_padding_is_removed_from_the_body() -> None:
    data = bytes([0xA0, 201, 0, 2]) + struct.pack("!I", 5) + b"\x00\x00\x00\x04"
    assert parse_rtcp(data) == [ReceiverReport(ssrc=5, reports=[])]


def test_sender_report_extension_bytes_are_ignored() -> None:
    report = SenderReport(ssrc=1, ntp_timestamp=2, rtp_timestamp=3, packet_count=4, octet_count=5, reports=[])
    data = bytearray(serialize_rtcp([report]) + b"\x01\x02\x03\x04")
    data[3] += 1
    assert parse_rtcp(bytes(data)) == [report]


RR_HEADER = bytes([0x80, 201, 0, 1]) + b"\x00\x00\x00\x05"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty RTCP compound packet"),
        (b"\x80\xc9\x00", "RTCP packet at offset 0 is 3 bytes; the header is 4"),
        (RR_HEADER + b"\x80\xc9", "RTCP packet at offset 8 is 2 bytes; the header is 4"),
        (bytes([0x40, 201, 0, 0]), "RTCP version is 1 at offset 0; expected 2"),
        (RR_HEADER + bytes([0x00, 201, 0, 0]), "RTCP version is 0 at offset 8; expected 2"),
        (bytes([0x80, 96, 0, 0]), "RTCP packet type 96 at offset 0 is outside 192-223 (RFC 5761)"),
        (
            bytes([0x80, 201, 0, 2]) + bytes(4),
            "RTCP length 2 words (8 bytes) at offset 0 runs past the end of the 8-byte compound packet",
        ),
        (
            bytes([0x81, 201, 0, 1]) + bytes(4),
            "RTCP RR with report count 1 needs 28 bytes after the header; the packet has 4",
        ),
        (
            bytes([0x80, 200, 0, 1]) + bytes(4),
            "RTCP SR with report count 0 needs 24 bytes after the header; the packet has 4",
        ),
        (bytes([0xA0, 201, 0, 1]) + bytes(4), "RTCP padding length 0 at offset 0 does not fit the 4-byte packet body"),
        (bytes([0xA0, 201, 0, 1]) + b"\x00\x00\x00\x05",
         "RTCP padding length 5 at offset 0 does not fit the 4-byte packet body"),
        (bytes([0xA0, 201, 0, 0]), "RTCP padding length 0 at offset 0 does not fit the 0-byte packet body"),
    ],
)
def test_malformed_rtcp_exact_errors(data: bytes, message: str) -> None:
    with pytest.raises(RtcpError) as error:
        parse_rtcp(data)
    assert str(error.value) == message
    assert isinstance(error.value, RtpError)


@pytest.mark.parametrize(
    ("packets", "message"),
    [
        ([], "empty RTCP compound packet"),
        ([ReceiverReport(ssrc=1, reports=[BLOCK] * 32)], "32 report blocks; an RTCP packet holds at most 31"),
        ([ReceiverReport(ssrc=1, reports=[ReportBlock(1, 0, 1 << 23, 0, 0, 0, 0)])],
         "packets lost 8388608 does not fit in a signed 24-bit field"),
        ([ReceiverReport(ssrc=1, reports=[ReportBlock(1, 256, 0, 0, 0, 0, 0)])],
         "fraction lost 256 does not fit in 8 bits"),
        ([RtcpPacket(packet_type=200 + 64, count=0, body=b"")], "RTCP packet type 264 is outside 192-223 (RFC 5761)"),
        ([RtcpPacket(packet_type=206, count=32, body=b"")], "RTCP count 32 does not fit in 5 bits"),
        ([SenderReport(ssrc=1, ntp_timestamp=2**64, rtp_timestamp=0, packet_count=0, octet_count=0, reports=[])],
         "NTP timestamp 18446744073709551616 does not fit in 64 bits"),
    ],
)
def test_serialize_rtcp_rejects_values_that_do_not_fit(packets: list, message: str) -> None:
    with pytest.raises(RtcpError) as error:
        serialize_rtcp(packets)
    assert str(error.value) == message


def test_packets_lost_extremes_round_trip() -> None:
    for lost in (-(1 << 23), -1, 0, (1 << 23) - 1):
        report = ReceiverReport(ssrc=1, reports=[ReportBlock(1, 0, lost, 0, 0, 0, 0)])
        assert parse_rtcp(serialize_rtcp([report])) == [report]


def _rtcp_like_bytes() -> st.SearchStrategy[bytes]:
    plausible = st.binary(min_size=1, max_size=120).map(
        lambda b: bytes([0x80 | (b[0] & 0x3F), 200 + b[0] % 8]) + b[1:]
    )
    return st.one_of(st.binary(max_size=120), plausible)


@given(_rtcp_like_bytes())
def test_parse_rtcp_raises_only_rtcp_error_and_round_trips(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except RtcpError:
        return
    assert packets
    assert parse_rtcp(serialize_rtcp(packets)) == packets


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0) == 0
    assert ntp_timestamp(1.5) == (1 << 32) | 0x80000000
    assert ntp_timestamp(2_208_988_800) == 0x83AA7E80_00000000  # the Unix epoch
    assert ntp_timestamp(2_208_988_800.25) == 0x83AA7E80_40000000
    assert ntp_timestamp(2**32 + 3.0) == 3 << 32  # era 1 (after 2036) wraps
    with pytest.raises(RtcpError, match="^NTP time -1 is before 1900$"):
        ntp_timestamp(-1)
