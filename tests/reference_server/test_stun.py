from __future__ import annotations

import ipaddress
import struct

import pytest
from aioice import stun as aioice_stun
from hypothesis import given
from hypothesis import strategies as st

from reference_server import stun
from reference_server.stun import StunError
from tests.support import rfc5769
from tests.support.rfc5769 import unhex

TID = bytes(range(1, 13))
KEY = b"0123456789abcdefghijklmn"


def header(message_type: int, body: bytes, cookie: int = stun.MAGIC_COOKIE) -> bytes:
    return struct.pack("!HHI", message_type, len(body), cookie) + TID + body


def attribute(attr_type: int, value: bytes) -> bytes:
    return struct.pack("!HH", attr_type, len(value)) + value + bytes(-len(value) % 4)


def with_appended(message: bytes, extra: bytes) -> bytes:
    """`message` with `extra` bytes of attributes after it and the length field fixed."""
    grown = message + extra
    return grown[:2] + struct.pack("!H", len(grown) - 20) + grown[4:]


# --- RFC 5769 -------------------------------------------------------------------------------


def test_rfc5769_request():
    message = stun.parse(rfc5769.REQUEST)
    assert (message.method, message.msg_class) == (stun.BINDING, stun.REQUEST)
    assert message.transaction_id == rfc5769.TRANSACTION_ID
    assert [attr_type for attr_type, _ in message.attributes] == [
        stun.SOFTWARE,
        stun.PRIORITY,
        stun.ICE_CONTROLLED,
        stun.USERNAME,
        stun.MESSAGE_INTEGRITY,
        stun.FINGERPRINT,
    ]
    assert message.get(stun.SOFTWARE) == b"STUN test client"
    assert message.get(stun.USERNAME) == b"evtj:h6vY"  # the 0x20 padding is not part of it
    assert message.get(stun.PRIORITY) == unhex("6e 00 01 ff")
    assert message.get(stun.ICE_CONTROLLED) == unhex("93 2f f9 b1 51 26 3b 36")
    assert message.integrity_offset == 76
    assert message.fingerprint_offset == 100
    assert message.integrity_sha256_offset is None
    assert stun.integrity_ok(rfc5769.REQUEST, message, rfc5769.SHORT_TERM_PASSWORD)
    assert not stun.integrity_ok(rfc5769.REQUEST, message, b"VOkJxbRl1RmTxUk/WvJxBT")
    assert stun.fingerprint_ok(rfc5769.REQUEST, message)


@pytest.mark.parametrize("vector, ip", rfc5769.RESPONSES.values(), ids=rfc5769.RESPONSES)
def test_rfc5769_responses(vector, ip):
    message = stun.parse(vector)
    assert (message.method, message.msg_class) == (stun.BINDING, stun.SUCCESS)
    assert message.get(stun.SOFTWARE) == b"test vector"
    mapped = message.get(stun.XOR_MAPPED_ADDRESS)
    assert stun.parse_xor_address(mapped, message.transaction_id) == (ip, rfc5769.MAPPED_PORT)
    assert stun.xor_address(ip, rfc5769.MAPPED_PORT, rfc5769.TRANSACTION_ID) == mapped
    assert stun.integrity_ok(vector, message, rfc5769.SHORT_TERM_PASSWORD)
    assert stun.fingerprint_ok(vector, message)


def test_rfc5769_long_term_request():
    vector = rfc5769.LONG_TERM_REQUEST
    message = stun.parse(vector)
    assert message.get(stun.USERNAME).decode() == rfc5769.LONG_TERM_USERNAME
    assert message.get(stun.NONCE) == b"f//499k954d6OL34oL9FSTvy64sA"
    assert message.get(stun.REALM) == b"example.org"
    # This vector carries no FINGERPRINT, so there is none to pass.
    assert message.fingerprint_offset is None
    assert not stun.fingerprint_ok(vector, message)
    assert stun.integrity_ok(vector, message, rfc5769.LONG_TERM_KEY)
    assert not stun.integrity_ok(vector, message, rfc5769.SHORT_TERM_PASSWORD)


