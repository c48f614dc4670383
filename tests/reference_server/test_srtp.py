from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reference_server.srtp import PROFILES, SrtpError, SrtpSession

SSRC = 0xCAFEBABE
PAYLOAD = bytes(range(160))

# RFC 3711 Appendix B.3: master key and salt, and the session keys they derive (kdr 0, index 0).
B3_MASTER_KEY = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
B3_MASTER_SALT = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
B3_CIPHER_KEY = bytes.fromhex("C61E7A93744F39EE10734AFE3FF7A087")
B3_CIPHER_SALT = bytes.fromhex("30CBBC08863D8C85D49DB34A9AE1")
B3_AUTH_KEY = bytes.fromhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")


def rtp(seq: int, payload: bytes = PAYLOAD, ssrc: int = SSRC) -> bytes:
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, ssrc) + payload


def rtcp_receiver_report(ssrc: int = SSRC) -> bytes:
    # RR, no report blocks (RFC 3550 §6.4.2): V=2, RC=0, PT=201, length 1 word after the header.
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def material(profile: str, seed: int = 1) -> bytes:
    key_length, salt_length = PROFILES[profile]
    return bytes((seed + i) % 256 for i in range(2 * (key_length + salt_length)))


def pair(profile: str, replay_window: int = 1024) -> tuple[SrtpSession, SrtpSession]:
    keying = material(profile)
    client = SrtpSession.from_keying_material(
        profile, keying, is_server=False, replay_window=replay_window
    )
    server = SrtpSession.from_keying_material(
        profile, keying, is_server=True, replay_window=replay_window
    )
    return client, server


def client_material_with_master(profile: str, master_key: bytes, master_salt: bytes) -> bytes:
    """RFC 5764 §4.2 layout with the client's write key and salt set to the given ones."""
    key_length, salt_length = PROFILES[profile]
    return master_key + b"\x5a" * key_length + master_salt + b"\xa5" * salt_length


