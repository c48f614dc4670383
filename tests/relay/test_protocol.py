"""The relay ⇄ worker datagram format: exact bytes, round trips, exact errors."""
from __future__ import annotations

import pytest

from reference_server.relay.protocol import MAX_UDP_PAYLOAD, Forward, Kind, RelayProtocolError, decode, encode


def test_ipv4_layout_byte_for_byte():
    wrapped = encode(Kind.TO_WORKER, ("192.0.2.1", 0x1234), b"\x00\x01payload")
    assert wrapped == bytes.fromhex("5247 01 01 00 04 1234 c0000201") + b"\x00\x01payload"
    assert decode(wrapped) == Forward(Kind.TO_WORKER, ("192.0.2.1", 0x1234), b"\x00\x01payload", False)


def test_ipv6_layout_and_bind_flag():
    wrapped = encode(Kind.TO_CLIENT, ("2001:db8::1", 443), b"\x80", bind=True)
    assert wrapped[:8] == bytes.fromhex("5247 01 02 01 06 01bb")
    assert wrapped[8:24] == bytes.fromhex("20010db8000000000000000000000001")
    assert decode(wrapped) == Forward(Kind.TO_CLIENT, ("2001:db8::1", 443), b"\x80", True)


@pytest.mark.parametrize("client", [("127.0.0.1", 1), ("::ffff:10.0.0.1", 65535), ("fe80::1", 5000)])
@pytest.mark.parametrize("kind, bind", [(Kind.TO_WORKER, False), (Kind.TO_CLIENT, False), (Kind.TO_CLIENT, True)])
def test_round_trip(client, kind, bind):
    payload = bytes(range(256)) * 5
    assert decode(encode(kind, client, payload, bind=bind)) == Forward(kind, client, payload, bind)


def test_largest_datagram_fits_and_one_more_byte_does_not():
    assert len(encode(Kind.TO_WORKER, ("10.0.0.1", 9), b"x" * (MAX_UDP_PAYLOAD - 12))) == MAX_UDP_PAYLOAD
    with pytest.raises(RelayProtocolError) as error:
        encode(Kind.TO_WORKER, ("10.0.0.1", 9), b"x" * (MAX_UDP_PAYLOAD - 11))
    assert str(error.value) == "a 65496-byte datagram with its 12-byte header exceeds 65507 bytes, the largest UDP payload"


@pytest.mark.parametrize("kind, client, payload, bind, message", [
    (Kind.TO_WORKER, ("10.0.0.1", 9), b"", False, "there is no client datagram to forward (empty payload)"),
    (Kind.TO_WORKER, ("10.0.0.1", 9), b"x", True, "the BIND flag is only valid on TO_CLIENT messages"),
    (Kind.TO_WORKER, ("example.com", 9), b"x", False, "client host 'example.com' is not an IP address"),
    (Kind.TO_CLIENT, ("10.0.0.1", 0), b"x", False, "client port 0 is outside 1..65535"),
    (Kind.TO_CLIENT, ("10.0.0.1", 65536), b"x", False, "client port 65536 is outside 1..65535"),
])
def test_encode_errors(kind, client, payload, bind, message):
    with pytest.raises(RelayProtocolError) as error:
        encode(kind, client, payload, bind=bind)
    assert str(error.value) == message


GOOD = bytes.fromhex("5247 01 02 01 04 1234 c0000201") + b"x"


@pytest.mark.parametrize("data, message", [
    (GOOD[:7], "relay datagram of 7 bytes is shorter than the 8-byte fixed header"),
    (b"XX" + GOOD[2:], "relay datagram starts with 0x5858, not the magic 0x5247 ('RG')"),
    (GOOD[:2] + b"\x02" + GOOD[3:], "relay protocol version 2 is not the supported version 1"),
    (GOOD[:3] + b"\x03" + GOOD[4:], "relay message kind 3 is neither 1 (TO_WORKER) nor 2 (TO_CLIENT)"),
    (GOOD[:3] + b"\x01\x01" + GOOD[5:], "flags 0x01 are not valid on a TO_WORKER message"),
    (GOOD[:4] + b"\x03" + GOOD[5:], "flags 0x03 are not valid on a TO_CLIENT message"),
    (GOOD[:5] + b"\x05" + GOOD[6:], "address family 5 is neither 4 nor 6"),
    (GOOD[:5] + b"\x06" + GOOD[6:], "IPv6 client address runs past the end of the 13-byte datagram"),
    (GOOD[:11], "IPv4 client address runs past the end of the 11-byte datagram"),
    (GOOD[:12], "relay datagram carries no client datagram after its header"),
    (GOOD[:6] + b"\x00\x00" + GOOD[8:], "client port 0 is not a valid source port"),
])
def test_decode_errors(data, message):
    with pytest.raises(RelayProtocolError) as error:
        decode(data)
    assert str(error.value) == message
