from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from aioice import stun as aioice_stun

from tests.support import rfc5769
from tests.support.rfc5769 import unhex
from toolkit.crafters.common import CraftError
from toolkit.crafters.stun import (
    BINDING_REQUEST,
    BINDING_SUCCESS,
    StunAttribute,
    StunFingerprint,
    StunIceControlled,
    StunMessage,
    StunMessageIntegrity,
    StunMessageIntegritySha256,
    StunPriority,
    StunSoftware,
    StunUnknownAttributes,
    StunUsername,
    StunXorMappedAddress,
    error_code,
    ice_check,
)


def test_rfc5769_request_reproduced_byte_for_byte():
    message = StunMessage(
        type=BINDING_REQUEST,
        transaction_id=rfc5769.TRANSACTION_ID,
        key=rfc5769.SHORT_TERM_PASSWORD,
        attributes=[
            StunSoftware(text=b"STUN test client"),
            StunPriority(priority=0x6E0001FF),
            StunIceControlled(tie_breaker=0x932FF9B151263B36),
            StunUsername(username=b"evtj:h6vY", padding=b"   "),
            StunMessageIntegrity(),
            StunFingerprint(),
        ],
    )
    assert bytes(message) == rfc5769.REQUEST


@pytest.mark.parametrize("vector, address", rfc5769.RESPONSES.values(), ids=rfc5769.RESPONSES)
def test_rfc5769_responses_reproduced_byte_for_byte(vector, address):
    message = StunMessage(
        type=BINDING_SUCCESS,
        transaction_id=rfc5769.TRANSACTION_ID,
        key=rfc5769.SHORT_TERM_PASSWORD,
        attributes=[
            StunSoftware(text=b"test vector", padding=b" "),
            StunXorMappedAddress(address=address, port=rfc5769.MAPPED_PORT),
            StunMessageIntegrity(),
            StunFingerprint(),
        ],
    )
    assert bytes(message) == vector


def test_rfc5769_request_dissects_and_rebuilds():
    message = StunMessage(rfc5769.REQUEST)
    assert [type(a) for a in message.attributes] == [
        StunSoftware, StunPriority, StunIceControlled, StunUsername, StunMessageIntegrity, StunFingerprint
    ]
    assert message.attributes[3].username == b"evtj:h6vY"
    assert message.attributes[3].padding == b"   "
    assert bytes(message) == rfc5769.REQUEST


def test_ice_check_verifies_in_aioice():
    data = bytes(ice_check("srv:cli", "s3cret-password", tie_breaker=42, priority=1234))
    parsed = aioice_stun.parse_message(data)  # checks FINGERPRINT
    assert parsed.check_message_integrity(b"s3cret-password")
    assert not parsed.check_message_integrity(b"another-password")
    assert parsed.attributes["USERNAME"] == "srv:cli"
    assert parsed.attributes["PRIORITY"] == 1234
    assert parsed.attributes["ICE-CONTROLLING"] == 42
    assert "USE-CANDIDATE" in parsed.attributes


def test_ice_check_as_controlled_agent_has_no_use_candidate():
    parsed = aioice_stun.parse_message(bytes(ice_check("a:b", "pw", controlling=False, tie_breaker=7)))
    assert parsed.attributes["ICE-CONTROLLED"] == 7
    assert "USE-CANDIDATE" not in parsed.attributes and "ICE-CONTROLLING" not in parsed.attributes


def test_explicit_wrong_integrity_is_written_and_fails_in_aioice():
    message = ice_check("a:b", "pw")
    message.attributes[-2].hmac = bytes(20)
    data = bytes(message)
    assert data[-28:-8] == bytes(20)
    parsed = aioice_stun.parse_message(data)  # the fingerprint is still computed, over the wrong MI
    assert not parsed.check_message_integrity(b"pw")


def test_explicit_wrong_fingerprint_fails_in_aioice():
    message = ice_check("a:b", "pw")
    message.attributes[-1].crc = 0xDEADBEEF
    data = bytes(message)
    assert data[-4:] == unhex("de ad be ef")
    with pytest.raises(ValueError, match="fingerprint does not match"):
        aioice_stun.parse_message(data)


