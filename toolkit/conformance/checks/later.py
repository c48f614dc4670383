"""PERF: measurements with the user's thresholds, run by `rtcgate load`; in the catalog they SKIP
saying so, so a report lists every catalog ID."""

from __future__ import annotations

from toolkit.conformance.model import Check
from toolkit.conformance.steps import Require

_PERF = "use rtcgate load: PERF checks are measurements against thresholds the user sets"
_PERF_STEPS = (Require(lambda conversation: _PERF, "a load run"),)

CHECKS = (
    Check("PERF-01", "perf", "DESIGN: setup phases", "setup time per phase (signaling → first STUN → ICE selected → "
          "DTLS done → first SRTP → first response audio)", _PERF_STEPS),
    Check("PERF-02", "perf", "DESIGN: adversarial load", "media round-trip time, jitter and loss for N sessions, quiet "
          "vs under each attack mix", _PERF_STEPS),
    Check("PERF-03", "perf", "DESIGN principle 2", "state growth under each attack mix stays flat", _PERF_STEPS),
    Check("PERF-04", "perf", "DESIGN: voice latency", "voice-to-voice latency distribution under each attack mix",
          _PERF_STEPS),
)
