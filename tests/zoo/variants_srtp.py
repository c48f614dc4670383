"""SRTP variants: protection that lets forged, replayed, runt or plain packets through, or breaks on them."""

from __future__ import annotations

from reference_server.srtp import SrtpError
from tests.zoo import variant
from tests.zoo.seams import (
    ZooSrtpSession,
    accepts_failed,
    after_drop,
    crash,
    dtls_core,
    ends_session_on_drop,
    per_instance,
)

NoGcmProfile = variant(
    "no-gcm-profile", checks=("SRTP-09",),
    why="offers only AES_CM_128_HMAC_SHA1_80 in use_srtp: a client that supports only AEAD_AES_128_GCM cannot connect",
)(dtls_core(srtp_profiles=("SRTP_AES128_CM_SHA1_80",)))

NoMandatoryProfile = variant(
    "no-mandatory-srtp-profile", checks=("SRTP-01",),
    why="offers only AEAD_AES_128_GCM in use_srtp, not the mandatory AES_CM_128_HMAC_SHA1_80: a client that offers "
        "only the mandatory profile cannot connect",
)(dtls_core(srtp_profiles=("SRTP_AEAD_AES_128_GCM",)))

TagNotChecked = variant(
    "srtp-tag-not-checked", checks=("SRTP-02",),
    why="decrypts SRTP whose authentication tag does not verify instead of dropping it",
)(accepts_failed("authentication failure", ZooSrtpSession.decrypt_unauthenticated))


@variant("auth-failure-burns-index", checks=("SRTP-02",),
         why="a forged packet's index enters the replay window before its tag is checked, so the genuine "
             "packet with that sequence number is then dropped as a replay")
class FailureBurnsIndex(ZooSrtpSession):
    """Marks a packet's index as received before authenticating it (RFC 3711 §3.3 step 5 says after)."""

    _burned: set[bytes] = per_instance(set)

    def unprotect_rtp(self, packet: bytes) -> bytes:
        index = packet[8:12] + packet[2:4]  # SSRC and sequence number
        if index in self._burned:
            raise SrtpError("unprotect RTP failed: replayed packet (this index was already received)")
        try:
            return super().unprotect_rtp(packet)
        except SrtpError:
            self._burned.add(index)
            raise


ReplayNotChecked = variant(
    "replay-not-checked", checks=("SRTP-03",),
    why="SRTP packets the replay window rejects (repeats, or older than the window) are accepted anyway",
)(accepts_failed("replay", ZooSrtpSession.unprotect_statelessly))

PacketsBehindWindowAccepted = variant(
    "packets-behind-window-accepted", checks=("SRTP-03",),
    why="checks replays only inside its 64-packet window: a packet older than the window is accepted, as often as "
        "it is replayed",
)(accepts_failed("older than the replay window", ZooSrtpSession.unprotect_statelessly, replay_window=64))


@variant("rollover-counter-stuck", checks=("SRTP-04",),
         why="keeps no per-stream state: the rollover counter stays 0, so every packet after the sequence "
             "number wraps fails authentication")
class StatelessReceiver(ZooSrtpSession):
    def unprotect_rtp(self, packet: bytes) -> bytes:
        return self.unprotect_statelessly(packet)


@variant("rollover-guess-ignores-reordering", checks=("SRTP-10",),
         why="takes any decrease of the sequence number for a wrap, so a packet from before the wrap that arrives "
             "after it gets the wrong rollover counter and is dropped")
class NaiveRolloverGuess(ZooSrtpSession):
    """Guesses the rollover counter from the last sequence number alone: any decrease is a wrap,
    so a packet from before the wrap that arrives after it (65535 after 0) gets the new ROC and
    fails authentication. RFC 3711 §3.3.1 picks ROC-1, ROC or ROC+1, whichever is closest."""

    _last: dict[bytes, tuple[int, int]] = per_instance(dict)  # SSRC -> (ROC, highest sequence number)

    def unprotect_rtp(self, packet: bytes) -> bytes:
        ssrc, sequence = packet[8:12], int.from_bytes(packet[2:4], "big")
        roc, last = self._last.get(ssrc, (0, sequence))
        naive = roc + 1 if sequence < last else roc
        closest = roc + 1 if last - sequence > 0x8000 else roc - 1 if sequence - last > 0x8000 else roc
        if naive != closest:
            raise SrtpError("unprotect RTP failed: authentication failure (rollover counter guessed wrong)")
        plain = super().unprotect_rtp(packet)
        if ssrc not in self._last or (closest, sequence) > (roc, last):
            self._last[ssrc] = (closest, sequence)
        return plain


@variant("crash-on-runt-srtp", checks=("SRTP-05",),
         why="reads the tag of an SRTP packet shorter than header + tag past its end and crashes (CVE-2013-2139 "
             "class)")
class CrashesOnRunts(ZooSrtpSession):
    def unprotect_rtp(self, packet: bytes) -> bytes:
        if len(packet) < 12 + self.tag_length:
            crash(f"read the tag of a {len(packet)}-byte SRTP packet past its end")
        return super().unprotect_rtp(packet)


PlainRtpFallback = variant(
    "plain-rtp-fallback", checks=("SRTP-06",),
    why="a packet that fails SRTP is taken as plain RTP (a fallback for clients without SRTP)",
)(accepts_failed("", lambda _session, packet: packet))

SrtcpFailureEndsSession = variant(
    "srtcp-failure-ends-session", checks=("SRTP-07",),
    why="an SRTCP packet that fails authentication (a bad index or E flag) ends the session",
)(ends_session_on_drop("srtcp_unprotect_failed", "srtcp_failed"))


@variant("crash-on-malformed-rtcp", checks=("SRTP-08",),
         why="crashes on decrypted RTCP whose counts and lengths disagree (mediasoup#241 class)")
@after_drop
def crash_on_malformed_rtcp(_core, reason: str, _address, detail: object) -> None:
    if reason == "rtcp_malformed":
        crash(f"parsed malformed RTCP: {detail}")
