from __future__ import annotations

import struct

import pytest
from aiortc.rtcsctptransport import parse_packet

from toolkit.crafters.sctp import (
    PARTIAL_RELIABLE_REXMIT,
    PPID_DCEP,
    PPID_STRING,
    SCTP,
    DataChannelAck,
    DataChannelOpen,
    Dcep,
    checksum_ok,
    crc32c,
    data_chunk,
    init_chunk,
    sack_chunk,
    sctp_packet,
)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"123456789", 0xE3069283),  # the CRC-32C check value
        (bytes(32), 0x8A9136AA),  # RFC 3720 §B.4
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
    ],
)
def test_crc32c_known_vectors(data, expected):
    assert crc32c(data) == expected


def test_packet_checksum_computed_and_accepted_by_aiortc():
    packet = sctp_packet(data_chunk(b"hello", ppid=PPID_STRING, tsn=7, stream_id=1), verification_tag=0x1234)
    data = bytes(packet)
    assert data[8:12] == struct.pack("<I", crc32c(data[:8] + bytes(4) + data[12:]))
    assert checksum_ok(data)
    src, dst, tag, chunks = parse_packet(data)
    assert (src, dst, tag) == (5000, 5000, 0x1234)
    chunk = chunks[0]
    assert (chunk.tsn, chunk.stream_id, chunk.protocol, chunk.user_data) == (7, 1, PPID_STRING, b"hello")


def test_explicit_wrong_checksum_is_written_and_rejected():
    data = bytes(sctp_packet(sack_chunk(4), checksum=0xDEADBEEF))
    assert data[8:12] == bytes.fromhex("deadbeef") and not checksum_ok(data)
    with pytest.raises(ValueError, match="invalid checksum"):
        parse_packet(data)


def test_init_chunk_parses_in_aiortc():
    _, _, _, chunks = parse_packet(bytes(sctp_packet(init_chunk(0xABC, init_tsn=5, streams=16))))
    init = chunks[0]
    assert (init.initiate_tag, init.initial_tsn, init.outbound_streams, init.inbound_streams) == (0xABC, 5, 16, 16)


def test_dcep_open_matches_rfc8832_layout():
    data = bytes(DataChannelOpen(channel_type=PARTIAL_RELIABLE_REXMIT, priority=256, reliability=3,
                                 label=b"oai-events", protocol=b"json"))
    # type 0x03 | channel type | priority | reliability | label length | protocol length | label | protocol
    assert data == bytes.fromhex("03 01 0100 00000003 000a 0004") + b"oai-events" + b"json"
    assert bytes(DataChannelAck()) == b"\x02"
    assert bytes(DataChannelOpen(label=b"x", label_length=9))[8:10] == b"\x00\x09"


def test_dcep_in_a_data_chunk_dissects_in_place():
    data = bytes(sctp_packet(data_chunk(DataChannelOpen(label=b"chat"), ppid=PPID_DCEP, tsn=1)))
    assert SCTP(data)[DataChannelOpen].label == b"chat"
    assert isinstance(Dcep(b"\x02"), DataChannelAck)
