"""The relay's routing core between probe peers and two worker cores, all on a fake clock.

Workers are real ServerCores; what they send goes through the worker's RelayTransport, so
the BIND rule under test is the one the worker process uses.
"""
from __future__ import annotations

import os
import random

import pytest
from aioice import stun as aioice_stun

from reference_server.certificate import Certificate
from reference_server.core import CoreConfig, ServerCore
from reference_server.credentials import make_ufrag
from reference_server.relay import protocol
from reference_server.relay.protocol import Kind
from reference_server.relay.routing import RelayCore
from reference_server.shell.relay_worker import RelayTransport
from toolkit.peer import ProbePeer, RtpReceived, StunResponse

CERT = Certificate.generate()
SECRET = b"routing secret for the tests...."
PUBLIC = ("127.0.0.1", 3478)
WORKERS = {0: ("127.0.0.2", 5000), 1: ("127.0.0.3", 5000)}
A, B, C = ("127.0.0.1", 40000), ("127.0.0.1", 40001), ("127.0.0.1", 40002)


class Outbox:
    """A datagram transport that keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, addr) -> None:
        self.sent.append((data, addr))


class Cluster:
    """Peers ⇄ relay core ⇄ worker cores; `relay` can be replaced to model a relay restart."""

    def __init__(self, **relay_options) -> None:
        self.now = 1000.0
        self.relay_options = relay_options
        self.relay = RelayCore(WORKERS, SECRET, **relay_options)
        self.workers: dict[int, tuple[ServerCore, RelayTransport, Outbox]] = {}
        for worker_id in WORKERS:
            core = ServerCore(CoreConfig(advertise_address=PUBLIC[0], port=PUBLIC[1], worker_id=worker_id), CERT,
                              random_bytes=random.Random(worker_id).randbytes, routing_secret=SECRET)
            outbox = Outbox()
            self.workers[worker_id] = (core, RelayTransport(outbox, PUBLIC, core.sessions.by_address), outbox)
        self.peers: dict[tuple[str, int], ProbePeer] = {}
        self.to_clients: list[tuple[bytes, tuple[str, int]]] = []

    def connect(self, address, worker_id: int) -> ProbePeer:
        peer = ProbePeer(consent_interval=None, rng=random.Random(address[1]))
        _, answer = self.workers[worker_id][0].create_session(peer.create_offer(), self.now)
        peer.set_answer(answer)
        self.peers[address] = peer
        peer.start(self.now)
        self.pump()
        assert peer.state == "connected"
        return peer

    def send(self, data: bytes, source) -> None:
        """One datagram from `source` into the public port, and everything it causes."""
        self._into_relay(data, source)
        self.pump()

    def _into_relay(self, data: bytes, source) -> None:
        out = self.relay.receive_datagram(data, source, self.now)
        if out is None:
            return
        wrapped, destination = out
        if destination in WORKERS.values():
            worker_id = next(i for i, address in WORKERS.items() if address == destination)
            message = protocol.decode(wrapped)
            assert message.kind is Kind.TO_WORKER
            core, transport, _ = self.workers[worker_id]
            core.receive_datagram(message.payload, message.client, self.now)
            for data_out, addr in core.datagrams_to_send():
                transport.sendto(data_out, addr)
        else:
            self.to_clients.append(out)
            if destination in self.peers:
                self.peers[destination].receive_datagram(wrapped, PUBLIC, self.now)

    def pump(self) -> None:
        for _ in range(50):
            moved = False
            for address, peer in self.peers.items():
                for data, to in peer.datagrams_to_send():
                    assert to == PUBLIC
                    self._into_relay(data, address)
                    moved = True
            for worker_id, (_, _, outbox) in self.workers.items():
                sent, outbox.sent = outbox.sent, []
                for data, to in sent:
                    assert to == PUBLIC
                    self._into_relay(data, WORKERS[worker_id])
                    moved = True
            if not moved:
                return

    def restart_relay(self) -> None:
        self.relay = RelayCore(WORKERS, SECRET, **self.relay_options)

    def routes(self) -> dict[tuple[str, int], int]:
        return {address: route.worker_id for address, route in self.relay.routes.items()}


def events(peer, kind):
    found = []
    while (event := peer.next_event()) is not None:
        if isinstance(event, kind):
            found.append(event)
    return found


def echoed(cluster: Cluster, address, payload: bytes) -> list[bytes]:
    peer = cluster.peers[address]
    events(peer, RtpReceived)
    peer.send_rtp(payload, timestamp=960)
    cluster.pump()
    return [event.packet[12:] for event in events(peer, RtpReceived)]


def binding(ufrag: str, *, password: str, remote_ufrag: str = "peer") -> bytes:
    message = aioice_stun.Message(aioice_stun.Method.BINDING, aioice_stun.Class.REQUEST, attributes={
        "USERNAME": f"{ufrag}:{remote_ufrag}", "ICE-CONTROLLING": 1, "PRIORITY": 1})
    message.add_message_integrity(password.encode())
    message.add_fingerprint()
    return bytes(message)


def test_sessions_on_two_workers_each_get_only_their_own_echo():
    cluster = Cluster()
    cluster.connect(A, 0)
    cluster.connect(B, 1)
    assert cluster.routes() == {A: 0, B: 1}
    assert echoed(cluster, A, b"to A") == [b"to A"]
    assert echoed(cluster, B, b"to B") == [b"to B"]
    assert cluster.relay.metrics.to_worker[0] > 0 and cluster.relay.metrics.to_worker[1] > 0
    assert not cluster.relay.metrics.drops


def test_unauthenticated_traffic_creates_no_route():
    cluster = Cluster()
    core = cluster.workers[0][0]
    peer = ProbePeer(consent_interval=None)
    core.create_session(peer.create_offer(), cluster.now)
    session = next(iter(core.sessions.by_id.values()))
    attacker = ("127.0.0.1", 50000)
    cluster.send(b"\x80\x6f" + os.urandom(40), attacker)  # SRTP-looking
    cluster.send(b"\x16\xfe\xfd" + os.urandom(60), attacker)  # DTLS-looking
    cluster.send(os.urandom(30), ("127.0.0.1", 50001))
    cluster.send(binding("nobody's ufrag..", password="x" * 24), attacker)
    cluster.send(binding(session.ufrag, password="wrong password, 24 chars"), attacker)
    assert cluster.routes() == {}
    assert not cluster.relay.routes
    # The bad-password check reached the worker and its 401 reached the attacker, but no route was made.
    assert core.metrics.drops["stun_bad_integrity"] == 1
    [(reply, to)] = cluster.to_clients
    assert to == attacker and aioice_stun.parse_message(reply).attributes["ERROR-CODE"][0] == 401
    drops = cluster.relay.metrics.drops
    assert drops["unrouted_not_stun"] >= 2 and drops["stun_ufrag_not_routable"] == 1
    # The genuine credentials do route and bind.
    cluster.send(binding(session.ufrag, password=session.pwd, remote_ufrag=session.remote_ufrag), attacker)
    assert cluster.routes() == {attacker: 0}


def test_forged_or_foreign_ufrag_prefixes_do_not_route():
    cluster = Cluster()
    ufrag = make_ufrag(0, SECRET, os.urandom)
    for forged in ("01" + ufrag[2:],  # another worker's prefix: the tag no longer verifies
                   make_ufrag(1, b"another secret", os.urandom),
                   ufrag[:-1] + ("0" if ufrag[-1] != "0" else "1")):
        cluster.send(binding(forged, password="p" * 24), C)
    cluster.send(binding(make_ufrag(7, SECRET, os.urandom), password="p" * 24), C)  # genuine, but no worker 7
    assert cluster.relay.metrics.drops["stun_ufrag_not_routable"] == 3
    assert cluster.relay.metrics.drops["stun_unknown_worker"] == 1
    assert not cluster.relay.metrics.to_worker and not cluster.relay.routes


def test_stun_without_username_or_malformed_is_dropped_by_reason():
    cluster = Cluster()
    bare = aioice_stun.Message(aioice_stun.Method.BINDING, aioice_stun.Class.REQUEST)
    cluster.send(bytes(bare), C)
    cluster.send(bytes(bare)[:19], C)
    cluster.send(b"", C)
    assert dict(cluster.relay.metrics.drops) == {"stun_no_username": 1, "stun_malformed": 1, "empty_datagram": 1}


def test_route_cap_evicts_the_least_recently_used():
    cluster = Cluster(max_routes=2)
    peer_a = cluster.connect(A, 0)
    cluster.connect(B, 1)
    assert echoed(cluster, A, b"A is recent") == [b"A is recent"]
    cluster.connect(C, 0)
    assert cluster.routes() == {A: 0, C: 0}
    assert cluster.relay.metrics.routes_removed == {"capacity": 1}
    # B's media is now unrouted, until its next consent check carries the ufrag again.
    assert echoed(cluster, B, b"lost") == []
    assert cluster.relay.metrics.drops["unrouted_not_stun"] == 1
    peer_b = cluster.peers[B]
    cluster.send(peer_b.binding_request(), B)
    assert events(peer_b, StunResponse)
    assert echoed(cluster, B, b"back") == [b"back"]
    assert len(cluster.relay.routes) == 2 and peer_a.state == "connected"


def test_idle_routes_expire():
    cluster = Cluster(route_idle_timeout=60.0)
    cluster.connect(A, 0)
    cluster.now += 61
    assert echoed(cluster, A, b"late") == []
    assert cluster.relay.metrics.routes_removed == {"idle": 1} and not cluster.relay.routes


def test_relay_restart_loses_no_session():
    cluster = Cluster()
    peer = cluster.connect(A, 0)
    keys = peer.srtp_keys
    cluster.restart_relay()
    assert echoed(cluster, A, b"during the gap") == []
    cluster.send(peer.binding_request(), A)  # what the peer's next consent check sends
    assert cluster.routes() == {A: 0}
    assert echoed(cluster, A, b"resumed") == [b"resumed"]
    assert peer.state == "connected" and peer.srtp_keys is keys


def test_stun_from_a_routed_address_follows_its_ufrag():
    """A client that reuses its 5-tuple for a session on another worker is routed there."""
    cluster = Cluster()
    cluster.connect(A, 0)
    core_1 = cluster.workers[1][0]
    peer = ProbePeer(consent_interval=None)
    core_1.create_session(peer.create_offer(), cluster.now)
    session = next(iter(core_1.sessions.by_id.values()))
    cluster.send(binding(session.ufrag, password=session.pwd, remote_ufrag=session.remote_ufrag), A)
    assert cluster.routes() == {A: 1}


@pytest.mark.parametrize("wrapped, reason", [
    (b"not the relay protocol", "worker_malformed"),
    (protocol.encode(Kind.TO_WORKER, A, b"x"), "worker_wrong_kind"),
])
def test_bad_datagrams_from_a_worker_are_dropped(wrapped, reason):
    relay = RelayCore(WORKERS, SECRET)
    assert relay.receive_datagram(wrapped, WORKERS[0], 0.0) is None
    assert relay.metrics.drops == {reason: 1}


def test_unbound_replies_are_sent_but_only_bind_replies_route():
    relay = RelayCore(WORKERS, SECRET)
    assert relay.receive_datagram(protocol.encode(Kind.TO_CLIENT, A, b"401"), WORKERS[0], 0.0) == (b"401", A)
    assert not relay.routes
    assert relay.receive_datagram(protocol.encode(Kind.TO_CLIENT, A, b"ok", bind=True), WORKERS[1], 0.0) == (b"ok", A)
    assert relay.receive_datagram(b"\x80media", A, 1.0) == (protocol.encode(Kind.TO_WORKER, A, b"\x80media"), WORKERS[1])
