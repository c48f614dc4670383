"""The shell's /metrics page: the cores' counters in Prometheus text format, via prometheus_client.

The sans-IO cores (`core.py`, `relay/routing.py`) only count, in `metrics.Metrics` and
`relay.routing.RelayMetrics`; the collectors here read those numbers at scrape time and hand
them to prometheus_client, which writes the exposition. Metric names and labels are part of
the contract (docs, checks and tests read them):

- server: rtcgate_packets_received_total{kind}, rtcgate_packets_sent_total{kind},
  rtcgate_drops_total{reason}, rtcgate_sessions, rtcgate_bound_tuples,
  rtcgate_sessions_created_total, rtcgate_sessions_closed_total{reason},
  rtcgate_setup_phase_seconds{phase} and rtcgate_voice_turn_seconds{part} (histograms),
  rtcgate_process_resident_bytes, plus prometheus_client's standard process_* family
  (process_resident_memory_bytes, process_cpu_seconds_total, ...) where /proc exists;
- relay: rtcgate_relay_datagrams_total{direction,worker}, rtcgate_relay_drops_total{reason},
  rtcgate_relay_routes, rtcgate_relay_routes_learned_total, rtcgate_relay_routes_removed_total{reason}.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..metrics import Histogram, Metrics
from ..relay.routing import RelayMetrics

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""Text format 0.0.4: what every Prometheus server and the toolkit's poller read."""


def _counter_by(name: str, help_text: str, label: str, counts: Counter) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=[label])
    for key, n in sorted(counts.items()):
        family.add_metric([str(key)], n)
    return family


def _histograms(name: str, help_text: str, label: str, by_label: Mapping[str, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text, labels=[label])
    for value, histogram in by_label.items():
        cumulative, buckets = 0, []
        for bound, n in zip(histogram.buckets, histogram.counts):
            cumulative += n
            buckets.append((floatToGoString(bound), cumulative))
        buckets.append(("+Inf", histogram.count))
        family.add_metric([value], buckets, sum_value=histogram.total)
    return family


class ServerCollector(Collector):
    """The reference server's counters, read from the core's `Metrics` at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield _counter_by("rtcgate_packets_received_total", "Datagrams received on the UDP port, by protocol.",
                          "kind", m.packets_received)
        yield _counter_by("rtcgate_packets_sent_total", "Datagrams sent from the UDP port, by protocol.",
                          "kind", m.packets_sent)
        yield _counter_by("rtcgate_drops_total", "Datagrams dropped, by reason.", "reason", m.drops)
        yield GaugeMetricFamily("rtcgate_sessions", "Sessions currently held.", value=m.sessions)
        yield GaugeMetricFamily("rtcgate_bound_tuples", "5-tuples bound to sessions by authenticated checks.",
                                value=m.bound_tuples)
        yield CounterMetricFamily("rtcgate_sessions_created_total", "Sessions created by signaling.",
                                  value=m.sessions_created)
        yield _counter_by("rtcgate_sessions_closed_total", "Sessions freed, by reason.", "reason", m.sessions_closed)
        yield _histograms("rtcgate_setup_phase_seconds", "Session setup time per phase.", "phase", m.phases)
        yield _histograms("rtcgate_voice_turn_seconds",
                          "Voice turns: user speech stopped to first response audio sent, the model's think "
                          "time, and the server's own share (the difference).", "part", m.voice)


class ProcessMemory(Collector):
    """prometheus_client's standard process metrics, plus their resident memory under the name
    the toolkit's checks have always read (rtcgate_process_resident_bytes). Nothing where there
    is no /proc."""

    def __init__(self, proc: str = "/proc") -> None:
        self._process = ProcessCollector(proc=proc, registry=None)

    def collect(self) -> Iterator[Metric]:
        families = list(self._process.collect())
        yield from families
        for family in families:
            if family.name == "process_resident_memory_bytes":
                yield GaugeMetricFamily("rtcgate_process_resident_bytes", "Resident memory of the server process.",
                                        value=family.samples[0].value)


class RelayCollector(Collector):
    """The relay's own counters; `routes()` is the size of its route table at scrape time."""

    def __init__(self, metrics: RelayMetrics, routes: Callable[[], int]) -> None:
        self.metrics = metrics
        self.routes = routes

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        datagrams = CounterMetricFamily("rtcgate_relay_datagrams_total",
                                        "Datagrams the relay forwarded, by direction and worker.",
                                        labels=["direction", "worker"])
        for direction, counts in (("to_worker", m.to_worker), ("to_client", m.to_client)):
            for worker, n in sorted(counts.items()):
                datagrams.add_metric([direction, str(worker)], n)
        yield datagrams
        yield _counter_by("rtcgate_relay_drops_total", "Datagrams the relay dropped, by reason.", "reason", m.drops)
        yield GaugeMetricFamily("rtcgate_relay_routes", "Client addresses the relay routes to a worker.",
                                value=self.routes())
        yield CounterMetricFamily("rtcgate_relay_routes_learned_total", "Routes learned from workers' BIND replies.",
                                  value=m.routes_learned)
        yield _counter_by("rtcgate_relay_routes_removed_total", "Routes forgotten, by reason.",
                          "reason", m.routes_removed)


class Families(Collector):
    """Families already built (e.g. parsed from another process's page), exposed as they are."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def server_registry(metrics: Metrics, proc: str = "/proc") -> CollectorRegistry:
    """What the reference server's /metrics shows: its core's counters and its process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(metrics))
    registry.register(ProcessMemory(proc))
    return registry


def render(*collectors: Collector) -> bytes:
    """Prometheus text 0.0.4 of every family the collectors give, in order."""
    return b"".join(generate_latest(collector) for collector in collectors)
