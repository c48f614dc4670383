from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from tests.support.http_app import serve_app
from toolkit.load.metrics_poll import MetricsPoller, MetricsSample, parse_metrics

EXPOSITION = """\
# HELP rtcgate_packets_received_total Datagrams received on the UDP port, by protocol.
# TYPE rtcgate_packets_received_total counter
rtcgate_packets_received_total{kind="stun"} 120
rtcgate_packets_received_total{kind="srtp"} 5000
# HELP rtcgate_drops_total Datagrams dropped, by reason.
# TYPE rtcgate_drops_total counter
rtcgate_drops_total{reason="stun_unknown_ufrag"} 40
rtcgate_drops_total{reason="srtp_unprotect_failed"} 7
rtcgate_drops_total{protocol="udp",reason="garbage"} 1.5e3
rtcgate_drops_total{reason="unclassified"} 0
# HELP rtcgate_sessions Sessions currently held.
# TYPE rtcgate_sessions gauge
rtcgate_sessions 12
rtcgate_sessions_created_total 15
rtcgate_setup_phase_seconds_bucket{phase="signaling_to_first_stun",le="+Inf"} 15
rtcgate_setup_phase_seconds_sum{phase="signaling_to_first_stun"} 0.031250
# HELP rtcgate_process_resident_bytes Resident memory of the server process.
# TYPE rtcgate_process_resident_bytes gauge
rtcgate_process_resident_bytes 9.6264192e+07
"""


def test_parse_metrics_reads_sessions_memory_and_drops_by_reason() -> None:
    sample = parse_metrics(EXPOSITION, 1.5)
    assert sample.t == 1.5
    assert sample.sessions == 12  # not rtcgate_sessions_created_total
    assert sample.rss_bytes == 96_264_192
    assert sample.drops == {"stun_unknown_ufrag": 40, "srtp_unprotect_failed": 7, "garbage": 1500, "unclassified": 0}


def test_parse_metrics_leaves_absent_families_none() -> None:
    sample = parse_metrics("# HELP up Whether the target is up.\nup 1\nrtcgate_sessions_created_total 3\n", 0.0)
    assert (sample.sessions, sample.rss_bytes, sample.drops) == (None, None, {})
    assert parse_metrics("", 2.0).as_dict() == {"t": 2.0, "sessions": None, "rss_bytes": None, "drops": {}}


def test_parse_metrics_reads_the_reference_servers_own_page() -> None:
    from reference_server.metrics import Metrics
    from reference_server.shell.exposition import render, server_registry

    metrics = Metrics(sessions=4)
    metrics.drops["stun_unknown_ufrag"] = 9
    sample = parse_metrics(render(server_registry(metrics)).decode(), 0.0)
    assert (sample.sessions, sample.drops) == (4, {"stun_unknown_ufrag": 9})


def test_parse_metrics_falls_back_to_the_standard_process_gauge_and_sums_workers() -> None:
    standard = ("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2.5e+07\n"
                'rtcgate_sessions{worker="0"} 2\nrtcgate_sessions{worker="1"} 3\n')
    sample = parse_metrics(standard, 0.0)
    assert (sample.sessions, sample.rss_bytes) == (5, 25_000_000)  # a relay's page: the whole server
    relay = ('rtcgate_process_resident_bytes{worker="0"} 100\nrtcgate_process_resident_bytes{worker="1"} 50\n'
             'process_resident_memory_bytes{worker="0"} 999\n')
    assert parse_metrics(relay, 0.0).rss_bytes == 150  # ours first when the page has both


def test_parse_metrics_refuses_what_is_not_prometheus_text() -> None:
    with pytest.raises(ValueError):
        parse_metrics("<html><body>metrics { here }</body></html>\n", 0.0)


def poller_with(*samples: MetricsSample) -> MetricsPoller:
    poller = MetricsPoller("http://127.0.0.1:9/metrics", started=0.0)
    poller.timeline.extend(samples)
    return poller