def test_explicit_message_length_is_written_as_given():
    message = ice_check("a:b", "pw", transaction_id=bytes(12), tie_breaker=1)
    message.length = 3
    wrong = bytes(message)
    assert wrong[2:4] == b"\x00\x03"
    with pytest.raises(ValueError, match="length does not match"):
        aioice_stun.parse_message(wrong)


def test_integrity_is_computed_as_if_the_length_were_right():
    """An explicit wrong header length leaves MI/FP computed per RFC 8489 over the adjusted length."""
    right = ice_check("a:b", "pw", transaction_id=bytes(12), tie_breaker=1)
    wrong = right.copy()
    wrong.length = 0
    assert bytes(wrong)[4:] == bytes(right)[4:]


def test_message_integrity_sha256_full_and_truncated():
    for length, expected_size in ((None, 32), (16, 16)):
        mi256 = StunMessageIntegritySha256() if length is None else StunMessageIntegritySha256(length=length)
        message = StunMessage(transaction_id=bytes(12), key=b"pw", attributes=[StunUsername(username=b"a:b"), mi256])
        data = bytes(message)
        offset = 20 + 8  # header + USERNAME(3 bytes + 1 padding)
        assert struct.unpack("!HH", data[offset : offset + 4]) == (0x001C, expected_size)
        covered = data[:2] + struct.pack("!H", len(data) - 20) + data[4:offset]
        assert data[offset + 4 :] == hmac.new(b"pw", covered, hashlib.sha256).digest()[:expected_size]


def test_missing_key_is_a_craft_error():
    message = StunMessage(attributes=[StunMessageIntegrity()])
    with pytest.raises(CraftError, match="MESSAGE-INTEGRITY is to be computed but the message has no key"):
        bytes(message)


def test_order_duplicates_lengths_and_padding_are_kept():
    message = StunMessage(
        transaction_id=bytes(12),
        attributes=[
            StunUsername(username=b"one"),
            StunUsername(username=b"two", length=9, padding=b"\xff"),
            StunAttribute(type=0xC0FE, value=b"raw"),
            StunPriority(priority=1),
        ],
    )
    data = bytes(message)
    assert data[20:] == unhex(
        """
        00 06 00 03 6f 6e 65 00
        00 06 00 09 74 77 6f ff
        c0 fe 00 03 72 61 77 00
        00 24 00 04 00 00 00 01
        """
    )
    assert data[2:4] == struct.pack("!H", 32)


def test_error_code_and_unknown_attributes():
    message = StunMessage(
        type=0x0111,
        transaction_id=bytes(12),
        attributes=[error_code(487, "Role Conflict"), StunUnknownAttributes(types=[0x0031, 0xC001, 0x0032])],
    )
    data = bytes(message)
    parsed = aioice_stun.parse_message(data)
    assert parsed.attributes["ERROR-CODE"] == (487, "Role Conflict")
    assert data[-12:] == unhex("00 0a 00 06 00 31 c0 01 00 32 00 00")
    assert StunMessage(data).attributes[0].code == 487


def test_attributes_inserted_in_place_get_the_transaction_id():
    message = StunMessage(type=BINDING_SUCCESS, transaction_id=rfc5769.TRANSACTION_ID)
    message.attributes.append(StunXorMappedAddress(address=rfc5769.RESPONSES["ipv6"][1], port=rfc5769.MAPPED_PORT))
    assert bytes(message)[20:] == rfc5769.IPV6_RESPONSE[36:60]


def test_xor_mapped_address_ipv4_parses_in_aioice():
    message = StunMessage(
        type=BINDING_SUCCESS, transaction_id=bytes(range(12)),
        attributes=[StunXorMappedAddress(address="203.0.113.9", port=40000)],
    )
    assert aioice_stun.parse_message(bytes(message)).attributes["XOR-MAPPED-ADDRESS"] == ("203.0.113.9", 40000)


def test_transaction_id_is_drawn_once():
    message = StunMessage()
    assert len(message.transaction_id) == 12
    assert bytes(message) == bytes(message) == bytes(message.copy())