def aes_cm_prf(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1/§4.3.3 key derivation with kdr 0; a short salt is zero-padded on the right."""
    x = int.from_bytes(master_salt.ljust(14, b"\0"), "big") ^ (label << 48)
    return aes_ctr(master_key, x << 16, bytes(length))


def aes_ctr(key: bytes, counter: int, data: bytes) -> bytes:
    return Cipher(algorithms.AES(key), modes.CTR(counter.to_bytes(16, "big"))).encryptor().update(data)


def error_of(operation: Callable[[bytes], bytes], packet: bytes) -> str:
    with pytest.raises(SrtpError) as caught:
        operation(packet)
    return str(caught.value)


AUTH_FAILURE = "authentication failure (wrong key, or the packet was altered)"


PROFILE_NAMES = sorted(PROFILES)


def test_profile_lengths_match_rfc_5764_and_7714() -> None:
    assert PROFILES == {"SRTP_AES128_CM_SHA1_80": (16, 14), "SRTP_AEAD_AES_128_GCM": (16, 12)}


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_rtp_and_rtcp_round_trip_both_ways(profile: str) -> None:
    client, server = pair(profile)
    for seq in range(5):
        packet = rtp(seq)
        protected = client.protect_rtp(packet)
        assert protected != packet
        assert server.unprotect_rtp(protected) == packet
        answer = rtp(seq, payload=b"answer" * 10, ssrc=0x1234)
        assert client.unprotect_rtp(server.protect_rtp(answer)) == answer
    report = rtcp_receiver_report()
    assert server.unprotect_rtcp(client.protect_rtcp(report)) == report
    assert client.unprotect_rtcp(server.protect_rtcp(report)) == report


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_a_side_cannot_read_its_own_packets(profile: str) -> None:
    client, _ = pair(profile)
    with pytest.raises(SrtpError, match="^unprotect RTP failed: authentication failure"):
        client.unprotect_rtp(client.protect_rtp(rtp(1)))


def test_aes_cm_packet_matches_rfc_3711_b3_session_keys() -> None:
    """libsrtp derives the B.3 session keys from the B.3 master key; the packet is checked by hand:
    AES-CM with IV = salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16 (RFC 3711 §4.1.1), HMAC-SHA1-80 over the
    authenticated portion and the ROC (§4.2)."""
    profile = "SRTP_AES128_CM_SHA1_80"
    keying = client_material_with_master(profile, B3_MASTER_KEY, B3_MASTER_SALT)
    client = SrtpSession.from_keying_material(profile, keying, is_server=False)
    seq = 0x1234
    packet = rtp(seq)
    protected = client.protect_rtp(packet)

    index = seq  # ROC 0
    iv = (int.from_bytes(B3_CIPHER_SALT, "big") << 16) ^ (SSRC << 64) ^ (index << 16)
    header = packet[:12]
    ciphertext = aes_ctr(B3_CIPHER_KEY, iv, PAYLOAD)
    tag = hmac.new(B3_AUTH_KEY, header + ciphertext + (0).to_bytes(4, "big"), hashlib.sha1).digest()
    assert protected == header + ciphertext + tag[:10]


def test_test_side_prf_reproduces_rfc_3711_b3() -> None:
    assert aes_cm_prf(B3_MASTER_KEY, B3_MASTER_SALT, 0, 16) == B3_CIPHER_KEY
    assert aes_cm_prf(B3_MASTER_KEY, B3_MASTER_SALT, 1, 20) == B3_AUTH_KEY
    assert aes_cm_prf(B3_MASTER_KEY, B3_MASTER_SALT, 2, 14) == B3_CIPHER_SALT


def test_aead_gcm_packet_matches_rfc_7714_construction() -> None:
    """RFC 7714 §8.1: IV = (0x0000 ‖ SSRC ‖ ROC ‖ SEQ) ⊕ session salt, AAD = the RTP header,
    16-byte tag. Session keys come from the RFC 3711 PRF (checked against B.3 above) with the
    96-bit master salt zero-padded on the right, as libsrtp and so the browsers do."""
    profile = "SRTP_AEAD_AES_128_GCM"
    master_salt = B3_MASTER_SALT[:12]
    keying = client_material_with_master(profile, B3_MASTER_KEY, master_salt)
    client = SrtpSession.from_keying_material(profile, keying, is_server=False)
    seq = 0x1234
    packet = rtp(seq)
    protected = client.protect_rtp(packet)

    session_key = aes_cm_prf(B3_MASTER_KEY, master_salt, 0, 16)
    session_salt = aes_cm_prf(B3_MASTER_KEY, master_salt, 2, 12)
    counter = b"\0\0" + struct.pack("!IIH", SSRC, 0, seq)
    nonce = bytes(a ^ b for a, b in zip(counter, session_salt))
    header = packet[:12]
    assert protected == header + AESGCM(session_key).encrypt(nonce, PAYLOAD, header)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@pytest.mark.parametrize("position", ["header", "payload", "tag"])
def test_flipped_bit_is_rejected_and_leaves_no_trace(profile: str, position: str) -> None:
    client, server = pair(profile)
    protected = client.protect_rtp(rtp(7))
    offset = {"header": 3, "payload": 20, "tag": len(protected) - 1}[position]
    tampered = bytearray(protected)
    tampered[offset] ^= 0x01
    assert error_of(server.unprotect_rtp, bytes(tampered)) == f"unprotect RTP failed: {AUTH_FAILURE}"
    # The forgery did not consume the index: the genuine packet is still accepted.
    assert server.unprotect_rtp(protected) == rtp(7)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_replayed_packet_is_rejected(profile: str) -> None:
    client, server = pair(profile)
    protected = client.protect_rtp(rtp(100))
    server.unprotect_rtp(protected)
    assert error_of(server.unprotect_rtp, protected) == (
        "unprotect RTP failed: replayed packet (this index was already received)"
    )


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_packet_older_than_the_replay_window_is_rejected(profile: str) -> None:
    client, server = pair(profile, replay_window=64)
    protected = [client.protect_rtp(rtp(seq)) for seq in range(100)]
    server.unprotect_rtp(protected[99])
    assert server.unprotect_rtp(protected[40]) == rtp(40)  # 59 behind: inside the window
    # 69 behind:
    assert error_of(server.unprotect_rtp, protected[30]) == (
        "unprotect RTP failed: packet is older than the replay window"
    )


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_sequence_wrap_is_accepted_out_of_order(profile: str) -> None:
    client, server = pair(profile)
    sequence = [65533, 65534, 65535, 0, 1, 2]
    protected = {seq: client.protect_rtp(rtp(seq)) for seq in sequence}
    for seq in [65533, 0, 65535, 2, 65534, 1]:
        assert server.unprotect_rtp(protected[seq]) == rtp(seq)
    # After the wrap the rollover counter is 1 on both sides.
    assert server.unprotect_rtp(client.protect_rtp(rtp(3))) == rtp(3)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_runt_packets_are_rejected(profile: str) -> None:
    client, server = pair(profile)
    tag = 10 if profile == "SRTP_AES128_CM_SHA1_80" else 16
    protected = client.protect_rtp(rtp(1, payload=b""))
    for length in (0, 1, 11, 12, 12 + tag - 1):
        with pytest.raises(SrtpError) as caught:
            server.unprotect_rtp(protected[:length])
        assert str(caught.value) == (
            f"unprotect RTP failed: packet of {length} bytes is shorter than the "
            f"12-byte RTP header plus the {tag}-byte tag"
        )
    runt_rtcp = client.protect_rtcp(rtcp_receiver_report())[:11]
    assert error_of(server.unprotect_rtcp, runt_rtcp) == (
        "unprotect RTCP failed: packet of 11 bytes is shorter than the 8-byte RTCP header plus "
        f"the 4-byte index and the {tag}-byte tag"
    )
    assert error_of(client.protect_rtp, rtp(2)[:11]) == (
        "protect RTP failed: packet of 11 bytes is shorter than the 12-byte RTP header"
    )
    assert error_of(client.protect_rtcp, bytes(7)) == (
        "protect RTCP failed: packet of 7 bytes is shorter than the 8-byte RTCP header"
    )


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_plain_rtp_is_rejected(profile: str) -> None:
    _, server = pair(profile)
    with pytest.raises(SrtpError, match="^unprotect RTP failed: authentication failure"):
        server.unprotect_rtp(rtp(1))
    with pytest.raises(SrtpError, match="^unprotect RTCP failed: "):
        server.unprotect_rtcp(rtcp_receiver_report() + bytes(20))


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_srtcp_with_flipped_e_bit_or_index_is_rejected(profile: str) -> None:
    client, server = pair(profile)
    protected = client.protect_rtcp(rtcp_receiver_report())
    tag = 10 if profile == "SRTP_AES128_CM_SHA1_80" else 16
    index_at = len(protected) - tag - 4
    # libsrtp refuses a clear E-bit up front for AES-CM; for GCM the bit is authenticated data.
    e_bit_reason = {
        "SRTP_AES128_CM_SHA1_80": (
            "the SRTCP E-bit marks the packet unencrypted, which this session does not accept"
        ),
        "SRTP_AEAD_AES_128_GCM": AUTH_FAILURE,
    }[profile]
    cases = (
        (index_at, 0x80, e_bit_reason),
        (index_at + 3, 0x01, AUTH_FAILURE),
    )
    for offset, mask, reason in cases:
        tampered = bytearray(protected)
        tampered[offset] ^= mask
        assert error_of(server.unprotect_rtcp, bytes(tampered)) == f"unprotect RTCP failed: {reason}"
    assert server.unprotect_rtcp(protected) == rtcp_receiver_report()


def test_oversized_packet_is_an_srtp_error() -> None:
    client, _ = pair("SRTP_AES128_CM_SHA1_80")
    assert error_of(client.protect_rtp, rtp(1, payload=bytes(1488))) == (
        "protect RTP failed: packet of 1500 bytes is too long for libsrtp's buffer"
    )


def test_bad_parameters_are_rejected() -> None:
    def create(profile: str, length: int, replay_window: int = 1024) -> str:
        return error_of(
            lambda keying: SrtpSession.from_keying_material(
                profile, keying, is_server=True, replay_window=replay_window
            ),
            bytes(length),
        )

    assert create("SRTP_NULL_SHA1_80", 60) == (
        "unknown SRTP profile 'SRTP_NULL_SHA1_80' "
        "(expected one of SRTP_AES128_CM_SHA1_80, SRTP_AEAD_AES_128_GCM)"
    )
    assert create("SRTP_AEAD_AES_128_GCM", 60) == (
        "keying material for SRTP_AEAD_AES_128_GCM must be 56 bytes, got 60"
    )
    assert create("SRTP_AES128_CM_SHA1_80", 60, replay_window=32) == (
        "replay window of 32 packets is outside libsrtp's range 64..32767"
    )