def test_window_gives_the_state_at_its_edges_and_the_drops_within() -> None:
    poller = poller_with(
        MetricsSample(0.0, 3, 100, {"garbage": 5}),
        MetricsSample(1.0, 3, 110, {"garbage": 5, "stun_unknown_ufrag": 2}),
        MetricsSample(1.5, 5, 130, {"garbage": 905, "stun_unknown_ufrag": 2}),
        MetricsSample(2.0, 4, 120, {"garbage": 1005, "stun_unknown_ufrag": 2, "srtp_unprotect_failed": 9}),
        MetricsSample(3.0, 9, 999, {"garbage": 5000}),
    )
    assert poller.window(1.0, 2.0) == {
        "sessions_start": 3, "sessions_end": 4, "sessions_max": 5, "rss_start_bytes": 110, "rss_end_bytes": 120,
        "drops": {"garbage": 1000, "srtp_unprotect_failed": 9},  # reasons that did not move are left out
    }


def test_window_without_samples_or_gauges_says_none() -> None:
    poller = poller_with(MetricsSample(0.0, None, None, {}), MetricsSample(1.0, None, None, {"garbage": 1}))
    assert poller.window(5.0, 6.0) == {"sessions_start": None, "sessions_end": None, "sessions_max": None,
                                       "rss_start_bytes": None, "rss_end_bytes": None, "drops": {}}
    assert poller.window(0.0, 1.0)["sessions_max"] is None
    assert poller.window(0.0, 1.0)["drops"] == {"garbage": 1}


class Target:
    """A loopback HTTP server whose /metrics answers from a script: text for 200, a number for that status."""

    def __init__(self, *answers: str | int) -> None:
        self.answers = list(answers)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def metrics(self, request: web.Request) -> web.Response:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, int):
            return web.Response(status=answer, text="no")
        return web.Response(text=answer, content_type="text/plain")

    async def __aenter__(self) -> Target:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        self.runner, base_url = await serve_app(app)
        self.url = f"{base_url}/metrics"
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.runner.cleanup()


async def wait_until(condition, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


def test_a_target_without_metrics_sets_error_and_stops_the_polling() -> None:
    async def scenario() -> MetricsPoller:
        async with Target(404) as target:
            poller = MetricsPoller(target.url, asyncio.get_running_loop().time(), interval=0.01)
            poller.start()
            await wait_until(lambda: poller.error is not None)
            assert await poller.sample_now() is None  # no further reads once it is known absent
            await poller.stop()
            return poller

    poller = asyncio.run(scenario())
    assert poller.error.startswith("GET http://127.0.0.1:") and poller.error.endswith("/metrics answered 404")
    assert poller.timeline == []
    assert poller.missed == 0


def test_nobody_listening_is_an_error_too() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> MetricsPoller:
        poller = MetricsPoller(f"http://127.0.0.1:{port}/metrics", 0.0)
        assert await poller.sample_now() is None
        return poller

    poller = asyncio.run(scenario())
    assert poller.error.startswith(f"GET http://127.0.0.1:{port}/metrics failed: ")
    assert poller.timeline == []


def test_a_failure_after_a_success_counts_as_missed_and_polling_goes_on() -> None:
    async def scenario() -> MetricsPoller:
        async with Target(EXPOSITION, 503, 500, EXPOSITION.replace("rtcgate_sessions 12", "rtcgate_sessions 13")) as target:
            poller = MetricsPoller(target.url, asyncio.get_running_loop().time(), interval=0.01)
            first = await poller.sample_now()
            assert first is not None and first.sessions == 12
            poller.start()
            await wait_until(lambda: len(poller.timeline) >= 3)
            await poller.stop()
            return poller

    poller = asyncio.run(scenario())
    assert poller.error is None
    assert poller.missed == 2
    assert [sample.sessions for sample in poller.timeline[:3]] == [12, 13, 13]
    assert all(later.t >= earlier.t for earlier, later in zip(poller.timeline, poller.timeline[1:]))


def test_a_page_that_is_not_prometheus_text_is_an_error() -> None:
    async def scenario() -> MetricsPoller:
        async with Target("<html>{ not metrics }</html>") as target:
            poller = MetricsPoller(target.url, asyncio.get_running_loop().time())
            assert await poller.sample_now() is None
            return poller

    poller = asyncio.run(scenario())
    assert "answered no Prometheus text" in poller.error
    assert poller.timeline == []
