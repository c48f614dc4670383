"""The catalog as data, in catalog order, and the sanity conversation, each with its requirement."""

from __future__ import annotations

import dataclasses

from toolkit.conformance.checks import dc, demux, dtls, ice, migrate, perf, srtp, stun, voice
from toolkit.conformance.model import Check
from toolkit.conformance.requirements import REQUIREMENTS
from toolkit.conformance.steps import Alive, Connect


def _judging(check: Check) -> Check:
    """The check with its requirement attached; a check without one is a catalog bug."""
    if check.id not in REQUIREMENTS:
        raise ValueError(f"no requirement for {check.id} in toolkit.conformance.requirements")
    return dataclasses.replace(check, requirement=REQUIREMENTS[check.id])


SANITY = Check(
    "SANITY", "core", "RFC 8445, RFC 5764, RFC 3711, RFC 3550",
    "the target answers an offer, connects (ICE, DTLS) and takes media (it echoes it, or reports on it in "
    "RTCP, or keeps the session alive): it is alive; the first one learns whether it echoes",
    (Connect(), Alive(learn=True)),
    timeout=30.0,
)

CATALOG: tuple[Check, ...] = tuple(map(_judging, (
    *demux.CHECKS,
    *stun.CHECKS,
    *ice.CHECKS,
    *migrate.CHECKS,
    *dtls.CHECKS,
    *srtp.CHECKS,
    *dc.CHECKS,
    *voice.CHECKS,
    *perf.CHECKS,
)))
SANITY = _judging(SANITY)

BY_ID = {check.id: check for check in CATALOG}
