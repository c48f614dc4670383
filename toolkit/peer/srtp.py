"""The probe peer's SRTP/SRTCP (RFC 3711, RFC 7714), keyed by DTLS-SRTP (RFC 5764), on pylibsrtp.

Sans-IO and clock-free: one libsrtp session protects everything the peer sends (any SSRC),
another checks everything the target sends. What fails to unprotect is counted in the peer's
`drops` by reason, never raised: a target's bad packet is evidence, not an error of the peer's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pylibsrtp


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    """A DTLS-SRTP protection profile: its libsrtp id and master key/salt lengths."""

    libsrtp_id: int
    key_length: int
    salt_length: int

    @property
    def keying_material_length(self) -> int:
        """Bytes of DTLS exporter output both directions' keys take (RFC 5764 §4.2)."""
        return 2 * (self.key_length + self.salt_length)


SRTP_PROFILES = {
    "SRTP_AES128_CM_SHA1_80": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
    "SRTP_AES128_CM_SHA1_32": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 16, 14),
    "SRTP_AEAD_AES_128_GCM": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    "SRTP_AEAD_AES_256_GCM": SrtpProfile(pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32, 12),
}
"""The profiles the probe peer can offer, by their RFC 5764 §4.1.2 / RFC 7714 §14.2 names."""


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """Master key + salt per direction, for decrypting captures (docs/architecture.md principle 4)."""

    profile: str
    local: bytes
    remote: bytes

    @classmethod
    def from_keying_material(cls, profile: str, material: bytes, dtls_role: str) -> SrtpKeys:
        """Split the DTLS exporter output. RFC 5764 §4.2 layout: client key, server key, client
        salt, server salt; each side sends with its own half and receives with the other's."""
        key, salt = SRTP_PROFILES[profile].key_length, SRTP_PROFILES[profile].salt_length
        client = material[:key] + material[2 * key : 2 * key + salt]
        server = material[key : 2 * key] + material[2 * key + salt :]
        local, remote = (client, server) if dtls_role == "client" else (server, client)
        return cls(profile, local, remote)

    def outbound(self) -> pylibsrtp.Session:
        """A libsrtp session that protects what the peer sends, any SSRC of its own."""
        return self._session(self.local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)

    def inbound(self) -> pylibsrtp.Session:
        """A fresh libsrtp session (rollover counter 0) that unprotects what the target sends.

        The lean media paths (load, benchmarks) protect and unprotect with these two themselves."""
        return self._session(self.remote, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    def _session(self, key: bytes, ssrc_type: int) -> pylibsrtp.Session:
        return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=ssrc_type,
                                                  srtp_profile=SRTP_PROFILES[self.profile].libsrtp_id))


class SrtpSession:
    """Both directions of the peer's SRTP, from its SrtpKeys."""

    def __init__(self, keys: SrtpKeys, drops: Counter[str]) -> None:
        self.keys = keys
        self._drops = drops
        self._tx = keys.outbound()
        self._rx = keys.inbound()

    def protect_rtp(self, packet: bytes) -> bytes:
        return self._tx.protect(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._tx.protect_rtcp(packet)

    def unprotect(self, data: bytes) -> tuple[bool, bytes] | None:
        """(is_rtcp, the plain packet), or None when it fails (counted in drops). RTCP is told
        from RTP by the second byte, RTCP packet types 192–223 (RFC 5761 §4)."""
        if len(data) > 1 and 191 < data[1] < 224:
            try:
                return True, self._rx.unprotect_rtcp(data)
            except pylibsrtp.Error:
                self._drops["srtcp_unprotect_failed"] += 1
                return None
        try:
            return False, self._rx.unprotect(data)
        except pylibsrtp.Error:
            self._drops["srtp_unprotect_failed"] += 1
            return None
