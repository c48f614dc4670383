"""SRTP/SRTCP protect and unprotect through pylibsrtp, keyed the DTLS-SRTP way (RFC 5764).

    ctx = SrtpContext.from_keys("SRTP_AES128_CM_SHA1_80", master_key, master_salt)
    wire = ctx.protect_rtp(bytes(rtp_packet))
    plain = ctx.unprotect_rtp(wire)          # SrtpCraftError("...") when authentication fails

One context holds an outbound and an inbound libsrtp session with the same keys, so it can
both protect and unprotect (a tester's own packets, or one direction of a capture). libsrtp
keeps replay state: unprotecting the same packet twice fails, and `protect_rtp` refuses a
sequence number older than one it already protected — use a fresh context to re-send old ones.

`split_keying_material(profile, material)` turns the DTLS exporter output
("EXTRACTOR-dtls_srtp", 2 × (key + salt) bytes) into (client key, client salt, server key,
server salt) per RFC 5764 §4.2.

Profiles are named as in RFC 5764 / RFC 7714 (the names OpenSSL's use_srtp takes) or given by
their IANA DTLS-SRTP protection profile number (1, 2, 7, 8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pylibsrtp

from toolkit.crafters.common import CraftError


class SrtpCraftError(CraftError):
    """A key of the wrong size, an unknown profile, or a packet libsrtp refused."""


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    """A DTLS-SRTP protection profile: IANA number, libsrtp id, master key and salt sizes."""

    name: str
    number: int
    libsrtp_id: int
    key_length: int
    salt_length: int


SRTP_PROFILES = {
    profile.name: profile
    for profile in (
        SrtpProfile("SRTP_AES128_CM_SHA1_80", 0x0001, pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
        SrtpProfile("SRTP_AES128_CM_SHA1_32", 0x0002, pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 16, 14),
        SrtpProfile("SRTP_AEAD_AES_128_GCM", 0x0007, pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
        SrtpProfile("SRTP_AEAD_AES_256_GCM", 0x0008, pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32, 12),
    )
}


def srtp_profile(profile: str | int | SrtpProfile) -> SrtpProfile:
    """Look a profile up by name or IANA number."""
    if isinstance(profile, SrtpProfile):
        return profile
    for candidate in SRTP_PROFILES.values():
        if profile in (candidate.name, candidate.number):
            return candidate
    raise SrtpCraftError(f"unknown SRTP profile {profile!r}; known: {', '.join(SRTP_PROFILES)}")


def split_keying_material(profile: str | int | SrtpProfile, material: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(client_key, client_salt, server_key, server_salt) from DTLS-SRTP exported keying material."""
    p = srtp_profile(profile)
    key, salt = p.key_length, p.salt_length
    if len(material) != 2 * (key + salt):
        raise SrtpCraftError(f"{p.name} needs {2 * (key + salt)} bytes of keying material, got {len(material)}")
    return (
        material[:key],
        material[2 * key : 2 * key + salt],
        material[key : 2 * key],
        material[2 * key + salt :],
    )


class SrtpContext:
    """Protect/unprotect RTP and RTCP with one master key and salt."""

    def __init__(self, profile: SrtpProfile, master_key: bytes, master_salt: bytes) -> None:
        self.profile = profile
        self.master_key = master_key
        self.master_salt = master_salt
        self._outbound = self._session(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._inbound = self._session(pylibsrtp.Policy.SSRC_ANY_INBOUND)

    @classmethod
    def from_keys(cls, profile: str | int | SrtpProfile, master_key: bytes, master_salt: bytes) -> SrtpContext:
        p = srtp_profile(profile)
        if len(master_key) != p.key_length or len(master_salt) != p.salt_length:
            raise SrtpCraftError(
                f"{p.name} needs a {p.key_length}-byte master key and a {p.salt_length}-byte salt, "
                f"got {len(master_key)} and {len(master_salt)}"
            )
        return cls(p, master_key, master_salt)

    @classmethod
    def from_key_and_salt(cls, profile: str | int | SrtpProfile, key_and_salt: bytes) -> SrtpContext:
        """From master key || master salt in one string (as the probe peer's SrtpKeys holds them)."""
        p = srtp_profile(profile)
        return cls.from_keys(p, key_and_salt[: p.key_length], key_and_salt[p.key_length :])

    def _session(self, ssrc_type: int) -> pylibsrtp.Session:
        policy = pylibsrtp.Policy(
            key=self.master_key + self.master_salt, ssrc_type=ssrc_type, srtp_profile=self.profile.libsrtp_id
        )
        return pylibsrtp.Session(policy)

    def protect_rtp(self, packet: bytes) -> bytes:
        return self._call(self._outbound.protect, packet, "protect RTP")

    def unprotect_rtp(self, packet: bytes) -> bytes:
        return self._call(self._inbound.unprotect, packet, "unprotect SRTP")

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._call(self._outbound.protect_rtcp, packet, "protect RTCP")

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        return self._call(self._inbound.unprotect_rtcp, packet, "unprotect SRTCP")

    def _call(self, operation: Callable[[bytes], bytes], packet: bytes, what: str) -> bytes:
        try:
            return operation(bytes(packet))
        except pylibsrtp.Error as error:
            raise SrtpCraftError(f"libsrtp could not {what} ({len(packet)} bytes): {error}") from None
