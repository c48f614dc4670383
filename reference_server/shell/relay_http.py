"""The relay's HTTP side: WHIP and the realtime-calls alias proxied to workers, health, metrics.

A POST goes to the workers in turn (round robin; a worker that does not answer is skipped).
The resource it creates is named `<worker id>-<session id>` in the Location the client gets,
so DELETE and PATCH go straight to the worker that holds the session, with no table here.
`/metrics` is the relay's own counters followed by every worker's, labelled worker="<id>".
"""
from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from .exposition import CONTENT_TYPE, Families, render
from .http_api import Handler, error, read_body, signaling_app

Address = tuple[str, int]
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Authorization", "If-Match")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "ETag", "Link")
SIGNALING_TIMEOUT = aiohttp.ClientTimeout(total=10)
METRICS_TIMEOUT = aiohttp.ClientTimeout(total=2)
_RESOURCE = re.compile(r"(?P<worker>\d{1,3})-(?P<session>[^/]+)")


@dataclass(frozen=True)
class WorkerEndpoint:
    worker_id: int
    udp: Address  # where the relay forwards this worker's datagrams
    http_url: str  # the worker's own signaling server, e.g. "http://127.0.0.2:8081"


def label_worker_metrics(texts: Mapping[int, str]) -> list[Metric]:
    """Workers' Prometheus pages as one list of families, each sample labelled with its worker.

    A family that several workers expose appears once, with every worker's samples (Prometheus
    wants a family's samples together); a page that does not parse is left out."""
    families: dict[str, Metric] = {}
    for worker_id, text in texts.items():
        try:
            parsed = list(text_string_to_metric_families(text))
        except ValueError:
            continue
        for family in parsed:
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            merged.samples.extend(sample._replace(labels={"worker": str(worker_id), **sample.labels})
                                  for sample in family.samples)
    return list(families.values())


def worker_up(answered: Mapping[int, bool]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("rtcgate_relay_worker_up", "Whether the worker answered this scrape.", labels=["worker"])
    for worker_id, up in answered.items():
        family.add_metric([str(worker_id)], int(up))
    return family


def make_app(workers: Sequence[WorkerEndpoint], relay_metrics: Collector,
             client: aiohttp.ClientSession) -> web.Application:
    """`relay_metrics` collects the relay's own counters; `client` makes the requests to workers."""
    by_id = {worker.worker_id: worker for worker in workers}
    turn = itertools.cycle(workers)

    async def relay_response(response: aiohttp.ClientResponse, worker: WorkerEndpoint, prefix: str) -> web.Response:
        headers = {name: response.headers[name] for name in FORWARDED_RESPONSE_HEADERS if name in response.headers}
        location = response.headers.get("Location")
        if location is not None:
            headers["Location"] = f"{prefix}/{worker.worker_id}-{location.rstrip('/').rsplit('/', 1)[-1]}"
        return web.Response(status=response.status, body=await response.read(), headers=headers)

    def request_headers(request: web.Request) -> dict[str, str]:
        return {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}

    def resource_handlers(prefix: str) -> tuple[Handler, Handler, Handler]:
        async def post(request: web.Request) -> web.Response:
            body = await read_body(request)
            if isinstance(body, web.Response):
                return body
            failures = []
            for worker in itertools.islice(turn, len(workers)):
                try:
                    async with client.post(worker.http_url + prefix, data=body, headers=request_headers(request),
                                           timeout=SIGNALING_TIMEOUT) as response:
                        return await relay_response(response, worker, prefix)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    failures.append(f"worker {worker.worker_id}: {exc or type(exc).__name__}")
            return error(503, "no worker answered (" + "; ".join(failures) + ")")

        async def to_owner(request: web.Request) -> web.Response:
            resource = request.match_info["resource"]
            match = _RESOURCE.fullmatch(resource)
            worker = by_id.get(int(match["worker"])) if match else None
            if worker is None:
                return error(404, f"no session {resource}")
            try:
                async with client.request(request.method, f"{worker.http_url}{prefix}/{match['session']}",
                                          data=await request.read(), headers=request_headers(request),
                                          timeout=SIGNALING_TIMEOUT) as response:
                    return await relay_response(response, worker, prefix)
            except (TimeoutError, aiohttp.ClientError) as exc:
                return error(503, f"worker {worker.worker_id} did not answer: {exc or type(exc).__name__}")

        return post, to_owner, to_owner

    async def fetch(worker: WorkerEndpoint, path: str) -> aiohttp.ClientResponse | Exception:
        try:
            async with client.get(worker.http_url + path, timeout=METRICS_TIMEOUT) as response:
                await response.read()
                return response
        except (TimeoutError, aiohttp.ClientError) as exc:
            return exc

    async def healthz(request: web.Request) -> web.Response:
        replies = await asyncio.gather(*(fetch(worker, "/healthz") for worker in workers))
        report = {}
        for worker, reply in zip(workers, replies):
            if isinstance(reply, Exception) or reply.status != 200:
                report[str(worker.worker_id)] = {"status": "unreachable"}
            else:
                report[str(worker.worker_id)] = await reply.json()
        healthy = all(entry.get("status") == "ok" for entry in report.values())
        return web.json_response({"status": "ok" if healthy else "degraded",
                                  "sessions": sum(entry.get("sessions", 0) for entry in report.values()),
                                  "workers": report}, status=200 if healthy else 503)

    async def metrics(request: web.Request) -> web.Response:
        replies = await asyncio.gather(*(fetch(worker, "/metrics") for worker in workers))
        texts, answered = {}, {}
        for worker, reply in zip(workers, replies):
            answered[worker.worker_id] = not isinstance(reply, Exception) and reply.status == 200
            if answered[worker.worker_id]:
                texts[worker.worker_id] = await reply.text()
        page = render(relay_metrics, Families([worker_up(answered), *label_worker_metrics(texts)]))
        return web.Response(body=page, headers={"Content-Type": CONTENT_TYPE})

    return signaling_app(resource_handlers, healthz, metrics)
