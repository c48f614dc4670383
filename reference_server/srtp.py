"""SRTP/SRTCP protection for one DTLS-SRTP session, on libsrtp through pylibsrtp.

One libsrtp session protects everything this side sends (any SSRC), another checks everything
the peer sends, each keyed from its half of the DTLS exporter output (RFC 5764 §4.2).
libsrtp keeps the rollover counter and the replay window per SSRC.
"""

from __future__ import annotations

from collections.abc import Callable

import pylibsrtp

# DTLS-SRTP protection profile name (RFC 5764 §4.1.2, RFC 7714 §14.2) -> (master key length,
# master salt length) in bytes.
PROFILES: dict[str, tuple[int, int]] = {
    "SRTP_AES128_CM_SHA1_80": (16, 14),
    "SRTP_AEAD_AES_128_GCM": (16, 12),
}

_LIBSRTP_PROFILES = {
    "SRTP_AES128_CM_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "SRTP_AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
}

# Bytes that follow the protected payload: the RTP tag (RFC 3711 §4.2, RFC 7714 §7.2), and
# for RTCP the E-flag/index word plus the tag (RFC 3711 §3.4).
_RTP_TAG_LENGTHS = {"SRTP_AES128_CM_SHA1_80": 10, "SRTP_AEAD_AES_128_GCM": 16}
_RTP_HEADER_LENGTH = 12
_RTCP_HEADER_LENGTH = 8
_SRTCP_INDEX_LENGTH = 4

# libsrtp accepts a replay window of 64 up to (not including) 0x8000 packets.
_MIN_REPLAY_WINDOW = 64
_MAX_REPLAY_WINDOW = 0x7FFF

# libsrtp's status texts (as pylibsrtp reports them) restated for someone reading a drop log.
_REASONS = {
    "authentication failure": "authentication failure (wrong key, or the packet was altered)",
    "cipher failure": "decryption failure (wrong key, or the packet was altered)",
    "replay check failed (bad index)": "replayed packet (this index was already received)",
    "replay check failed (index too old)": "packet is older than the replay window",
    "packet index is too old to consider": "packet is older than the replay window",
    "unable to perform desired validation": (
        "the SRTCP E-bit marks the packet unencrypted, which this session does not accept"
    ),
    "error parsing data": "malformed packet",
    "no appropriate context found": "no stream context for this SSRC",
    "can't use key any more": "key usage limit reached; a new DTLS handshake is needed",
}


class SrtpError(Exception):
    """A packet that could not be protected or unprotected, or unusable keying material."""


