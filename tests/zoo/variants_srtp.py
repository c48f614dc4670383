"""SRTP variants: protection that lets forged, replayed, runt or plain packets through, or breaks on them."""

from __future__ import annotations

from reference_server.core import ServerCore
from reference_server.dtls import DtlsContext
from reference_server.events import Address
from reference_server.srtp import SrtpError
from tests.zoo import variant
from tests.zoo.seams import SrtpSessionCore, ZooSrtpSession, crash


@variant("no-gcm-profile", checks=("SRTP-09",),
         why="offers only AES_CM_128_HMAC_SHA1_80 in use_srtp: a client that supports only AEAD_AES_128_GCM "
             "cannot connect")
class NoGcmProfile(ServerCore):
    def __init__(self, config, certificate, **kwargs) -> None:
        super().__init__(config, certificate, **kwargs)
        self._dtls_context = DtlsContext(certificate, keylog=kwargs.get("keylog"),
                                         srtp_profiles=("SRTP_AES128_CM_SHA1_80",))


@variant("no-mandatory-srtp-profile", checks=("SRTP-01",),
         why="offers only AEAD_AES_128_GCM in use_srtp, not the mandatory AES_CM_128_HMAC_SHA1_80: a client that "
             "offers only the mandatory profile cannot connect")
class NoMandatoryProfile(ServerCore):
    def __init__(self, config, certificate, **kwargs) -> None:
        super().__init__(config, certificate, **kwargs)
        self._dtls_context = DtlsContext(certificate, keylog=kwargs.get("keylog"),
                                         srtp_profiles=("SRTP_AEAD_AES_128_GCM",))


class TagNotChecked(ZooSrtpSession):
    def unprotect_rtp(self, packet: bytes) -> bytes:
        try:
            return super().unprotect_rtp(packet)
        except SrtpError as error:
            if "authentication failure" not in str(error):
                raise
            return self.decrypt_unauthenticated(packet)


@variant("srtp-tag-not-checked", checks=("SRTP-02",),
         why="decrypts SRTP whose authentication tag does not verify instead of dropping it")
class SrtpTagNotChecked(SrtpSessionCore):
    srtp_session_class = TagNotChecked


class FailureBurnsIndex(ZooSrtpSession):
    """Marks a packet's index as received before authenticating it (RFC 3711 §3.3 step 5 says after)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._burned: set[bytes] = set()

    def unprotect_rtp(self, packet: bytes) -> bytes:
        index = packet[8:12] + packet[2:4]  # SSRC and sequence number
        if index in self._burned:
            raise SrtpError("unprotect RTP failed: replayed packet (this index was already received)")
        try:
            return super().unprotect_rtp(packet)
        except SrtpError:
            self._burned.add(index)
            raise


@variant("auth-failure-burns-index", checks=("SRTP-02",),
         why="a forged packet's index enters the replay window before its tag is checked, so the genuine "
             "packet with that sequence number is then dropped as a replay")
class AuthFailureBurnsIndex(SrtpSessionCore):
    srtp_session_class = FailureBurnsIndex


class ReplayNotChecked(ZooSrtpSession):
    def unprotect_rtp(self, packet: bytes) -> bytes:
        try:
            return super().unprotect_rtp(packet)
        except SrtpError as error:
            if "replay" not in str(error):
                raise
            return self.unprotect_statelessly(packet)


@variant("replay-not-checked", checks=("SRTP-03",),
         why="SRTP packets the replay window rejects (repeats, or older than the window) are accepted anyway")
class SrtpReplayNotChecked(SrtpSessionCore):
    srtp_session_class = ReplayNotChecked


class OldPacketsUnchecked(ZooSrtpSession):
    """A 64-packet replay window, but a packet behind it is accepted instead of dropped."""

    @classmethod
    def from_keying_material(cls, profile: str, material: bytes, *, is_server: bool,
                             replay_window: int = 64) -> ZooSrtpSession:
        return super().from_keying_material(profile, material, is_server=is_server, replay_window=64)

    def unprotect_rtp(self, packet: bytes) -> bytes:
        try:
            return super().unprotect_rtp(packet)
        except SrtpError as error:
            if "older than the replay window" not in str(error):
                raise
            return self.unprotect_statelessly(packet)


@variant("packets-behind-window-accepted", checks=("SRTP-03",),
         why="checks replays only inside its 64-packet window: a packet older than the window is accepted, as "
             "often as it is replayed")
class PacketsBehindWindowAccepted(SrtpSessionCore):
    srtp_session_class = OldPacketsUnchecked


class StatelessReceiver(ZooSrtpSession):
    def unprotect_rtp(self, packet: bytes) -> bytes:
        return self.unprotect_statelessly(packet)


@variant("rollover-counter-stuck", checks=("SRTP-04",),
         why="keeps no per-stream state: the rollover counter stays 0, so every packet after the sequence "
             "number wraps fails authentication")
class RolloverCounterStuck(SrtpSessionCore):
    srtp_session_class = StatelessReceiver


class NaiveRolloverGuess(ZooSrtpSession):
    """Guesses the rollover counter from the last sequence number alone: any decrease is a wrap,
    so a packet from before the wrap that arrives after it (65535 after 0) gets the new ROC and
    fails authentication. RFC 3711 §3.3.1 picks ROC-1, ROC or ROC+1, whichever is closest."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._last: dict[bytes, tuple[int, int]] = {}  # SSRC -> (ROC, highest sequence number)

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


