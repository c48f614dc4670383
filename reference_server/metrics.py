"""Counters, gauges and setup-phase histograms, rendered in Prometheus text format."""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

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
    packets_received: Counter = field(default_factory=Counter)  # by kind
    packets_sent: Counter = field(default_factory=Counter)  # by kind
    drops: Counter = field(default_factory=Counter)  # by reason
    sessions_closed: Counter = field(default_factory=Counter)  # by reason
    sessions_created: int = 0
    sessions: int = 0
    bound_tuples: int = 0
    phases: dict[str, Histogram] = field(default_factory=lambda: {p: Histogram() for p in SETUP_PHASES})
    voice: dict[str, Histogram] = field(default_factory=lambda: {p: Histogram(VOICE_BUCKETS) for p in VOICE_PARTS})

    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        family("rtcgate_packets_received_total", "counter", "Datagrams received on the UDP port, by protocol.")
        for kind, n in sorted(self.packets_received.items()):
            lines.append(f'rtcgate_packets_received_total{{kind="{kind}"}} {n}')
        family("rtcgate_packets_sent_total", "counter", "Datagrams sent from the UDP port, by protocol.")
        for kind, n in sorted(self.packets_sent.items()):
            lines.append(f'rtcgate_packets_sent_total{{kind="{kind}"}} {n}')
        family("rtcgate_drops_total", "counter", "Datagrams dropped, by reason.")
        for reason, n in sorted(self.drops.items()):
            lines.append(f'rtcgate_drops_total{{reason="{reason}"}} {n}')
        family("rtcgate_sessions", "gauge", "Sessions currently held.")
        lines.append(f"rtcgate_sessions {self.sessions}")
        family("rtcgate_bound_tuples", "gauge", "5-tuples bound to sessions by authenticated checks.")
        lines.append(f"rtcgate_bound_tuples {self.bound_tuples}")
        family("rtcgate_sessions_created_total", "counter", "Sessions created by signaling.")
        lines.append(f"rtcgate_sessions_created_total {self.sessions_created}")
        family("rtcgate_sessions_closed_total", "counter", "Sessions freed, by reason.")
        for reason, n in sorted(self.sessions_closed.items()):
            lines.append(f'rtcgate_sessions_closed_total{{reason="{reason}"}} {n}')
        def histograms(name: str, label: str, by_label: dict[str, Histogram], help_text: str) -> None:
            family(name, "histogram", help_text)
            for value, hist in by_label.items():
                cumulative = 0
                for bound, n in zip(hist.buckets, hist.counts):
                    cumulative += n
                    lines.append(f'{name}_bucket{{{label}="{value}",le="{bound}"}} {cumulative}')
                lines.append(f'{name}_bucket{{{label}="{value}",le="+Inf"}} {hist.count}')
                lines.append(f'{name}_sum{{{label}="{value}"}} {hist.total:.6f}')
                lines.append(f'{name}_count{{{label}="{value}"}} {hist.count}')

        histograms("rtcgate_setup_phase_seconds", "phase", self.phases, "Session setup time per phase.")
        histograms("rtcgate_voice_turn_seconds", "part", self.voice,
                   "Voice turns: user speech stopped to first response audio sent, the model's think "
                   "time, and the server's own share (the difference).")
        return "\n".join(lines) + "\n"
