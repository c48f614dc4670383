"""Requirement the SANITY conversation judges (see toolkit.conformance.requirements)."""

from toolkit.conformance.model import Level, Requirement

REQUIREMENTS = {
    "SANITY": Requirement(
        Level.MUST, "RFC 8445 §7.3",
        "An ICE agent (lite or full) MUST be prepared to receive Binding requests on the base of each candidate "
        "it included in its most recent candidate exchange.",
        note="SANITY proves the target alive: it answers the offer, completes ICE, completes DTLS with use_srtp "
             "(RFC 5764 §4.1.1, as DTLS-01) and echoes media (the harness's convention). Graded MUST so that the "
             "closing sanity run FAILs the run when the catalog left the target dead, instead of a WARN.",
    ),
}