def test_build_reproduces_the_long_term_vector():
    """Its padding is zeros, so the builder must give back the same bytes."""
    message = stun.parse(rfc5769.LONG_TERM_REQUEST)
    rebuilt = stun.build(
        stun.BINDING,
        stun.REQUEST,
        message.transaction_id,
        [a for a in message.attributes if a[0] != stun.MESSAGE_INTEGRITY],
        integrity_key=rfc5769.LONG_TERM_KEY,
        fingerprint=False,
    )
    assert rebuilt == rfc5769.LONG_TERM_REQUEST


@pytest.mark.parametrize(
    "position",
    [8, 24, 45, 55, 66, 80],
    ids=["tid", "software", "priority", "ice-controlled", "username", "mi"],
)
def test_flipped_bit_before_fingerprint_fails_both_checks(position):
    tampered = bytearray(rfc5769.REQUEST)
    tampered[position] ^= 0x01
    message = stun.parse(bytes(tampered))
    assert not stun.fingerprint_ok(bytes(tampered), message)
    assert not stun.integrity_ok(bytes(tampered), message, rfc5769.SHORT_TERM_PASSWORD)


def test_flipped_bit_in_fingerprint_leaves_integrity_intact():
    """MESSAGE-INTEGRITY covers nothing after itself."""
    tampered = rfc5769.REQUEST[:-1] + bytes([rfc5769.REQUEST[-1] ^ 0x01])
    message = stun.parse(tampered)
    assert not stun.fingerprint_ok(tampered, message)
    assert stun.integrity_ok(tampered, message, rfc5769.SHORT_TERM_PASSWORD)


# --- cross-checks against aioice -----------------------------------------------------------


def test_aioice_request_parses_and_verifies_here():
    request = aioice_stun.Message(
        aioice_stun.Method.BINDING,
        aioice_stun.Class.REQUEST,
        transaction_id=TID,
        attributes={
            "USERNAME": "server:client",
            "PRIORITY": 0x6E0001FF,
            "ICE-CONTROLLING": 0x1122334455667788,
            "USE-CANDIDATE": None,
        },
    )
    request.add_message_integrity(KEY)
    data = bytes(request)
    message = stun.parse(data)
    assert (message.method, message.msg_class) == (stun.BINDING, stun.REQUEST)
    assert message.transaction_id == TID
    assert message.get(stun.USERNAME) == b"server:client"
    assert message.get(stun.PRIORITY) == (0x6E0001FF).to_bytes(4, "big")
    assert message.get(stun.ICE_CONTROLLING) == (0x1122334455667788).to_bytes(8, "big")
    assert message.get(stun.USE_CANDIDATE) == b""
    assert stun.integrity_ok(data, message, KEY)
    assert not stun.integrity_ok(data, message, KEY + b"x")
    assert stun.fingerprint_ok(data, message)


def test_aioice_fingerprint_only_message_verifies_here():
    indication = aioice_stun.Message(
        aioice_stun.Method.BINDING, aioice_stun.Class.INDICATION, transaction_id=TID
    )
    indication.add_fingerprint()
    data = bytes(indication)
    message = stun.parse(data)
    assert message.msg_class == stun.INDICATION
    assert stun.fingerprint_ok(data, message)
    assert not stun.integrity_ok(data, message, KEY)


@pytest.mark.parametrize(
    "ip, port", [("203.0.113.7", 50000), ("2001:db8::42", 3478), ("::ffff:192.0.2.9", 1)]
)
def test_response_built_here_parses_and_verifies_in_aioice(ip, port):
    data = stun.build(
        stun.BINDING,
        stun.SUCCESS,
        TID,
        [(stun.XOR_MAPPED_ADDRESS, stun.xor_address(ip, port, TID))],
        integrity_key=KEY,
    )
    parsed = aioice_stun.parse_message(data)  # raises if FINGERPRINT is wrong
    assert parsed.message_method == aioice_stun.Method.BINDING
    assert parsed.message_class == aioice_stun.Class.RESPONSE
    assert parsed.transaction_id == TID
    parsed_ip, parsed_port = parsed.attributes["XOR-MAPPED-ADDRESS"]
    # aioice writes IPv4-mapped IPv6 as ::ffff:c000:209; compare addresses, not text.
    assert (ipaddress.ip_address(parsed_ip), parsed_port) == (ipaddress.ip_address(ip), port)
    assert "FINGERPRINT" in parsed.attributes
    assert parsed.check_message_integrity(KEY)
    assert not parsed.check_message_integrity(KEY + b"x")


