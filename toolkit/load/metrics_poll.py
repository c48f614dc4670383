"""The target's /metrics over time: sessions held, resident memory and drops by reason, read
every half second while a load run goes on (server state over time for PERF-03).

The page is parsed by prometheus_client's text parser. Sessions and resident memory are summed
over their samples, so a relay's page (one sample per worker) gives the whole server; resident
memory is `rtcgate_process_resident_bytes`, else the standard `process_resident_memory_bytes`
that most Prometheus client libraries export. A page that does not parse counts as a failed read.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

SESSIONS = "rtcgate_sessions"
DROPS = "rtcgate_drops_total"
RESIDENT_MEMORY = ("rtcgate_process_resident_bytes", "process_resident_memory_bytes")
"""The first of these the page has is read."""


@dataclass(slots=True)
class MetricsSample:
    t: float
    """Seconds since the run started."""
    sessions: int | None
    rss_bytes: int | None
    drops: dict[str, int]
    """Cumulative drops by reason."""

    def as_dict(self) -> dict:
        return {"t": round(self.t, 3), "sessions": self.sessions, "rss_bytes": self.rss_bytes,
                "drops": dict(self.drops)}


def parse_metrics(text: str, t: float) -> MetricsSample:
    """The three families the load report plots, from Prometheus text; absent ones are None.

    Raises ValueError when the text is not Prometheus text."""
    totals: dict[str, float] = {}
    drops: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if math.isnan(sample.value):
                continue
            if sample.name == DROPS and "reason" in sample.labels:
                reason = sample.labels["reason"]
                drops[reason] = drops.get(reason, 0) + int(sample.value)
            elif sample.name in (SESSIONS, *RESIDENT_MEMORY):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    sessions = int(totals[SESSIONS]) if SESSIONS in totals else None
    rss = next((int(totals[name]) for name in RESIDENT_MEMORY if name in totals), None)
    return MetricsSample(t, sessions, rss, drops)


@dataclass
class MetricsPoller:
    """Polls `url` until stopped; a target without /metrics leaves the timeline empty and says why."""

    url: str
    started: float
    interval: float = 0.5
    headers: dict[str, str] = field(default_factory=dict)
    """Sent with every read: the target's WHIP headers (its Authorization), same origin."""
    timeline: list[MetricsSample] = field(default_factory=list)
    error: str | None = None
    """Set when the first read fails: the target has no /metrics we can read."""
    missed: int = 0
    """Reads that failed after the first success (a target busy under attack)."""
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def sample_now(self) -> MetricsSample | None:
        """One more sample at once (scenario edges); None when the target has no metrics."""
        if self.error is not None:
            return None
        async with aiohttp.ClientSession() as http:
            return await self._sample(http)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _poll(self) -> None:
        async with aiohttp.ClientSession() as http:
            while self.error is None:
                await self._sample(http)
                await asyncio.sleep(self.interval)

    async def _sample(self, http: aiohttp.ClientSession) -> MetricsSample | None:
        loop = asyncio.get_running_loop()
        try:
            async with http.get(self.url, headers=self.headers, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status != 200:
                    return self._failed(f"GET {self.url} answered {response.status}")
                text = await response.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            return self._failed(f"GET {self.url} failed: {exc or type(exc).__name__}")
        try:
            sample = parse_metrics(text, loop.time() - self.started)
        except ValueError as exc:
            return self._failed(f"GET {self.url} answered no Prometheus text: {exc}")
        self.timeline.append(sample)
        return sample

    def _failed(self, reason: str) -> None:
        if self.timeline:
            self.missed += 1
        else:
            self.error = reason

    def window(self, start: float, end: float) -> dict:
        """Server state over [start, end] (seconds since the run started) for one scenario."""
        inside = [s for s in self.timeline if start <= s.t <= end]
        if not inside:
            return {"sessions_start": None, "sessions_end": None, "sessions_max": None,
                    "rss_start_bytes": None, "rss_end_bytes": None, "drops": {}}
        first, last = inside[0], inside[-1]
        sessions = [s.sessions for s in inside if s.sessions is not None]
        drops = {reason: count - first.drops.get(reason, 0)
                 for reason, count in last.drops.items() if count - first.drops.get(reason, 0)}
        return {"sessions_start": first.sessions, "sessions_end": last.sessions,
                "sessions_max": max(sessions) if sessions else None,
                "rss_start_bytes": first.rss_bytes, "rss_end_bytes": last.rss_bytes, "drops": drops}
