"""The relay's HTTP side: its /metrics merge (every worker's samples labelled, each family whole and
once), and the routes and body limit it shares with the server's."""
from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from reference_server.certificate import Certificate
from reference_server.core import CoreConfig, ServerCore
from reference_server.metrics import Metrics
from reference_server.shell.exposition import Families, ServerCollector, render
from reference_server.shell.http_api import make_app as server_make_app
from reference_server.shell.relay_http import WorkerEndpoint, label_worker_metrics, worker_up
from reference_server.shell.relay_http import make_app as relay_make_app


def test_worker_metrics_are_labelled_and_families_stay_whole():
    first, second = Metrics(), Metrics()
    first.sessions, second.sessions = 3, 5
    first.drops["stun_bad_integrity"] = 2
    first.phases["selected_to_dtls"].observe(0.003)
    pages = {0: render(ServerCollector(first)).decode(), 1: render(ServerCollector(second)).decode(),
             2: "this is { not prometheus text"}
    merged = render(Families([worker_up({0: True, 1: True, 2: True}), *label_worker_metrics(pages)])).decode()
    families = {family.name: family for family in text_string_to_metric_families(merged)}
    sessions = {sample.labels["worker"]: sample.value for sample in families["rtcgate_sessions"].samples}
    assert sessions == {"0": 3, "1": 5}  # the page that did not parse is left out
    drops = families["rtcgate_drops"].samples
    assert [(s.labels, s.value) for s in drops] == [({"worker": "0", "reason": "stun_bad_integrity"}, 2)]
    counts = [s for s in families["rtcgate_setup_phase_seconds"].samples
              if s.name.endswith("_count") and s.labels["phase"] == "selected_to_dtls"]
    assert {s.labels["worker"]: s.value for s in counts} == {"0": 1, "1": 0}
    assert families["rtcgate_setup_phase_seconds"].type == "histogram"
    lines = merged.splitlines()
    assert lines.count("# TYPE rtcgate_sessions gauge") == 1
    # Prometheus wants a family's samples together, right after its HELP and TYPE.
    type_at = lines.index("# TYPE rtcgate_sessions gauge")
    assert lines[type_at + 1:type_at + 3] == ['rtcgate_sessions{worker="0"} 3.0', 'rtcgate_sessions{worker="1"} 5.0']
    assert all(line.startswith("#") or 'worker="' in line for line in lines)


def _routes(app) -> list[tuple[str, str]]:
    return sorted((route.method, route.resource.canonical) for route in app.router.routes())


def test_the_relay_serves_the_servers_routes_and_refuses_a_large_offer_itself():
    """One route table (http_api.signaling_app) for both: WHIP and the calls alias, their
    resources, CORS preflights, health and metrics; and the body limit holds before any worker
    is asked (the worker here listens nowhere, so asking it would answer 503)."""
    server_app = server_make_app(ServerCore(CoreConfig(), Certificate.generate()), lambda: 0.0, lambda: None)

    async def scenario() -> list[int]:
        async with aiohttp.ClientSession() as session:
            relay_app = relay_make_app([WorkerEndpoint(0, ("127.0.0.1", 9), "http://127.0.0.1:9")], Families([]),
                                       session)
            assert _routes(relay_app) == _routes(server_app)
            async with TestClient(TestServer(relay_app)) as client:
                too_large = await client.post("/whip", data=b"v=0\r\n" + b"a=x\r\n" * 20000,
                                              headers={"Content-Type": "application/sdp"})
                preflight = await client.options("/v1/realtime/calls/0-abc")
                return [too_large.status, preflight.status]

    assert asyncio.run(scenario()) == [413, 204]
    assert ("PATCH", "/v1/realtime/calls/{resource}") in _routes(server_app)
