"""Requirements the DC checks judge (see toolkit.conformance.requirements)."""

from toolkit.conformance.model import Level, Requirement

REQUIREMENTS = {
    "DC-01": Requirement(
        Level.MUST, "RFC 8831 §6.6",
        "When receiving an SCTP user message with one of these PPIDs, the receiver MUST ignore the SCTP user "
        "message and process it as an empty message.",
        note="\"These PPIDs\" are WebRTC String Empty (56) and WebRTC Binary Empty (57). The check judges only "
             "them: each is sent between two non-empty messages, on an ordered and an unordered channel, and must "
             "come back as an empty message of its type. It needs the association (RFC 8261; no association is a "
             "FAIL, as in DC-04), then open channels and the harness's echo convention: a channel that is not "
             "acknowledged, or whose non-empty messages do not come back, SKIPs it, since DC-05 judges those "
             "(as POLICY: DCEP's ACK carries no keyword).",
    ),
    "DC-02": Requirement(
        Level.POLICY, "RFC 8832 §4, §6 (DCEP's DATA_CHANNEL_ACK, specified without an RFC 2119 keyword)",
        "Acknowledge every valid DATA_CHANNEL_OPEN — empty, UTF-8 and long labels and protocols, every channel "
        "type — with a DATA_CHANNEL_ACK on its stream, and carry the channel's messages.",
        prevents="channels that never open for a client, or that the target silently refuses because of their "
                 "label, protocol or reliability type",
        note="DCEP's defining exchange (§4: \"The peer responds with a DATA_CHANNEL_ACK message on its "
             "corresponding outgoing stream.\") carries no MUST, and the opener may send before the ACK arrives, "
             "so a missing ACK degrades rather than breaks a channel: POLICY until a keyword sentence is found (DC-05 "
             "judges the same for the two plain channels every client opens). "
             "All the labels, protocols (lengths count bytes, §5.1) and channel types sent are valid.",
    ),
    "DC-03": Requirement(
        Level.POLICY, "CVE-2020-6514 (usrsctp, as used by WebRTC); RFC 9260 §3.2 (unrecognized chunk types)",
        "Survive malformed DCEP messages and malformed SCTP chunks: keep the association and its open channels "
        "working, or abort only that association, and keep serving new sessions.",
        prevents="remote memory corruption or a crash of the SCTP stack by one peer (CVE-2020-6514 is such a bug "
                 "in usrsctp), ending every session on the server",
        note="RFC 9260 and RFC 8832 say how each malformed item should be handled, but the conversation judges "
             "none of them one by one (RFC 8832 §6 tells the opener to choose an unused stream but gives no "
             "receiver rule for a DATA_CHANNEL_OPEN on a stream in use, so the channel that receives one is not "
             "judged afterwards; the open channel judged is another): it accepts an ABORT (RFC 9260 allows one "
             "for a protocol violation) and "
             "only requires that the target neither hangs nor crashes. Its liveness probe, a HEARTBEAT after each "
             "packet, rests on a SHOULD: \"The receiver of the HEARTBEAT chunk SHOULD immediately respond with a "
             "HEARTBEAT ACK chunk\" (RFC 9260 §8.3).",
    ),
    "DC-04": Requirement(
        Level.MUST, "RFC 9260 §6.9",
        "An endpoint MAY support fragmentation when sending DATA chunks, but it MUST support reassembly when "
        "receiving DATA chunks.",
        note="A 100 KiB message needs reassembly on the way in and fragmentation on the way back (the echo). "
             "RFC 8841 §6.1 lets an endpoint announce any a=max-message-size (64K when absent); the check FAILs a "
             "target whose limit is under its 100 KiB message, which is a conforming choice (gate bug: it should "
             "SKIP, or size the messages to the limit).",
    ),
    "DC-05": Requirement(
        Level.POLICY, "RFC 8831 §6 (ordered and unordered channels over SCTP); RFC 8832 §4",
        "Open ordered and unordered channels on the client's DATA_CHANNEL_OPEN and carry text and binary messages "
        "both ways, in order on an ordered channel.",
        prevents="a data channel that the answer accepts but that carries nothing, or reorders an ordered "
                 "channel's messages",
        note="What fails here is DCEP's ACK (no keyword, see DC-02), the channel carrying its messages or the "
             "harness's echo convention, not a quoted MUST. A negotiated channel that never opens is judged here "
             "(DC-01 SKIPs it); an SCTP association that never comes up FAILs DC-01 and DC-04 as well.",
    ),
}
