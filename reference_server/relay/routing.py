"""The relay's sans-IO core: which worker gets each datagram that reaches the public port.

A flow's first datagrams are STUN checks; their USERNAME starts with the server's ufrag, whose
prefix names the worker and carries a tag under the routing secret (credentials.py), so the
relay routes them without a lookup and refuses ufrags nobody issued. The relay learns a
client address only when a worker asks it to send there with the BIND flag, which a worker
sets only for addresses an authenticated check bound: unauthenticated traffic creates no
relay state, and the route table is capped (least recently used goes first). DTLS, SRTP and
SRTCP from a routed address go to its worker unparsed; STUN that names a genuine ufrag follows
the ufrag, so a 5-tuple reused for a session on another worker moves there. Anything else is
dropped and counted by reason.

A relay that restarts starts empty; each client's next consent check (RFC 7675, ≤ 5 s apart)
carries the ufrag again and rebuilds its route, while the workers keep every session.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import stun
from ..credentials import ufrag_worker
from . import protocol
from .protocol import Kind, RelayProtocolError

Address = tuple[str, int]
MAX_ROUTES = 100_000
ROUTE_IDLE_TIMEOUT = 60.0
"""Twice the consent timeout: a route this quiet belongs to a session its worker has freed."""
MAX_FORWARDED = protocol.MAX_UDP_PAYLOAD - protocol.FIXED_HEADER - 16
_STUN_COOKIE = b"\x21\x12\xa4\x42"


@dataclass(slots=True)
class Route:
    worker_id: int
    worker_address: Address
    header: bytes  # the TO_WORKER header for this client, built once
    last_seen: float


@dataclass
class RelayMetrics:
    to_worker: Counter[int] = field(default_factory=Counter)  # datagrams forwarded, by worker id
    to_client: Counter[int] = field(default_factory=Counter)  # datagrams sent for a worker, by worker id
    drops: Counter[str] = field(default_factory=Counter)  # by reason
    routes_learned: int = 0
    routes_removed: Counter[str] = field(default_factory=Counter)  # by reason: capacity, idle


class RelayCore:
    """`receive_datagram` returns the one datagram to send for each one received, or None."""

    def __init__(self, workers: Mapping[int, Address], routing_secret: bytes, *,
                 max_routes: int = MAX_ROUTES, route_idle_timeout: float = ROUTE_IDLE_TIMEOUT) -> None:
        if not workers:
            raise ValueError("a relay needs at least one worker")
        if max_routes < 1:
            raise ValueError(f"max_routes {max_routes} must be at least 1")
        self.workers = dict(workers)
        self._worker_ids = {address: worker_id for worker_id, address in self.workers.items()}
        if len(self._worker_ids) != len(self.workers):
            raise ValueError("two workers share one address")
        self._secret = routing_secret
        self.max_routes = max_routes
        self.route_idle_timeout = route_idle_timeout
        self.routes: OrderedDict[Address, Route] = OrderedDict()  # least recently used first
        self.metrics = RelayMetrics()

    def receive_datagram(self, data: bytes, address: Address, now: float) -> tuple[bytes, Address] | None:
        worker_id = self._worker_ids.get(address)
        if worker_id is not None:
            return self._from_worker(worker_id, data, now)
        route = self.routes.get(address)
        if route is not None and now - route.last_seen > self.route_idle_timeout:
            del self.routes[address]
            self.metrics.routes_removed["idle"] += 1
            route = None
        if not data:
            return self._drop("empty_datagram")
        if len(data) > MAX_FORWARDED:
            return self._drop("too_large_to_forward")
        if data[0] < 4:  # RFC 7983: 0..3 is STUN
            target = self._stun_target(data)
            if isinstance(target, str):
                if route is None:
                    return self._drop(target)
            elif route is None or route.worker_id != target:
                # Routed by its ufrag alone; the worker's BIND reply, if any, makes the route.
                try:
                    head = protocol.header(Kind.TO_WORKER, address)
                except RelayProtocolError:  # e.g. an IPv6 address with a scope id
                    return self._drop("client_address_not_encodable")
                self.metrics.to_worker[target] += 1
                return head + data, self.workers[target]
        elif route is None:
            return self._drop("unrouted_not_stun")
        route.last_seen = now
        self.routes.move_to_end(address)
        self.metrics.to_worker[route.worker_id] += 1
        return route.header + data, route.worker_address

    def _stun_target(self, data: bytes) -> int | str:
        """The worker a STUN datagram's USERNAME routes to, or the reason it routes nowhere."""
        if len(data) < 20 or data[4:8] != _STUN_COOKIE:
            return "stun_malformed"
        try:
            username = stun.parse(data).get(stun.USERNAME)
        except stun.StunError:
            return "stun_malformed"
        if username is None:
            return "stun_no_username"
        worker_id = ufrag_worker(username.split(b":", 1)[0].decode("ascii", "replace"), self._secret)
        if worker_id is None:
            return "stun_ufrag_not_routable"
        if worker_id not in self.workers:
            return "stun_unknown_worker"
        return worker_id

    def _from_worker(self, worker_id: int, data: bytes, now: float) -> tuple[bytes, Address] | None:
        try:
            message = protocol.decode(data)
        except RelayProtocolError:
            return self._drop("worker_malformed")
        if message.kind is not Kind.TO_CLIENT:
            return self._drop("worker_wrong_kind")
        if message.bind:
            route = self.routes.get(message.client)
            if route is None or route.worker_id != worker_id:
                self._learn(message.client, worker_id, now)
        self.metrics.to_client[worker_id] += 1
        return message.payload, message.client

    def _learn(self, client: Address, worker_id: int, now: float) -> None:
        routes = self.routes
        routes.pop(client, None)
        while routes:
            oldest = next(iter(routes.values()))
            if now - oldest.last_seen > self.route_idle_timeout:
                reason = "idle"
            elif len(routes) >= self.max_routes:
                reason = "capacity"
            else:
                break
            routes.popitem(last=False)
            self.metrics.routes_removed[reason] += 1
        routes[client] = Route(worker_id, self.workers[worker_id], protocol.header(Kind.TO_WORKER, client), now)
        self.metrics.routes_learned += 1

    def _drop(self, reason: str) -> tuple[bytes, Address] | None:
        """Count a drop; returns None, `receive_datagram`'s answer for a datagram that goes nowhere."""
        self.metrics.drops[reason] += 1
        return None