def test_error_response_built_here_reads_the_same_in_aioice():
    data = stun.build(
        stun.BINDING,
        stun.ERROR,
        TID,
        [(stun.ERROR_CODE, stun.error_code(420, "Unknown Attribute"))],
        integrity_key=KEY,
    )
    parsed = aioice_stun.parse_message(data)
    assert parsed.message_class == aioice_stun.Class.ERROR
    assert parsed.attributes["ERROR-CODE"] == (420, "Unknown Attribute")
    assert parsed.check_message_integrity(KEY)


def test_message_without_integrity_or_fingerprint_reads_the_same_in_aioice():
    data = stun.build(
        stun.BINDING, stun.REQUEST, TID, [(stun.SOFTWARE, b"rtcgate")], fingerprint=False
    )
    assert data == bytes(
        aioice_stun.Message(
            aioice_stun.Method.BINDING,
            aioice_stun.Class.REQUEST,
            transaction_id=TID,
            attributes={"SOFTWARE": "rtcgate"},
        )
    )


# --- build / parse ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, msg_class, message_type",
    [
        (stun.BINDING, stun.REQUEST, 0x0001),
        (stun.BINDING, stun.INDICATION, 0x0011),
        (stun.BINDING, stun.SUCCESS, 0x0101),
        (stun.BINDING, stun.ERROR, 0x0111),
        (0x003, stun.SUCCESS, 0x0103),
        (0x0FFF, stun.ERROR, 0x3FFF),
        (0x0080, stun.REQUEST, 0x0200),
    ],
)
def test_method_and_class_bits_interleave(method, msg_class, message_type):
    data = stun.build(method, msg_class, TID, fingerprint=False)
    assert struct.unpack_from("!H", data)[0] == message_type
    message = stun.parse(data)
    assert (message.method, message.msg_class) == (method, msg_class)


def test_round_trip_pads_with_zeros_and_keeps_order_and_duplicates():
    attributes = [
        (stun.USERNAME, b"abcde"),
        (stun.SOFTWARE, b""),
        (stun.USERNAME, b"second"),
        (stun.PRIORITY, b"\x00\x00\x00\x01"),
    ]
    data = stun.build(stun.BINDING, stun.REQUEST, TID, attributes, integrity_key=KEY)
    assert data[20:32] == b"\x00\x06\x00\x05abcde\x00\x00\x00"
    message = stun.parse(data)
    assert message.attributes[:4] == tuple(attributes)
    assert [a for a, _ in message.attributes[4:]] == [stun.MESSAGE_INTEGRITY, stun.FINGERPRINT]
    assert message.get(stun.USERNAME) == b"abcde"
    assert stun.integrity_ok(data, message, KEY)
    assert stun.fingerprint_ok(data, message)


def test_absent_integrity_and_fingerprint_never_pass():
    data = stun.build(stun.BINDING, stun.REQUEST, TID, fingerprint=False)
    message = stun.parse(data)
    assert not stun.integrity_ok(data, message, KEY)
    assert not stun.fingerprint_ok(data, message)


def test_attributes_after_integrity_are_ignored_and_do_not_break_it():
    signed = stun.build(
        stun.BINDING,
        stun.REQUEST,
        TID,
        [(stun.USERNAME, b"a:b")],
        integrity_key=KEY,
        fingerprint=False,
    )
    unauthenticated = (
        attribute(stun.PRIORITY, b"\x00\x00\x00\x07")
        + attribute(stun.USERNAME, b"x:y")
        + attribute(0x0003, b"\x00\x00\x00\x00")
    )
    data = with_appended(signed, unauthenticated)
    message = stun.parse(data)
    assert stun.integrity_ok(data, message, KEY)
    assert message.get(stun.PRIORITY) is None
    assert message.get(stun.USERNAME) == b"a:b"
    assert message.unknown_comprehension_required() == []


