"""Requirements the ICE checks judge (see toolkit.conformance.requirements)."""

from toolkit.conformance.model import Level, Requirement

_UNGUESSABLE = ("The values MUST be unguessable, with at least 128 bits of random number generator output used to "
                "generate the password, and at least 24 bits of output to generate the username fragment.")

REQUIREMENTS = {
    "ICE-01": Requirement(
        Level.MUST, "RFC 8445 §5.3",
        _UNGUESSABLE,
        note="The 4- and 22-character minimums are RFC 8839 §5.4's consequence of that MUST ('This means that the "
             "ice-ufrag attribute will be at least 4 characters long, and the ice-pwd at least 22 characters long'); "
             "host candidates only is RFC 8445 §5.2 ('Lite implementations only utilize host candidates.', no "
             "keyword). Beware: the ufrag-randomness heuristic can FAIL a compliant 4-character ufrag (see the "
             "report's gate bugs).",
    ),
    "ICE-02": Requirement(
        Level.POLICY, "RFC 8445 §2.5 and §7 (definition of a lite agent); RFC 8445 §19.5.1 (STUN amplification "
                      "attack, security considerations)",
        "An agent that declares a=ice-lite sends no connectivity checks of its own: it only answers them.",
        prevents="a server being made to send STUN traffic at whatever addresses an offer lists as candidates "
                 "(RFC 8445 §19.5.1's amplification through candidate lists)",
        note="RFC 8445 describes it without a BCP 14 keyword: §2.5 'Lite agents only use host candidates and do not "
             "generate connectivity checks or run state machines, though they need to be able to respond to "
             "connectivity checks.'; §6.1.1 'The lite implementation will just listen for connectivity checks, "
             "receive them and respond to them'; §7 'a lite implementation only acts as a STUN server (as it does "
             "not generate connectivity checks)'. A lite agent that also checks breaks no interoperability, so this "
             "is not a MUST.",
    ),
    "ICE-03": Requirement(
        Level.MUST, "RFC 8445 §7, RFC 8489 §6.3.1",
        "An ICE agent MUST be compliant to [RFC5389]. (RFC 8445 §7) If all the checks succeed, the server formulates "
        "a success response as described below. (RFC 8489 §6.3.1)",
        note="The check runs against lite agents only. RFC 8445 §7.3.1.1's role-conflict repair ('An agent MUST "
             "examine the Binding request for either the ICE-CONTROLLING or ICE-CONTROLLED attribute. It MUST follow "
             "these procedures', answering 487 when its tiebreaker is smaller) sits under 'Additional Procedures for "
             "Full Implementations', so a lite agent may answer the authenticated check with plain success; either "
             "is accepted. What FAILs is silence or another error to an authenticated, well-formed check.",
    ),
    "ICE-04": Requirement(
        Level.MUST, "RFC 8445 §12.1",
        "Once selected pairs have been produced for a data stream, an agent MUST send data on those pairs only.",
        note="For a lite agent only a Binding request with USE-CANDIDATE puts a pair in the valid list and nominates "
             "it (RFC 8445 §7.3.2), and the nominated pair becomes the selected pair (§8.2); checks without "
             "USE-CANDIDATE, earlier or later, must not draw media (or DTLS) to their addresses.",
    ),
    "ICE-05": Requirement(
        Level.POLICY, "draft-thatcher-ice-renomination; RFC 8445 §8.1.1 (nomination)",
        "The latest authenticated USE-CANDIDATE wins: a later nomination from another 5-tuple moves media there, "
        "and a nomination back moves it back.",
        prevents="a call that silently dies after a NAT rebinding or network change because media keeps going to "
                 "the first nominated, now dead, 5-tuple (browsers renominate instead of restarting ICE)",
        note="RFC 8445 §8.1.1 does not settle it: 'Once the controlling agent has successfully nominated a candidate "
             "pair (Section 7.2.5.3.4), the agent MUST NOT nominate another pair for same component of the data "
             "stream within the ICE session.', and if a controlled agent accepts several nominations 'the agents "
             "MUST produce the selected pairs and use the pairs with the highest priority' while a lite agent gives "
             "each pair 'an arbitrary priority' (§7.3.2). A lite agent that keeps its first nomination, or refuses a "
             "second with an error (§7.3.1.5: 'e.g., 400'), is compliant and WARNs here. The 'media follows the "
             "selected pair, not each packet's source' half is a MUST, judged by ICE-09.",
    ),
    "ICE-06": Requirement(
        Level.POLICY, "RFC 7675 §5.1 (applied to lite agents by analogy); RFC 9725 (consent freshness SHALL be used by "
                      "full ICE implementations)",
        "An ICE-lite server stops sending media, and frees the session, once no authenticated check has arrived "
        "from its peer for the consent timeout (30 s).",
        prevents="media streamed indefinitely at an address whose owner has gone (or never agreed), and sessions "
                 "that hold server resources forever after the peer vanished",
        note="RFC 7675 §5.1 ('Consent expires after 30 seconds. That is, if a valid STUN binding response has not "
             "been received from the remote peer's transport address in 30 seconds, the endpoint MUST cease "
             "transmission on that 5-tuple.') binds an agent through the answers to its own checks; a lite agent "
             "sends none, and WHIP limits consent freshness to full ICE implementations. So this check runs only "
             "against ICE-lite targets (a=ice-lite; one that sends checks anyway is still lite, and ICE-02 reports "
             "those checks), and ICE-10 holds full ICE agents to the MUST.",
    ),
    "ICE-07": Requirement(
        Level.MUST, "RFC 9725 §4.3, RFC 8445 §9",
        "If the HTTP PATCH request results in an ICE restart, the WHIP session SHALL return a \"200 OK\" with an "
        "\"application/trickle-ice-sdpfrag\" body containing the new ICE username fragment and password [...] "
        "(RFC 9725) To restart ICE, an agent MUST change both the password and the username fragment for the data "
        "stream(s) being restarted. (RFC 8445 §9)",
        note="The WHIP sentence is quoted from the last draft of draft-ietf-wish-whip read here; check its section "
             "number and wording against the published RFC 9725. RFC 8839 §5.4 adds that new values are random: "
             "'The ice-ufrag and ice-pwd attributes MUST be chosen randomly at the beginning of a session (the same "
             "applies when ICE is restarting for an agent).' The check with the new credentials must then be "
             "answered (RFC 8445 §7.3), and media then carries on with the same keys: RFC 9725 has both sides 'assume "
             "that the previously negotiated non-ICE-related SDP information still applies after the ICE restart' "
             "(fingerprints, setup roles). ICE restart itself is optional for a WHIP session (RFC 9725 and its drafts "
             "name 405, 422 or 501 for a PATCH it does not support): any HTTP error to the restart PATCH SKIPs the "
             "check with the status and reason, and it FAILs only a restart that was accepted and then does not "
             "work. A new DTLS handshake after the restart is judged by ICE-11 (POLICY).",
    ),
    "ICE-08": Requirement(
        Level.MUST, "RFC 8445 §5.3",
        _UNGUESSABLE,
        note="Same requirement and same randomness heuristic as ICE-01, run against every target (ICE-01 only "
             "against lite ones). RFC 8839 §5.4: 'The ice-ufrag and ice-pwd attributes MUST be chosen randomly at "
             "the beginning of a session'. Uniqueness across concurrent sessions is not stated by the RFC but "
             "follows from 24 random bits for 8 samples.",
    ),
    "ICE-09": Requirement(
        Level.MUST, "RFC 8445 §12.1",
        "Once selected pairs have been produced for a data stream, an agent MUST send data on those pairs only.",
        note="Which of two nominated pairs is selected is the agent's choice (ICE-05 POLICY; a full agent uses the "
             "highest-priority one, RFC 8445 §8.1.1), and refusing the second nomination (400) is accepted; sending "
             "each echo back to the source of the packet, whatever was nominated, is not. Run against every "
             "target: §12.1 binds full and lite agents alike.",
    ),
    "ICE-10": Requirement(
        Level.MUST, "RFC 7675 §5.1",
        "Consent expires after 30 seconds. That is, if a valid STUN binding response has not been received from the "
        "remote peer's transport address in 30 seconds, the endpoint MUST cease transmission on that 5-tuple.",
        note="Applies to full ICE agents (no a=ice-lite in the answer), whose consent freshness RFC 9725 requires: "
             "the probe answers their checks until the consent watch starts, then leaves them unanswered. An ICE-lite "
             "target SKIPs here, even one that sends checks anyway (ICE-02 reports those): ICE-06 judges it as POLICY.",
    ),
    "ICE-11": Requirement(
        Level.POLICY, "RFC 8445 §9 (an ICE restart flushes ICE state only); RFC 8842 (DTLS association rules)",
        "An ICE restart changes paths and credentials only: the DTLS association and SRTP keys carry on without a "
        "new handshake.",
        prevents="a media outage and re-keying at every network change, and a restart being used to force the "
                 "server through a fresh handshake",
        note="RFC 8445 §9 says 'during the restart, data can continue to be sent using existing data sessions' "
             "without a keyword. RFC 8842 lets an endpoint ask for a new DTLS association by changing its "
             "fingerprint or tls-id, which a WHIP PATCH cannot carry (RFC 9725: the previously negotiated "
             "non-ICE-related SDP information still applies); whether starting a new handshake anyway breaks a MUST "
             "was not verified here, so this stays POLICY. Media continuing with the same keys is ICE-07's MUST.",
    ),
}
