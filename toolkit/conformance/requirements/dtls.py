"""Requirements the DTLS checks judge (see toolkit.conformance.requirements)."""

from toolkit.conformance.model import Level, Requirement

REQUIREMENTS = {
    "DTLS-01": Requirement(
        Level.MUST, "RFC 5764 §4.1.1",
        'If the server is willing to accept the use_srtp extension, it MUST respond with its own "use_srtp" '
        "extension in the ExtendedServerHello. The extension_data field MUST contain a UseSRTPData value with a "
        "single SRTPProtectionProfile value that the server has chosen for use with this connection.",
        note="The role half rests on RFC 5763 §5: \"Whichever party is active MUST initiate a DTLS handshake by "
             "sending a ClientHello over each flow (host/port quartet).\" An answer of a=setup:passive makes the "
             "probe the active side, so the target must wait for its ClientHello and answer as the DTLS server "
             "(a target answering a=setup:active SKIPs: the probe is a DTLS client only). A WebRTC media endpoint "
             "cannot decline use_srtp: \"All media channels MUST be secured via SRTP and SRTCP.\" (RFC 8827 "
             "§6.5).",
    ),
    "DTLS-02": Requirement(
        Level.MUST, "RFC 5763 §5",
        "The certificate presented during the DTLS handshake MUST match the fingerprint exchanged via the "
        "signaling path in the SDP. … If the fingerprint does not match the hashed certificate, then the "
        "endpoint MUST tear down the media session immediately.",
        note="Both directions are judged: the probe verifies the target's certificate against the answer "
             "(first sentence), and the target must refuse a client whose certificate does not match the offer's "
             "a=fingerprint and send it no media (second sentence). The target may refuse the handshake (RFC 8122 "
             "§5: \"the endpoint MUST NOT establish the TLS connection\") or complete it and tear the session down "
             "at once (RFC 5763 §5); the check accepts both and FAILs only a session that keeps working: media "
             "echoed, or any media sent to that client.",
    ),
    "DTLS-03": Requirement(
        Level.SHOULD, "RFC 5764 §4.1.1",
        "If there is no shared profile, the server SHOULD NOT return the use_srtp extension at which point the "
        "connection falls back to the negotiated DTLS cipher suite. If that is not acceptable, the server SHOULD "
        "return an appropriate DTLS alert.",
        note="What makes the check FAIL is the missing alert (or a handshake that completes): RFC 5764 makes both "
             "the refusal and the alert SHOULDs, and even allows the fallback to plain DTLS. For an audio-only "
             "offer the fallback is useless, so the alert SHOULD is the one that applies. The part that is a MUST "
             "— no media without a negotiated SRTP profile (RFC 8827 §6.5) — is DTLS-12's.",
    ),
    "DTLS-04": Requirement(
        Level.MUST, "RFC 6347 §4.2.4",
        "In addition, for at least twice the default MSL defined for [TCP], when in the FINISHED state, the node "
        "that transmits the last flight (the server in an ordinary handshake or the client in a resumed handshake) "
        "MUST respond to a retransmit of the peer's last flight with a retransmit of the last flight.",
        note="The rest of what a lost flight needs — resend on timer expiry or on a retransmitted flight from "
             "the peer — is §4.2.4's state machine, normative but written without a keyword; the 1 s initial "
             "timer is a SHOULD, so the check allows 40 s. Each flight is lost at most once each way.",
    ),
    "DTLS-05": Requirement(
        Level.MUST, "RFC 6347 §4.2.3",
        "When a DTLS implementation receives a handshake message fragment, it MUST buffer it until it has the "
        "entire handshake message. DTLS implementations MUST be able to handle overlapping fragment ranges.",
        note="The check also reverses the messages of a flight; queueing a message that arrives ahead of its turn "
             "is only a SHOULD (§4.2.2: it MAY be discarded), but a target that discards them still completes "
             "through the probe's retransmissions, one message further each time, well within the budget.",
    ),
    "DTLS-06": Requirement(
        Level.SHOULD, "RFC 6347 §4.1.2.7",
        "In general, invalid records SHOULD be silently discarded, thus preserving the association; however, an "
        "error MAY be logged for diagnostic purposes.",
        note="Out-of-order and wrong-epoch records are invalid records. §4.1.2.7 lets an implementation answer "
             "with a fatal alert instead (and lose the association), so keeping the session is a SHOULD, not a "
             "MUST; a crash (no handshake possible afterwards) fails the same way. RFC 9147 §4.5.2 repeats the "
             "SHOULD for DTLS 1.3. It meets another SHOULD head on: \"Implementations SHOULD detect when a peer "
             "is persistently sending bad messages and terminate the local connection state after such "
             "misbehavior is detected.\" (RFC 6347 §4.2.7), which a target may apply to the bound 5-tuple.",
    ),
    "DTLS-07": Requirement(
        Level.MUST, "RFC 6347 §4.2.8",
        "In cases where a server believes it has an existing association on a given host/port quartet and it "
        "receives an epoch=0 ClientHello, it SHOULD proceed with a new handshake but MUST NOT destroy the existing "
        "association until the client has demonstrated reachability either by completing a cookie exchange or by "
        "completing a complete handshake including delivering a verifiable Finished message.",
        note="The crafted ClientHello completes neither a cookie exchange nor a handshake, so only the MUST NOT is "
             "judged. RFC 9147 §5.11 has the same text.",
    ),
    "DTLS-08": Requirement(
        Level.MUST, "RFC 8827 §6.5",
        'Implementations MUST NOT implement DTLS renegotiation and MUST reject it with a "no_renegotiation" alert '
        "if offered.",
        note="The check FAILs when the renegotiation completes; it also passes a target that ignores the request "
             "without the alert (more lenient than the MUST). That the session survives the refusal is this "
             "project's policy, judged by DTLS-13. The catalog cites "
             "RFC 8842 §4 and RFC 5746; the sentence is in RFC 8827.",
    ),
    "DTLS-09": Requirement(
        Level.SHOULD, "RFC 6347 §4.1.2.7",
        "In general, invalid records SHOULD be silently discarded, thus preserving the association; however, an "
        "error MAY be logged for diagnostic purposes.",
        note="Records whose length runs past the datagram, empty or out-of-range fragments and unknown epochs are "
             "invalid records; a target may answer them with a fatal alert (§4.1.2.7), so the session surviving "
             "them is a SHOULD. The CVEs cited are crashes, which fail the same conversation (no handshake "
             "within 3 s afterwards); memory growth is not measured here (PERF-03 does). A target may also follow "
             "§4.2.7's SHOULD to terminate the state of a peer persistently sending bad messages (see DTLS-06).",
    ),
    "DTLS-10": Requirement(
        Level.MUST, "RFC 5246 §7.2.1",
        "The other party MUST respond with a close_notify alert of its own and close down the connection "
        "immediately, discarding any pending writes.",
        note="Judged: no SRTP from the target after close_notify, past a grace of 0.3 s for packets it sent "
             "before it read the close_notify (about one round trip, with room for a busy target). With use_srtp, "
             "RTP is the DTLS connection's "
             "application data, passed through the DTLS stack to SRTP (RFC 5764 §4.1), so closing the connection "
             "ends it. The answering close_notify is not required: it can be lost, and \"Alert messages are not "
             "retransmitted at all\" (RFC 6347 §4.2.7). That the closed session's STUN "
             "credentials are then refused is policy, judged by DTLS-14.",
    ),
    "DTLS-11": Requirement(
        Level.POLICY, "CVE-2022-29222 (pion/dtls); RFC 5246 §7.4.8",
        "Refuse a handshake whose client Certificate comes without a CertificateVerify, or with one whose "
        "signature does not verify.",
        prevents="impersonation of the offerer: anyone who has seen its certificate (sent in the clear in every "
                 "handshake, hashed in the SDP) completes a handshake as that client without its private key and "
                 "receives its media",
        note="No DTLS 1.2 sentence puts a keyword on the server's check: RFC 5246 §7.4.8 calls CertificateVerify "
             "\"explicit verification of a client certificate\", and only TLS 1.3 (RFC 8446 §4.4.3) says its "
             "receiver MUST verify it. Without the check, RFC 5763 §5's fingerprint match authenticates nobody, "
             "so the lead may prefer to grade it MUST on that ground.",
    ),
    "DTLS-12": Requirement(
        Level.MUST, "RFC 8827 §6.5",
        "Media traffic MUST NOT be sent over plain (unencrypted) RTP or RTCP; that is, implementations MUST NOT "
        "negotiate cipher suites with NULL encryption modes.",
        note="Without a negotiated SRTP profile there are no SRTP keys, so any RTP or RTCP the target sends is "
             "plain. The check offers only a profile the target cannot choose and judges the media whether the "
             "handshake then fails or falls back to plain DTLS (RFC 5764 §4.1.1 allows both; DTLS-03 judges the "
             "alert).",
    ),
    "DTLS-13": Requirement(
        Level.POLICY, "RFC 5246 §7.2.2 (no_renegotiation is always a warning); RFC 8827 §6.5",
        "Keep the session and its media after refusing a renegotiation.",
        prevents="a call dropped because the peer's DTLS stack asked to renegotiate (some clients rekey by "
                 "renegotiation), turning a refused feature into a hang-up",
        note="RFC 8827 §6.5 requires the refusal; no RFC sentence requires the association to survive it.",
    ),
    "DTLS-14": Requirement(
        Level.POLICY, "OWASP ASVS v4.0.3 V3.3.1 (session invalidated on logout)",
        "Once a session's DTLS connection is closed, stop answering STUN checks with its ICE credentials and free "
        "its state.",
        prevents="state left behind by closed sessions (memory, ports, credentials that still validate), which a "
                 "client can accumulate by opening and closing sessions",
        note="No RFC ties the ICE agent's state to the DTLS connection's closure; a server that keeps ICE alive "
             "for a new DTLS association breaks no requirement.",
    ),
}
