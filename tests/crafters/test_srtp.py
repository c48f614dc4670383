from __future__ import annotations

import pytest
from scapy.packet import Raw

from toolkit.crafters.rtp import RtcpReceiverReport, Rtp
from toolkit.crafters.srtp import SRTP_PROFILES, SrtpContext, SrtpCraftError, split_keying_material


@pytest.mark.parametrize("name", sorted(SRTP_PROFILES))
def test_round_trip_per_profile(name):
    profile = SRTP_PROFILES[name]
    sender = SrtpContext.from_keys(name, bytes(range(profile.key_length)), bytes(range(profile.salt_length)))
    receiver = SrtpContext.from_keys(profile.number, sender.master_key, sender.master_salt)
    rtp = bytes(Rtp(sequence=1, ssrc=0xCAFE) / Raw(b"x" * 40))
    protected = sender.protect_rtp(rtp)
    assert protected != rtp and receiver.unprotect_rtp(protected) == rtp
    rtcp = bytes(RtcpReceiverReport(ssrc=0xCAFE))
    assert receiver.unprotect_rtcp(sender.protect_rtcp(rtcp)) == rtcp


def test_tampered_and_replayed_packets_fail():
    context = SrtpContext.from_keys("SRTP_AES128_CM_SHA1_80", bytes(16), bytes(14))
    protected = context.protect_rtp(bytes(Rtp(sequence=5) / Raw(b"payload")))
    tampered = protected[:-1] + bytes([protected[-1] ^ 1])
    with pytest.raises(SrtpCraftError, match="libsrtp could not unprotect SRTP"):
        context.unprotect_rtp(tampered)
    context.unprotect_rtp(protected)
    with pytest.raises(SrtpCraftError, match="replay"):
        context.unprotect_rtp(protected)


def test_key_sizes_and_profiles_are_checked():
    with pytest.raises(SrtpCraftError, match="needs a 16-byte master key and a 14-byte salt, got 16 and 12"):
        SrtpContext.from_keys("SRTP_AES128_CM_SHA1_80", bytes(16), bytes(12))
    with pytest.raises(SrtpCraftError, match="unknown SRTP profile 'SRTP_NULL'"):
        SrtpContext.from_keys("SRTP_NULL", bytes(16), bytes(14))


def test_split_keying_material_follows_rfc5764():
    material = bytes(range(60))  # AES-CM: 2 x 16-byte keys, then 2 x 14-byte salts
    client_key, client_salt, server_key, server_salt = split_keying_material("SRTP_AES128_CM_SHA1_80", material)
    assert (client_key, server_key) == (material[:16], material[16:32])
    assert (client_salt, server_salt) == (material[32:46], material[46:60])
    context = SrtpContext.from_key_and_salt("SRTP_AES128_CM_SHA1_80", client_key + client_salt)
    assert (context.master_key, context.master_salt) == (client_key, client_salt)
