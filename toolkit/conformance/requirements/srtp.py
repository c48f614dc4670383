"""Requirements the SRTP checks judge (see toolkit.conformance.requirements)."""

from toolkit.conformance.model import Level, Requirement

_AUTH_FAILURE = ('If the result is "AUTHENTICATION FAILURE" (see Section 4.2), the packet MUST be discarded from '
                 "further processing and the event SHOULD be logged.")

REQUIREMENTS = {
    "SRTP-01": Requirement(
        Level.MUST, "RFC 8827 §6.5",
        "The DTLS-SRTP protection profile SRTP_AES128_CM_HMAC_SHA1_80 MUST be supported for SRTP.",
        note="The check offers only this profile, so a target that cannot choose it cannot connect. "
             "SRTP_AEAD_AES_128_GCM, which no RFC makes mandatory, is SRTP-09's (POLICY).",
    ),
    "SRTP-02": Requirement(
        Level.MUST, "RFC 3711 §3.3",
        _AUTH_FAILURE,
        note="\"No state change\" — the genuine packet with the same sequence number still accepted — follows "
             "from §3.3.1 (the receiver updates ROC and s_l only \"after the packet has been processed and "
             "authenticated\") and §3.3.2 (the replay list is updated after authentication). For AEAD_AES_128_GCM "
             "(RFC 7714) a tag that does not verify is the same authentication failure.",
    ),
    "SRTP-03": Requirement(
        Level.MUST, "RFC 3711 §3.3.2",
        "The receiver checks the index of an incoming packet against the replay list and the window. Only packets "
        "with index ahead of the window, or, inside the window but not already received, SHALL be accepted.",
        note="RFC 3711 itself only RECOMMENDs replay protection (§3.3.2), but DTLS-SRTP fixes it on: \"For all "
             "other parameters (in particular, SRTP replay window size and FEC order), the default values are "
             "used.\" (RFC 5764 §4.1.2). The window may be larger than 64 (\"MAY be set to a higher value\"), with no "
             "maximum, so a never-seen packet 2000 behind the stream may legitimately be accepted: the check then "
             "requires only that its replay be dropped (it is inside that window and received).",
    ),
    "SRTP-04": Requirement(
        Level.MUST, "RFC 3711 §3.3.1",
        "After the packet has been processed and authenticated (when enabled for SRTP packets for the session), "
        "the receiver MUST use v to conditionally update its s_l and ROC variables as follows.",
        note="A receiver that never moves ROC past the wrap fails authentication on every later packet. The check "
             "sends 65533 … 2 in order. Accepting the packets reordered across the wrap (65535 after 0, 1 after 2) "
             "rests on the index estimate, which is a SHOULD: SRTP-10 judges it.",
    ),
    "SRTP-05": Requirement(
        Level.MUST, "RFC 3711 §3.3",
        _AUTH_FAILURE,
        note="A packet shorter than its header plus the profile's tag cannot carry a valid tag, so it is an "
             "authentication failure to be discarded; the whole packet must still be accepted afterwards. The "
             "CVE cited is a crash on such packets, which fails the same conversation.",
    ),
    "SRTP-06": Requirement(
        Level.MUST, "RFC 3711 §3.3",
        _AUTH_FAILURE,
        note="Plain RTP on a DTLS-SRTP session carries no valid tag; once use_srtp is negotiated \"the RTP or RTCP "
             "application data is protected solely using SRTP\" (RFC 5764 §4.1).",
    ),
    "SRTP-07": Requirement(
        Level.MUST, "RFC 3711 §3.3, §3.4",
        _AUTH_FAILURE,
        note="SRTCP \"uses the cryptographic context parameters and packet processing of SRTP by default\" "
             "(§3.4), and its E flag and index are inside the authenticated portion, so the packets with them "
             "altered are authentication failures and the replayed RR a replay (§3.3.2). The check cannot see "
             "whether the target used the valid SR/RR; it judges that media still flows after all five, i.e. "
             "that the forged ones were discarded rather than allowed to disturb the session. Its title promises "
             "more than it judges.",
    ),
    "SRTP-08": Requirement(
        Level.POLICY, "mediasoup#241, mediasoup#251; RFC 3550 Appendix A.2 (RTCP header validity checks)",
        "Drop RTCP whose counts and lengths disagree with the packet, even inside valid SRTCP, and keep serving.",
        prevents="a crash or a torn-down session (for every user of the server) triggered by one authenticated "
                 "peer sending malformed RTCP (the mediasoup issues are out-of-bounds reads of this kind)",
        note="RFC 3550's validity checks are advice in an appendix, with no keyword; SRTP authentication does not "
             "help here, since the sender holds the keys.",
    ),
    "SRTP-09": Requirement(
        Level.POLICY, "RFC 7714 (AES-GCM for SRTP); RFC 8827 §6.5 (AEAD favoured for the DTLS cipher suite)",
        "Support SRTP_AEAD_AES_128_GCM next to the mandatory SRTP_AES128_CM_HMAC_SHA1_80.",
        prevents="media authenticated by an 80-bit truncated HMAC-SHA1 tag when the client offers a 128-bit AEAD "
                 "tag, and the per-packet cost of separate encryption and authentication",
        note="RFC 8827 §6.5 mandates only SRTP_AES128_CM_HMAC_SHA1_80; no RFC requires the GCM profile.",
    ),
    "SRTP-10": Requirement(
        Level.SHOULD, "RFC 3711 §3.3.1",
        "On consecutive SRTP packets, the receiver SHOULD estimate the index as i = 2^16 * v + SEQ, where v is "
        "chosen from the set { ROC-1, ROC, ROC+1 } (modulo 2^32) such that i is closest (in modulo 2^48 sense) to "
        "the value 2^16 * ROC + s_l (see Appendix A for pseudocode).",
        note="§3.3.1 adds that \"out-of-order RTP packets with sequence numbers close to 2^16 or zero must be "
             "properly handled\", in lower case, and leaves the algorithm to the implementation.",
    ),
}