def test_after_integrity_sha256_and_fingerprint_still_count():
    sha256 = bytes(range(32))
    data = with_appended(
        stun.build(stun.BINDING, stun.REQUEST, TID, integrity_key=KEY, fingerprint=False),
        attribute(stun.MESSAGE_INTEGRITY_SHA256, sha256) + attribute(stun.SOFTWARE, b"late"),
    )
    data = with_appended(data, attribute(stun.FINGERPRINT, bytes(4)))
    message = stun.parse(data)
    assert message.get(stun.MESSAGE_INTEGRITY_SHA256) == sha256
    assert message.get(stun.SOFTWARE) is None
    assert message.get(stun.FINGERPRINT) == bytes(4)
    assert message.integrity_sha256_offset == 44
    assert stun.integrity_ok(data, message, KEY)
    assert not stun.fingerprint_ok(data, message)  # zeros are not the CRC


def test_unknown_comprehension_required_in_order_once_each():
    data = stun.build(
        stun.BINDING,
        stun.REQUEST,
        TID,
        [
            (0x7FFF, b"a"),
            (stun.USERNAME, b"a:b"),
            (0x0003, b"\x00\x00\x00\x00"),
            (0xC001, b"optional"),
            (0x7FFF, b"again"),
        ],
    )
    assert stun.parse(data).unknown_comprehension_required() == [0x7FFF, 0x0003]


def test_every_named_attribute_is_known():
    not_attributes = {"MAGIC_COOKIE", "REQUEST", "INDICATION", "SUCCESS", "ERROR", "BINDING", "AF_INET", "AF_INET6"}
    types = {
        getattr(stun, name)
        for name in dir(stun)
        if name.isupper()
        and not name.startswith("_")
        and name not in not_attributes
        and isinstance(getattr(stun, name), int)
    }
    assert types == stun.KNOWN_ATTRIBUTES
    assert len(types) == 20


# --- parse errors -----------------------------------------------------------------------------

PARSE_ERRORS = [
    (bytes(19), "message is 19 bytes, shorter than the 20-byte header"),
    (header(0x8001, b""), "message type 0x8001 has its top two bits set"),
    (header(0x4001, b""), "message type 0x4001 has its top two bits set"),
    (
        header(0x0001, b"", cookie=0x01020304),
        "magic cookie is 0x01020304, not 0x2112a442",
    ),
    (header(0x0001, b"") + bytes(4), "length field says 0 bytes of attributes but 4 follow"),
    (
        header(0x0001, b"\x80\x22\x00\x02ab"),
        "length field 6 is not a multiple of 4",
    ),
    # Two bytes of a would-be attribute header: the length check is what catches it.
    (header(0x0001, b"\x00\x06"), "length field 2 is not a multiple of 4"),
    (
        header(0x0001, b"\x00\x06\x00\x0cabcd"),
        "attribute 0x0006 length 12 runs past the end of the message",
    ),
    (
        header(0x0001, b"\x00\x06\x00\x05abcd"),
        "attribute 0x0006 length 5 runs past the end of the message",
    ),
    (
        header(0x0001, attribute(stun.FINGERPRINT, bytes(4)) + attribute(stun.SOFTWARE, b"x")),
        "attribute 0x8022 follows FINGERPRINT",
    ),
    (
        header(0x0001, attribute(stun.FINGERPRINT, bytes(4)) * 2),
        "attribute 0x8028 follows FINGERPRINT",
    ),
    (
        header(0x0001, attribute(stun.FINGERPRINT, bytes(8))),
        "FINGERPRINT length 8 is not 4",
    ),
    (
        header(0x0001, attribute(stun.MESSAGE_INTEGRITY, bytes(16))),
        "MESSAGE-INTEGRITY length 16 is not 20",
    ),
    (
        header(0x0001, attribute(stun.MESSAGE_INTEGRITY_SHA256, bytes(12))),
        "MESSAGE-INTEGRITY-SHA256 length 12 is not a multiple of 4 from 16 to 32",
    ),
    (
        header(0x0001, attribute(stun.MESSAGE_INTEGRITY_SHA256, bytes(18))),
        "MESSAGE-INTEGRITY-SHA256 length 18 is not a multiple of 4 from 16 to 32",
    ),
]


