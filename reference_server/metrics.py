"""Counters, gauges and histograms the sans-IO core keeps: plain numbers, no exposition.

The core only counts; the shell publishes these numbers on /metrics in Prometheus text format
(`reference_server/shell/exposition.py`), so the core imports no metrics library. Each field is one
metric family there; the comment on it says which label its keys become.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from .reasons import CloseReason, DropReason

PHASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
VOICE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
VOICE_PARTS = ("stop_to_first_audio", "model_think", "server_share")
SETUP_PHASES = ("signaling_to_first_stun", "first_stun_to_selected", "selected_to_dtls",
                "dtls_to_first_srtp", "signaling_to_first_srtp", "first_srtp_to_first_response")


@dataclass
class Histogram:
    buckets: tuple[float, ...] = PHASE_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


@dataclass
class Metrics:
    packets_received: Counter[str] = field(default_factory=Counter)  # by kind
    packets_sent: Counter[str] = field(default_factory=Counter)  # by kind
    drops: Counter[DropReason] = field(default_factory=Counter)  # by reason
    sessions_closed: Counter[CloseReason] = field(default_factory=Counter)  # by reason
    sessions_created: int = 0
    sessions: int = 0
    bound_tuples: int = 0
    phases: dict[str, Histogram] = field(default_factory=lambda: {p: Histogram() for p in SETUP_PHASES})
    voice: dict[str, Histogram] = field(default_factory=lambda: {p: Histogram(VOICE_BUCKETS) for p in VOICE_PARTS})
