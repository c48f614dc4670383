"""The requirement each catalog check judges: the gate's traceability table.

One module per family maps check IDs to `Requirement`s: an RFC's MUST or SHOULD with its
section and sentence quoted, or this project's POLICY with the attack it prevents. Keeping the
table apart from the conversations lets an RFC reader review every verdict's basis in one
place; `checks` attaches each entry to its check and refuses a check without one.
"""

from __future__ import annotations

from toolkit.conformance.model import Requirement
from toolkit.conformance.requirements import dc, demux, dtls, ice, migrate, perf, sanity, srtp, stun, voice

_FAMILIES = (sanity, demux, stun, ice, migrate, dtls, srtp, dc, voice, perf)

REQUIREMENTS: dict[str, Requirement] = {}
for _family in _FAMILIES:
    _clash = REQUIREMENTS.keys() & _family.REQUIREMENTS.keys()
    if _clash:
        raise ValueError(f"requirements given twice for {', '.join(sorted(_clash))}")
    REQUIREMENTS.update(_family.REQUIREMENTS)
