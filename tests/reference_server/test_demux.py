from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_server.demux import MAX_DATAGRAM, DemuxError, Kind, classify

COOKIE = bytes.fromhex("2112a442")
TID = bytes(range(12))


def stun(first_byte: int = 0x00, body: bytes = b"") -> bytes:
    return bytes([first_byte, 0x01]) + len(body).to_bytes(2, "big") + COOKIE + TID + body


def test_stun_binding_request_with_attributes():
    assert classify(stun(body=b"\x00\x06\x00\x04abcd")) is Kind.STUN


@pytest.mark.parametrize("first_byte", [0, 1, 2, 3])
def test_whole_stun_range(first_byte):
    assert classify(stun(first_byte)) is Kind.STUN


@pytest.mark.parametrize("first_byte", [20, 22, 23, 63])
def test_dtls_range(first_byte):
    assert classify(bytes([first_byte]) + bytes(12)) is Kind.DTLS


def test_dtls_record_header_is_13_bytes():
    assert classify(bytes([22]) + bytes(12)) is Kind.DTLS
    with pytest.raises(DemuxError) as caught:
        classify(bytes([22]) + bytes(11))
    assert caught.value.reason == "dtls_short"
    assert str(caught.value) == (
        "12-byte DTLS-range datagram is shorter than the 13-byte record header"
    )


@pytest.mark.parametrize("first_byte", [128, 0x80, 0x90, 191])
@pytest.mark.parametrize("second_byte", [0, 111, 0x80 | 111, 127, 224, 255])
def test_rtp(first_byte, second_byte):
    assert classify(bytes([first_byte, second_byte]) + bytes(10)) is Kind.RTP


@pytest.mark.parametrize("packet_type", [192, 200, 201, 205, 206, 223])
def test_rtcp_by_payload_type_byte(packet_type):
    """RFC 5761 §4: the full second byte 192-223 means RTCP (SR 200, RR 201, RTPFB 205...)."""
    assert classify(bytes([0x80, packet_type]) + bytes(6)) is Kind.RTCP


def test_eight_byte_rtcp_is_enough_but_eight_byte_rtp_is_not():
    assert classify(bytes([0x81, 201]) + bytes(6)) is Kind.RTCP
    with pytest.raises(DemuxError) as caught:
        classify(bytes([0x80, 111]) + bytes(6))
    assert caught.value.reason == "rtp_short"
    assert str(caught.value) == "8-byte RTP datagram is shorter than the 12-byte RTP header"


@pytest.mark.parametrize("size", [1, 7])
def test_rtp_range_shorter_than_any_rtcp(size):
    with pytest.raises(DemuxError) as caught:
        classify(bytes([0x80]) + bytes(size - 1))
    assert caught.value.reason == "rtp_short"
    assert str(caught.value) == (
        f"{size}-byte RTP-range datagram is shorter than the 8-byte RTCP header"
    )


def test_empty():
    with pytest.raises(DemuxError) as caught:
        classify(b"")
    assert caught.value.reason == "empty"
    assert str(caught.value) == "empty datagram"


def test_size_limit():
    assert classify(bytes([0x80]) + bytes(MAX_DATAGRAM - 1)) is Kind.RTP
    with pytest.raises(DemuxError) as caught:
        classify(bytes([0x80]) + bytes(MAX_DATAGRAM))
    assert caught.value.reason == "oversized"
    assert str(caught.value) == "8193-byte datagram is over the 8192-byte limit"


@pytest.mark.parametrize(
    "datagram",
    [bytes(65507), stun(body=bytes(65484))],
    ids=["largest-udp-payload", "well-formed-65504-byte-stun"],
)
def test_huge_datagrams_are_dropped_before_any_parsing(datagram):
    with pytest.raises(DemuxError) as caught:
        classify(datagram)
    assert caught.value.reason == "oversized"


@pytest.mark.parametrize("size", [1, 19])
def test_short_stun(size):
    with pytest.raises(DemuxError) as caught:
        classify(stun()[:size])
    assert caught.value.reason == "stun_short"
    assert str(caught.value) == (
        f"{size}-byte STUN-range datagram is shorter than the 20-byte STUN header"
    )


def test_classic_rfc3489_stun_is_not_stun():
    classic = bytes.fromhex("0001 0000") + bytes(range(16))
    with pytest.raises(DemuxError) as caught:
        classify(classic)
    assert caught.value.reason == "stun_no_cookie"
    assert str(caught.value) == (
        "STUN-range datagram carries 0x00010203 where the magic cookie 0x2112a442 belongs"
        " (classic RFC 3489 STUN is not answered)"
    )


def test_stun_length_field_must_match_datagram():
    with pytest.raises(DemuxError) as caught:
        classify(stun() + bytes(4))
    assert caught.value.reason == "stun_bad_length"
    assert str(caught.value) == "STUN length field 0 does not match the 4 bytes after the header"


def test_stun_length_field_must_be_multiple_of_4():
    odd = stun(body=b"\x80\x22\x00\x02ab")
    with pytest.raises(DemuxError) as caught:
        classify(odd)
    assert caught.value.reason == "stun_bad_length"
    assert str(caught.value) == "STUN length field 6 is not a multiple of 4"


@pytest.mark.parametrize("first_byte", [4, 15, 16, 19, 64, 79, 127, 192, 255])
def test_first_bytes_outside_every_range(first_byte):
    with pytest.raises(DemuxError) as caught:
        classify(bytes([first_byte]) + bytes(40))
    assert caught.value.reason == "unknown_first_byte"
    assert str(caught.value) == (
        f"first byte {first_byte} is outside the STUN (0-3), DTLS (20-63)"
        " and RTP/RTCP (128-191) ranges"
    )


REASONS = {
    "empty",
    "oversized",
    "stun_short",
    "stun_no_cookie",
    "stun_bad_length",
    "dtls_short",
    "rtp_short",
    "unknown_first_byte",
}


@given(st.binary(max_size=64))
def test_any_bytes_get_a_kind_or_a_known_reason(data):
    try:
        kind = classify(data)
    except DemuxError as error:
        assert error.reason in REASONS
        assert str(error)
    else:
        assert isinstance(kind, Kind)
