"""Stateful property test against a live target: `rtcgate serve` over real UDP and HTTP.

A smaller machine than the in-process one: probe peers connect over WHIP and real sockets,
send media and expect their own echoes back, hostile traffic comes from fresh sockets, and
sessions are closed. After every step, GET /metrics must agree with the model: as many
sessions as connected peers, one bound tuple each (hostile traffic binds nothing), and no
internal errors. hypothesis is synchronous, so the asyncio side runs on a loop in a thread.
"""
from __future__ import annotations

import asyncio
import itertools
import re
import select
import socket
import struct
import threading
import urllib.request

from aioice import stun as aioice_stun
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from toolkit.peer import ProbePeer, RtpReceived
from toolkit.peer.shell.udp import PeerConnection, connect_whip

from .support import CLIENT_HELLO, DATABASE

MAX_CONNECTIONS = 3
STEP_TIMEOUT = 10.0
ECHO_TIMEOUT = 3.0
LISTEN = 0.02  # how long a hostile socket waits for an answer it should mostly not get
SETTINGS = settings(max_examples=30, stateful_step_count=15, deadline=None, database=DATABASE)


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


class LiveMachine(RuleBasedStateMachine):
    connections = Bundle("connections")

    def __init__(self, server, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.server = server
        self.loop = loop
        self.target = (server.udp_host, server.udp_port)
        self.live: list[PeerConnection] = []
        self.sockets: list[socket.socket] = []
        self.payloads = itertools.count()
        self.foreign: set[bytes] = set()  # payloads sent from tuples no session owns: never echoed

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(STEP_TIMEOUT)

    def hostile_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        self.sockets.append(sock)
        return sock

    def replies(self, sock: socket.socket) -> list[bytes]:
        out = []
        while select.select([sock], [], [], LISTEN)[0]:
            data, source = sock.recvfrom(65535)
            assert source[:2] == self.target, f"reply from {source}, not the server"
            out.append(data)
        return out

    @precondition(lambda self: len(self.live) < MAX_CONNECTIONS)
    @rule(target=connections)
    def connect(self):
        connection = self.run(connect_whip(self.server.whip_url, peer=ProbePeer(), timeout=5.0))
        self.live.append(connection)
        return connection

    @rule(connection=connections, count=st.integers(1, 5))
    def send_media(self, connection, count):
        payloads = [b"live-%d" % next(self.payloads) for _ in range(count)]
        self.run(self._echo(connection, payloads))

    async def _echo(self, connection: PeerConnection, payloads: list[bytes]) -> None:
        for i, payload in enumerate(payloads):
            connection.send_rtp(payload, timestamp=960 * i)
        expected = set(payloads)
        while expected:
            received = await connection.wait_for(RtpReceived, ECHO_TIMEOUT)
            payload = received.packet[12:]
            assert payload not in self.foreign, f"a payload sent from an unbound socket was echoed: {payload!r}"
            assert payload.startswith(b"live-"), f"echo carries a foreign payload {payload!r}"
            expected.discard(payload)

    @rule(kind=st.sampled_from(["garbage", "unknown_ufrag", "wrong_password", "no_integrity", "no_fingerprint",
                                "client_hello", "srtp_bleed"]),
          payload=st.binary(max_size=64), sockets=st.integers(1, 2))
    def hostile(self, kind, payload, sockets):
        """Traffic from fresh sockets: nothing may bind, and any answer is a no-larger STUN error."""
        source = self.live[0].peer if self.live else ProbePeer()
        for _ in range(sockets):
            sock = self.hostile_socket()
            if kind == "garbage":
                data = bytes([0x42]) + payload  # outside every RFC 9443 range: dropped by the demux
            elif kind == "client_hello":
                data = CLIENT_HELLO
            elif kind == "srtp_bleed":
                if source.srtp_keys is None:
                    continue
                bleed = b"bleed-%d" % next(self.payloads)
                self.foreign.add(bleed)
                header = struct.pack("!BBHII", 0x80, 111, 1, 0, 0xB1EED000 + len(self.foreign))
                data = source.protect_rtp(header + bleed)
            else:
                data = self._unauthenticated_check(source, kind)
            sock.sendto(data, self.target)
            replies = self.replies(sock)
            if kind in ("garbage", "client_hello", "srtp_bleed", "unknown_ufrag", "no_fingerprint"):
                assert replies == [], f"{kind} from a fresh socket was answered"
            for reply in replies:
                response = aioice_stun.parse_message(reply)
                assert response.message_class == aioice_stun.Class.ERROR, f"{kind} drew a {response.message_class}"
                assert response.transaction_id == data[8:20] and len(reply) <= len(data)

    def _unauthenticated_check(self, source: ProbePeer, kind: str) -> bytes:
        ufrag = source.answer.ice_ufrag if source.answer is not None and kind != "unknown_ufrag" else "nosuchufrag"
        username = f"{ufrag}:{source.local_ufrag}"
        if kind == "no_integrity":
            return source.binding_request(username=username, password="x", message_integrity=False)
        if kind == "no_fingerprint":
            return source.binding_request(username=username, password="w" * 24, fingerprint=False)
        return source.binding_request(username=username, password="w" * 24)

    @rule(connection=consumes(connections))
    def close(self, connection):
        self.run(connection.close())
        self.live.remove(connection)

    @invariant()
    def metrics_agree(self):
        with urllib.request.urlopen(self.server.metrics_url, timeout=5) as response:
            text = response.read().decode()
        assert metric(text, "rtcgate_drops_total", '{reason="internal_error"}') == 0, "internal error on the server"
        assert metric(text, "rtcgate_sessions") == len(self.live), "sessions gauge differs from the model"
        assert metric(text, "rtcgate_bound_tuples") == len(self.live), "something other than the peers bound a tuple"

    def teardown(self):
        for connection in self.live:
            self.run(connection.close())
        for sock in self.sockets:
            sock.close()


def test_live_server_machine(rtcgate_server):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-machine-loop", daemon=True)
    thread.start()
    try:
        run_state_machine_as_test(lambda: LiveMachine(rtcgate_server, loop), settings=SETTINGS)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
