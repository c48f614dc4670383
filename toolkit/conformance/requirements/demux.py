"""Requirements the DEMUX checks judge (see toolkit.conformance.requirements)."""

from toolkit.conformance.model import Level, Requirement

REQUIREMENTS = {
    "DEMUX-01": Requirement(
        Level.MUST, "RFC 8445 §11, RFC 7983 §7",
        "Though Binding Indications are used for keepalives, an agent MUST be prepared to receive a connectivity "
        "check as well. If a connectivity check is received, a response is generated as discussed in [RFC5389], but "
        "there is no impact on ICE processing otherwise. (RFC 8445 §11)",
        note="What FAILs is a Binding request left unanswered once DTLS and media run on the port (or no DTLS/SRTP "
             "at all). The first-byte ranges (0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP) are RFC 7983 §7's demultiplexing "
             "procedure, stated without a keyword; RFC 8445 §8.1.2 says the same for full agents: 'an agent MUST "
             "continue to respond to any Binding request it might still receive for the nominated pair'.",
    ),
    "DEMUX-02": Requirement(
        Level.MUST, "RFC 7983 §7",
        "If the value does not match any known range then the packet MUST be dropped and an alert MAY be logged.",
        note="Quoted from draft-ietf-avtcore-rfc5764-mux-fixes, published as RFC 7983 (check the published "
             "punctuation). 'Known range' is relative to the protocols the receiver runs: RFC 7983 assigns 16-19 to "
             "ZRTP and 64-79 to TURN channels, and RFC 9443 gives QUIC first bytes (as far as I could verify, 64-127 "
             "and 192-255). For a WebRTC server that runs none of them on the port these datagrams match nothing it "
             "knows and MUST be dropped; the session surviving is the same rule (dropped, not acted on).",
    ),
    "DEMUX-03": Requirement(
        Level.MUST, "RFC 7983 §7, RFC 8489 §6.3",
        "If the value does not match any known range then the packet MUST be dropped and an alert MAY be logged. "
        "(RFC 7983 §7) If any errors are detected, the message is silently discarded. (RFC 8489 §6.3)",
        note="An empty datagram has no first byte to match, and the 1/19/65507-byte STUN-range datagrams fail "
             "RFC 8489 §6.3's 'message length is sensible' check. What FAILs most is a crash or a dead session. The "
             "DTLS-range datagrams (0x16...) fall under RFC 6347 §4.1.2.7, a SHOULD that also lets a DTLS stack "
             "answer with an alert: DEMUX-06 judges them.",
    ),
    "DEMUX-04": Requirement(
        Level.MUST, "RFC 5761 §4",
        "payload type values in the range 64-95 MUST NOT be used",
        note="RFC 5761 §4 keeps RTP payload types clear of 64-95 so that a receiver can take second bytes 192-223 "
             "(marker bit + payload type 64-95) as RTCP packet types and everything else as RTP. The MUST "
             "binds senders; the receiver rule it enables is what the check judges: RTP with the marker set (second "
             "byte 239) is media and must be echoed, and an SRTCP receiver report (second byte 201) must not "
             "disturb the session. The sentence is quoted from "
             "its RFC 5761 §4 context as two implementations cite it; the surrounding demultiplexing text was not "
             "verified word for word. RTP with payload type 72, a packet no compliant sender emits, is DEMUX-07's "
             "(POLICY).",
    ),
    "DEMUX-05": Requirement(
        Level.MUST, "RFC 8445 §7.3",
        "An agent MUST NOT utilize the ALTERNATE-SERVER mechanism and MUST NOT support the backwards-compatibility "
        "mechanisms defined in RFC 5389 (for working with the protocol in RFC 3489).",
        note="A request without the magic cookie is an RFC 3489 request; serving it (a Binding success with "
             "MAPPED-ADDRESS) is the RFC 5389 backwards-compatibility mechanism RFC 8445 forbids. An error response "
             "serves nothing, so it passes here, although RFC 8489 §6.3 (without a keyword) would discard a message "
             "whose 'Magic Cookie field' lacks 'the correct value' silently.",
    ),
    "DEMUX-06": Requirement(
        Level.SHOULD, "RFC 6347 §4.1.2.7",
        "In general, invalid records SHOULD be silently discarded, thus preserving the association; however, an "
        "error MAY be logged for diagnostic purposes.",
        note="RFC 6347 (and RFC 9147 §4.5.2 for DTLS 1.3) lets an implementation 'choose to generate an alert "
             "instead', so a DTLS alert answering these datagrams is not a MUST violation. The MUST that RFC 7983 "
             "§7 puts on unknown first bytes does not apply: 20-63 is a known range.",
    ),
    "DEMUX-07": Requirement(
        Level.POLICY, "RFC 5761 §4 (senders never use payload types 64-95)",
        "A datagram whose second byte is 192-223 is handled as RTCP only: it is never tried as RTP, whatever it "
        "decrypts to.",
        prevents="classification by trial decryption: double cryptographic work per datagram for a sender of junk "
                 "(CPU exhaustion), and RTCP/RTP confusion an attacker can steer",
        note="RFC 5761 forbids payload types 64-95 to senders but says nothing normative about what a receiver does "
             "with one, so echoing it as RTP is not an RFC violation.",
    ),
}