class SrtpSession:
    """Both directions of one SRTP session; create it with `from_keying_material`."""

    def __init__(
        self, profile: str, outbound: pylibsrtp.Session, inbound: pylibsrtp.Session
    ) -> None:
        self.profile = profile
        self._outbound = outbound
        self._inbound = inbound
        self._rtp_tag_length = _RTP_TAG_LENGTHS[profile]

    @classmethod
    def from_keying_material(
        cls,
        profile: str,
        material: bytes,
        *,
        is_server: bool,
        replay_window: int = 1024,
    ) -> SrtpSession:
        """Split the DTLS exporter output and key both directions.

        RFC 5764 §4.2 layout: client key, server key, client salt, server salt. Each side
        sends with its own key and salt and receives with the other side's.
        """
        if profile not in PROFILES:
            known = ", ".join(PROFILES)
            raise SrtpError(f"unknown SRTP profile {profile!r} (expected one of {known})")
        key_length, salt_length = PROFILES[profile]
        expected = 2 * (key_length + salt_length)
        if len(material) != expected:
            raise SrtpError(
                f"keying material for {profile} must be {expected} bytes, got {len(material)}"
            )
        if not _MIN_REPLAY_WINDOW <= replay_window <= _MAX_REPLAY_WINDOW:
            raise SrtpError(
                f"replay window of {replay_window} packets is outside libsrtp's range "
                f"{_MIN_REPLAY_WINDOW}..{_MAX_REPLAY_WINDOW}"
            )
        client_key = material[:key_length]
        server_key = material[key_length : 2 * key_length]
        client_salt = material[2 * key_length : 2 * key_length + salt_length]
        server_salt = material[2 * key_length + salt_length :]
        client_master = client_key + client_salt
        server_master = server_key + server_salt
        local, remote = (server_master, client_master) if is_server else (client_master, server_master)
        libsrtp_profile = _LIBSRTP_PROFILES[profile]
        return cls(
            profile,
            outbound=_session(local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, libsrtp_profile, replay_window),
            inbound=_session(remote, pylibsrtp.Policy.SSRC_ANY_INBOUND, libsrtp_profile, replay_window),
        )

    def protect_rtp(self, packet: bytes) -> bytes:
        """Encrypt and authenticate an RTP packet for sending."""
        if len(packet) < _RTP_HEADER_LENGTH:
            raise SrtpError(
                f"protect RTP failed: packet of {len(packet)} bytes is shorter than "
                f"the {_RTP_HEADER_LENGTH}-byte RTP header"
            )
        try:  # inline rather than through _call: this is the hot path
            return self._outbound.protect(packet)
        except (pylibsrtp.Error, ValueError) as error:
            raise _srtp_error("protect RTP", error, packet) from None

    def unprotect_rtp(self, packet: bytes) -> bytes:
        """Authenticate, replay-check and decrypt a received SRTP packet."""
        minimum = _RTP_HEADER_LENGTH + self._rtp_tag_length
        if len(packet) < minimum:
            raise SrtpError(
                f"unprotect RTP failed: packet of {len(packet)} bytes is shorter than the "
                f"{_RTP_HEADER_LENGTH}-byte RTP header plus the {self._rtp_tag_length}-byte tag"
            )
        try:
            return self._inbound.unprotect(packet)
        except (pylibsrtp.Error, ValueError) as error:
            raise _srtp_error("unprotect RTP", error, packet) from None

    def protect_rtcp(self, packet: bytes) -> bytes:
        """Encrypt and authenticate an RTCP compound packet for sending."""
        if len(packet) < _RTCP_HEADER_LENGTH:
            raise SrtpError(
                f"protect RTCP failed: packet of {len(packet)} bytes is shorter than "
                f"the {_RTCP_HEADER_LENGTH}-byte RTCP header"
            )
        return _call("protect RTCP", self._outbound.protect_rtcp, packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        """Authenticate, replay-check and decrypt a received SRTCP packet."""
        minimum = _RTCP_HEADER_LENGTH + _SRTCP_INDEX_LENGTH + self._rtp_tag_length
        if len(packet) < minimum:
            raise SrtpError(
                f"unprotect RTCP failed: packet of {len(packet)} bytes is shorter than the "
                f"{_RTCP_HEADER_LENGTH}-byte RTCP header plus the {_SRTCP_INDEX_LENGTH}-byte "
                f"index and the {self._rtp_tag_length}-byte tag"
            )
        return _call("unprotect RTCP", self._inbound.unprotect_rtcp, packet)


def _session(master: bytes, ssrc_type: int, profile: int, replay_window: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(key=master, ssrc_type=ssrc_type, srtp_profile=profile)
    policy.window_size = replay_window
    return pylibsrtp.Session(policy=policy)


def _call(operation: str, function: Callable[[bytes], bytes], packet: bytes) -> bytes:
    try:
        return function(packet)
    except (pylibsrtp.Error, ValueError) as error:
        raise _srtp_error(operation, error, packet) from None


def _srtp_error(operation: str, error: Exception, packet: bytes) -> SrtpError:
    if isinstance(error, ValueError):
        # pylibsrtp's only ValueError: the packet plus its trailer overflows its 1500-byte buffer.
        return SrtpError(f"{operation} failed: packet of {len(packet)} bytes is too long for libsrtp's buffer")
    reason = str(error)
    return SrtpError(f"{operation} failed: {_REASONS.get(reason, reason)}")