@variant("rollover-guess-ignores-reordering", checks=("SRTP-10",),
         why="takes any decrease of the sequence number for a wrap, so a packet from before the wrap that arrives "
             "after it gets the wrong rollover counter and is dropped")
class RolloverGuessIgnoresReordering(SrtpSessionCore):
    srtp_session_class = NaiveRolloverGuess


class CrashesOnRunts(ZooSrtpSession):
    def unprotect_rtp(self, packet: bytes) -> bytes:
        if len(packet) < 12 + self.tag_length:
            crash(f"read the tag of a {len(packet)}-byte SRTP packet past its end")
        return super().unprotect_rtp(packet)


@variant("crash-on-runt-srtp", checks=("SRTP-05",),
         why="reads the tag of an SRTP packet shorter than header + tag past its end and crashes (CVE-2013-2139 "
             "class)")
class CrashOnRuntSrtp(SrtpSessionCore):
    srtp_session_class = CrashesOnRunts


class PlainFallback(ZooSrtpSession):
    def unprotect_rtp(self, packet: bytes) -> bytes:
        try:
            return super().unprotect_rtp(packet)
        except SrtpError:
            return packet


@variant("plain-rtp-fallback", checks=("SRTP-06",),
         why="a packet that fails SRTP is taken as plain RTP (a fallback for clients without SRTP)")
class PlainRtpFallback(SrtpSessionCore):
    srtp_session_class = PlainFallback


@variant("srtcp-failure-ends-session", checks=("SRTP-07",),
         why="an SRTCP packet that fails authentication (a bad index or E flag) ends the session")
class SrtcpFailureEndsSession(ServerCore):
    def _drop(self, reason: str, address: Address | None, detail: str = "") -> None:
        super()._drop(reason, address, detail)
        session = self.sessions.by_address.get(address) if reason == "srtcp_unprotect_failed" else None
        if session is not None:
            self._free(session, "srtcp_failed")


@variant("crash-on-malformed-rtcp", checks=("SRTP-08",),
         why="crashes on decrypted RTCP whose counts and lengths disagree (mediasoup#241 class)")
class CrashOnMalformedRtcp(ServerCore):
    def _drop(self, reason: str, address: Address | None, detail: str = "") -> None:
        if reason == "rtcp_malformed":
            crash(f"parsed malformed RTCP: {detail}")
        super()._drop(reason, address, detail)
