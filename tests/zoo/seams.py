"""How variants reach into the reference server without adding code paths to it.

Swapping parts per session (a DTLS endpoint, an SRTP session), moving a session's phase where
the reference server's transition table never goes, rebuilding a STUN message the way a buggy
parser would have read it, and the crash of a server written in C.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import pylibsrtp

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.dtls import DtlsEndpoint
from reference_server.sessions import Session, SessionPhase
from reference_server.srtp import PROFILES, SrtpError, SrtpSession

CRASH_EXIT = 70
"""Exit status of a modelled crash (EX_SOFTWARE)."""

DTLS_SRTP_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2
RTP_TAG_LENGTHS = {"SRTP_AES128_CM_SHA1_80": 10, "SRTP_AEAD_AES_128_GCM": 16}
LIBSRTP_PROFILES = {
    "SRTP_AES128_CM_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "SRTP_AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
}


def crash(what: str) -> NoReturn:
    """A crash of a server written in C (a segfault): the process ends at once, mid-datagram."""
    print(f"zoo: the variant crashed: {what}", file=sys.stderr, flush=True)
    os._exit(CRASH_EXIT)


# -- DTLS -------------------------------------------------------------------------------------


def fresh_dtls_endpoint(core: ServerCore, session: Session, endpoint_class: type[DtlsEndpoint] = DtlsEndpoint
                        ) -> DtlsEndpoint:
    """A new endpoint for `session`: same context, offer fingerprints, role and MTU."""
    old = session.dtls
    return endpoint_class(core._dtls_context, old._peer_check.fingerprints, is_server=old.is_server, mtu=old.mtu)


def back_before_dtls(session: Session) -> None:
    """Put a session back in the phase it had before its DTLS began (SELECTED, or CHECKED while no
    pair is nominated): the step back of a server that starts DTLS over, which the reference
    server's transition table does not have. Media waits for the next handshake again."""
    session._phase = SessionPhase.SELECTED if session.selected is not None else SessionPhase.CHECKED


class DtlsEndpointCore(ServerCore):
    """Every session gets a `dtls_endpoint_class` endpoint instead of the reference one."""

    dtls_endpoint_class: type[DtlsEndpoint] = DtlsEndpoint

    def create_session(self, offer_sdp: str, now: float) -> tuple[str, str]:
        session_id, answer = super().create_session(offer_sdp, now)
        session = self.sessions.by_id[session_id]
        session.dtls = fresh_dtls_endpoint(self, session, self.dtls_endpoint_class)
        return session_id, answer


# -- SRTP -------------------------------------------------------------------------------------


class ZooSrtpSession(SrtpSession):
    """An SrtpSession that also keeps the client's master key and salt, so a variant can decrypt
    the way a buggy receiver would (without the replay window, without the tag)."""

    client_master: bytes = b""

    @classmethod
    def from_keying_material(cls, profile: str, material: bytes, *, is_server: bool,
                             replay_window: int = 1024) -> ZooSrtpSession:
        session = super().from_keying_material(profile, material, is_server=is_server, replay_window=replay_window)
        key_length, salt_length = PROFILES[profile]
        session.client_master = (material[:key_length]
                                 + material[2 * key_length: 2 * key_length + salt_length])
        return session

    @property
    def tag_length(self) -> int:
        return RTP_TAG_LENGTHS[self.profile]

    def unprotect_statelessly(self, packet: bytes) -> bytes:
        """Authenticate and decrypt with a fresh receive context: no replay window, rollover counter 0."""
        policy = pylibsrtp.Policy(key=self.client_master, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                  srtp_profile=LIBSRTP_PROFILES[self.profile])
        try:
            return pylibsrtp.Session(policy).unprotect(packet)
        except pylibsrtp.Error as error:
            raise SrtpError(f"unprotect RTP failed: {error}") from None

    def decrypt_unauthenticated(self, packet: bytes) -> bytes:
        """The plain RTP packet, its tag unchecked (rollover counter 0).

        Both profiles encrypt with a counter-mode keystream, so protecting the ciphertext again
        with the sender's key and the same index XORs the keystream back out; the tag that
        protection appends is cut off."""
        body = packet[: len(packet) - self.tag_length]
        policy = pylibsrtp.Policy(key=self.client_master, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                  srtp_profile=LIBSRTP_PROFILES[self.profile])
        return pylibsrtp.Session(policy).protect(body)[: len(body)]


class SrtpSessionCore(ServerCore):
    """Every session's SRTP is a `srtp_session_class` (keyed from the same DTLS handshake)."""

    srtp_session_class: type[ZooSrtpSession] = ZooSrtpSession

    def _after_dtls_input(self, session: Session, now: float) -> None:
        before = session.srtp
        super()._after_dtls_input(session, now)
        if session.srtp is not None and session.srtp is not before:
            profile = session.srtp.profile
            key_length, salt_length = PROFILES[profile]
            material = session.dtls._connection.export_keying_material(
                DTLS_SRTP_EXPORTER_LABEL, 2 * (key_length + salt_length))
            session.srtp = self.srtp_session_class.from_keying_material(profile, material,
                                                                        is_server=session.dtls.is_server)


# -- STUN -------------------------------------------------------------------------------------


def parse_stun(data: bytes) -> stun.StunMessage | None:
    try:
        return stun.parse(data)
    except stun.StunError:
        return None


def addressed_session(core: ServerCore, msg: stun.StunMessage) -> Session | None:
    """The session whose ufrag the request's USERNAME names, if any."""
    username = msg.get(stun.USERNAME)
    if username is None:
        return None
    return core.sessions.by_ufrag.get(username.split(b":", 1)[0].decode("utf-8", "replace"))


def rebuilt(msg: stun.StunMessage, key: bytes, *, msg_class: int | None = None, without: frozenset[int] = frozenset()
            ) -> bytes:
    """`msg` as a sender with `key` would have built it: the attributes that count (those before
    MESSAGE-INTEGRITY), minus `without`, then a valid MESSAGE-INTEGRITY and FINGERPRINT."""
    attributes = []
    for attr_type, value in msg.attributes:
        if attr_type in (stun.MESSAGE_INTEGRITY, stun.MESSAGE_INTEGRITY_SHA256, stun.FINGERPRINT):
            break
        if attr_type not in without:
            attributes.append((attr_type, value))
    return stun.build(msg.method, msg.msg_class if msg_class is None else msg_class, msg.transaction_id,
                      attributes, integrity_key=key)