@pytest.mark.parametrize("data, message", PARSE_ERRORS)
def test_parse_errors(data, message):
    with pytest.raises(StunError) as caught:
        stun.parse(data)
    assert str(caught.value) == message


def test_truncated_integrity_sha256_of_16_bytes_is_accepted():
    message = stun.parse(header(0x0001, attribute(stun.MESSAGE_INTEGRITY_SHA256, bytes(16))))
    assert message.integrity_sha256_offset == 20


# --- attribute values ---------------------------------------------------------------------------


def test_parse_xor_address_writes_ips_as_sockets_report_them():
    value = stun.xor_address("::ffff:192.0.2.9", 1, TID)
    assert stun.parse_xor_address(value, TID) == ("::ffff:192.0.2.9", 1)


def test_xor_address_round_trips_with_the_transaction_id():
    value = stun.xor_address("fe80::1", 9, TID)
    assert stun.parse_xor_address(value, TID) == ("fe80::1", 9)
    assert stun.parse_xor_address(value, bytes(12)) != ("fe80::1", 9)


def test_xor_address_drops_the_ipv6_scope():
    assert stun.xor_address("fe80::1%eth0", 9, TID) == stun.xor_address("fe80::1", 9, TID)


@given(st.ip_addresses(), st.integers(0, 0xFFFF), st.binary(min_size=12, max_size=12))
def test_xor_address_round_trips_any_address(address, port, tid):
    value = stun.xor_address(str(address), port, tid)
    assert len(value) == (8 if address.version == 4 else 20)
    ip, parsed_port = stun.parse_xor_address(value, tid)
    assert (ipaddress.ip_address(ip), parsed_port) == (address, port)


@pytest.mark.parametrize(
    "ip, port, message",
    [
        ("example.org", 1, "'example.org' is not an IPv4 or IPv6 address"),
        ("192.0.2", 1, "'192.0.2' is not an IPv4 or IPv6 address"),
        ("2001:db8::g", 1, "'2001:db8::g' is not an IPv4 or IPv6 address"),
        ("192.0.2.1\x00", 1, "'192.0.2.1\\x00' is not an IPv4 or IPv6 address"),
        ("192.0.2.1", 65536, "port 65536 is outside 0-65535"),
        ("::1", -1, "port -1 is outside 0-65535"),
    ],
)
def test_xor_address_errors(ip, port, message):
    with pytest.raises(StunError) as caught:
        stun.xor_address(ip, port, TID)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "value, message",
    [
        (b"\x00\x01\xa1", "XOR address value is 3 bytes, shorter than 4"),
        (
            b"\x00\x03\xa1\x47\x00\x00\x00\x00",
            "XOR address family 0x03 is neither IPv4 (0x01) nor IPv6 (0x02)",
        ),
        (b"\x00\x01\xa1\x47\xe1\x12\xa6", "XOR address of family IPv4 is 7 bytes, not 8"),
        (b"\x00\x02\xa1\x47" + bytes(4), "XOR address of family IPv6 is 8 bytes, not 20"),
    ],
)
def test_parse_xor_address_errors(value, message):
    with pytest.raises(StunError) as caught:
        stun.parse_xor_address(value, TID)
    assert str(caught.value) == message


def test_error_code_splits_class_and_number():
    assert stun.error_code(420, "Unknown Attribute") == b"\x00\x00\x04\x14Unknown Attribute"
    assert stun.error_code(401, "") == b"\x00\x00\x04\x01"


