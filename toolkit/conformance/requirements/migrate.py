"""Requirements the MIGRATE checks judge (see toolkit.conformance.requirements)."""

from toolkit.conformance.model import Level, Requirement

_SELECTED_PAIRS_ONLY = ("Once selected pairs have been produced for a data stream, an agent MUST send data on those "
                        "pairs only.")

REQUIREMENTS = {
    "MIGRATE-01": Requirement(
        Level.POLICY, "draft-thatcher-ice-renomination; RFC 8445 §8.1.1 (nomination)",
        "After a NAT rebinding, an authenticated USE-CANDIDATE check from the new 5-tuple moves media there at "
        "once, without packet loss and without a new DTLS handshake.",
        prevents="a call that dies after a NAT rebinding or Wi-Fi/cellular switch: media keeps going to the old, "
                 "dead 5-tuple until consent expires",
        note="Same roaming rule as ICE-05. RFC 8445 §8.1.1 forbids the controlling agent a second nomination within "
             "an ICE session ('Doing so requires an ICE restart.') and lets a lite agent rank several nominations by "
             "arbitrary priorities (§7.3.2), so a server that keeps its first selected pair until an ICE restart is "
             "compliant and WARNs here.",
    ),
    "MIGRATE-02": Requirement(
        Level.POLICY, "CVE-2017-14099, CVE-2017-14114 (RTP Bleed)",
        "Media from a 5-tuple no authenticated check has bound is dropped: it is neither decrypted into a session "
        "nor allowed to move where the session's media goes.",
        prevents="RTP Bleed: an off-path attacker who sprays RTP/SRTP at the media port gets a session's media "
                 "redirected to itself, or injects into it",
        note="Accepting SRTP that authenticates from an address that sent no check is not forbidden by any RFC (full "
             "ICE agents often accept data from any address), so this is POLICY: such agents WARN here by "
             "default. Sending anything to the unbound address is the MUST violation, judged by MIGRATE-08.",
    ),
    "MIGRATE-03": Requirement(
        Level.MUST, "RFC 8445 §12.1.1, §12.1",
        "A lite implementation MUST NOT send data until it has a valid list that contains a candidate pair for each "
        "component of that data stream. (§12.1.1) " + _SELECTED_PAIRS_ONLY + " (§12.1)",
        note="A DTLS answer to a ClientHello from a 5-tuple that never passed a check is data sent on a pair that is "
             "neither valid nor selected (for a full agent, §12.1 only lets it send 'on any valid pair before "
             "selected pairs have been produced'). The attacks: CVE-2023-49786 (Asterisk), CVE-2023-51443 "
             "(FreeSWITCH). To a target that is the DTLS client, the stranger sends a HelloVerifyRequest and a "
             "fatal alert instead: answering them with DTLS is the same MUST violation. The real handshake "
             "completing despite the race is resilience, judged by MIGRATE-10 (POLICY).",
    ),
    "MIGRATE-04": Requirement(
        Level.MUST, "RFC 8489 §9.1.3",
        "If the message is a request, the server MUST reject the request with an error response. This response "
        "MUST use an error code of 401 (Unauthenticated).",
        note="The MESSAGE-INTEGRITY mismatch case of §9.1.3; RFC 8445 §7.3: 'The agent MUST use the short-term "
             "credential mechanism (i.e., the MESSAGE-INTEGRITY attribute) to authenticate the request'. A rejected "
             "request changes no state, so binding the attacker's address breaks the same MUST. Silence is also "
             "accepted (hardening, as STUN-07).",
    ),
    "MIGRATE-05": Requirement(
        Level.POLICY, "RFC 8445 §19.2 (attacks on connectivity checks, security considerations); RFC 8489 §9.1 "
                      "(short-term credentials limit replay only by their lifetime)",
        "A replayed nominating check from another address may move media there, but the next genuine nominating "
        "check from the peer takes it back, and the session survives.",
        prevents="hijacking or denial of a session by replaying one captured, authenticated check from an attacker's "
                 "address (ICE has no replay protection)",
        note="No RFC says what a server does with a replayed check; recovering on the next genuine nomination is "
             "the ICE-05 roaming rule (POLICY). The outcome of the replay itself is only reported.",
    ),
    "MIGRATE-06": Requirement(
        Level.POLICY, "CWE-770 (allocation of resources without limits or throttling); RFC 8445 §19.5.1 ('agents "
                      "MAY limit the number of candidates they will accept')",
        "The 5-tuples bound to one session are capped, and when the cap is reached the oldest unselected tuple is "
        "evicted first.",
        prevents="memory and state-table exhaustion by one authenticated peer binding unbounded 5-tuples, and the "
                 "eviction of a live tuple in favour of stale ones",
        note="RFC 8445 sets no limit on peer-reflexive candidates or bound addresses.",
    ),
    "MIGRATE-07": Requirement(
        Level.POLICY, "RFC 3711 §3.2.3 (context identifier); CWE-653 (improper isolation or compartmentalization)",
        "Media is assigned to a session by the 5-tuple its checks bound, never by SSRC: two sessions sharing an "
        "SSRC each get exactly their own media.",
        prevents="a session that picks (or copies from the wire) another session's SSRC getting that session's "
                 "media dropped or routed to itself",
        note="RFC 3711 §3.2.3 identifies a context by the triplet <SSRC, destination network address, destination "
             "transport port number>, which is the same for every session on a single-port server: no RFC MUST "
             "tells sessions apart there, so routing by SSRC (the failure this check targets) is not an RFC "
             "violation. A session's media sent to another session's 5-tuple is: MIGRATE-09 judges it.",
    ),
    "MIGRATE-08": Requirement(
        Level.MUST, "RFC 8445 §12.1",
        _SELECTED_PAIRS_ONLY,
        note="A 5-tuple that never sent an authenticated check is on no valid, let alone selected, pair. The check "
             "sends RTP and the session's own SRTP from such an address, then genuine media from the session's own "
             "address: no datagram at all may come back to the unbound address (RTP Bleed's redirection).",
    ),
    "MIGRATE-09": Requirement(
        Level.MUST, "RFC 8445 §12.1",
        _SELECTED_PAIRS_ONLY,
        note="Each session's selected pair is its own 5-tuple; media of one session sent to another's is data off "
             "the selected pair.",
    ),
    "MIGRATE-10": Requirement(
        Level.POLICY, "CVE-2023-49786, CVE-2023-51443 (DTLS ClientHello race)",
        "DTLS from an unbound 5-tuple before or during the real handshake (ClientHellos to a DTLS server; a "
        "HelloVerifyRequest and a fatal alert to a DTLS client) leaves the real handshake able to complete.",
        prevents="denial of a session's DTLS setup by racing ClientHellos from a spoofed or attacker address",
    ),
}