@pytest.mark.parametrize(
    "code, reason, message",
    [
        (299, "", "error code 299 is outside 300-699"),
        (700, "", "error code 700 is outside 300-699"),
        (400, "x" * 128, "reason phrase is 128 characters, not fewer than 128"),
    ],
)
def test_error_code_errors(code, reason, message):
    with pytest.raises(StunError) as caught:
        stun.error_code(code, reason)
    assert str(caught.value) == message


def test_unknown_attributes_value_and_padding():
    value = stun.unknown_attributes([0x7FFF, 0x0003, 0x0010])
    assert value == b"\x7f\xff\x00\x03\x00\x10"
    data = stun.build(stun.BINDING, stun.ERROR, TID, [(stun.UNKNOWN_ATTRIBUTES, value)])
    assert data[20:32] == b"\x00\x0a\x00\x06" + value + b"\x00\x00"
    assert stun.parse(data).get(stun.UNKNOWN_ATTRIBUTES) == value


def test_unknown_attributes_error():
    with pytest.raises(StunError) as caught:
        stun.unknown_attributes([0x10000])
    assert str(caught.value) == "attribute type 65536 does not fit in 16 bits"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method=0x1000), "method 0x1000 does not fit in 12 bits"),
        (
            dict(msg_class=0x0001),
            "message class 0x0001 is not one of 0x0000, 0x0010, 0x0100, 0x0110",
        ),
        (dict(transaction_id=bytes(16)), "transaction ID is 16 bytes, not 12"),
        (
            dict(attributes=[(stun.SOFTWARE, bytes(0x10000))]),
            "attribute 0x8022 value of 65536 bytes is too long",
        ),
    ],
)
def test_build_errors(kwargs, message):
    arguments = dict(method=stun.BINDING, msg_class=stun.REQUEST, transaction_id=TID)
    arguments.update(kwargs)
    with pytest.raises(StunError) as caught:
        stun.build(**arguments)
    assert str(caught.value) == message


# --- properties ---------------------------------------------------------------------------------


def checked(data: bytes) -> None:
    """Parse and run every check; only StunError may come out."""
    try:
        message = stun.parse(data)
    except StunError:
        return
    stun.fingerprint_ok(data, message)
    stun.integrity_ok(data, message, KEY)
    message.unknown_comprehension_required()
    if message.attributes:
        first_type, first_value = message.attributes[0]
        assert message.get(first_type) == first_value
    for attr_type, value in message.attributes:
        if attr_type == stun.XOR_MAPPED_ADDRESS:
            try:
                stun.parse_xor_address(value, message.transaction_id)
            except StunError:
                pass


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_stun_error(data):
    checked(data)


attribute_soup = st.lists(
    st.tuples(
        st.sampled_from(sorted(stun.KNOWN_ATTRIBUTES) + [0x0003, 0x7FFF, 0xC001]),
        st.binary(max_size=40),
    ),
    max_size=8,
)


@given(attribute_soup)
def test_well_framed_attribute_soup_raises_only_stun_error(attributes):
    body = b"".join(attribute(t, v) for t, v in attributes)
    checked(header(0x0001, body))


@given(
    st.integers(0, 0xFFF),
    st.sampled_from([stun.REQUEST, stun.INDICATION, stun.SUCCESS, stun.ERROR]),
    st.binary(min_size=12, max_size=12),
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF).filter(
                lambda t: t
                not in (stun.MESSAGE_INTEGRITY, stun.MESSAGE_INTEGRITY_SHA256, stun.FINGERPRINT)
            ),
            st.binary(max_size=64),
        ),
        max_size=6,
    ),
    st.booleans(),
    st.booleans(),
)
def test_build_then_parse_round_trips(method, msg_class, tid, attributes, sign, fingerprint):
    key = KEY if sign else None
    data = stun.build(
        method, msg_class, tid, attributes, integrity_key=key, fingerprint=fingerprint
    )
    message = stun.parse(data)
    assert (message.method, message.msg_class, message.transaction_id) == (method, msg_class, tid)
    assert message.attributes[: len(attributes)] == tuple(attributes)
    assert stun.integrity_ok(data, message, KEY) is sign
    assert stun.fingerprint_ok(data, message) is fingerprint
