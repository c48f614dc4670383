"""The probe peer's parts on their own, without ProbePeer around them: two DTLS endpoints against
each other (their DtlsState from NEW to CLOSED or FAILED), SRTP keyed from what they export, and
the ICE agent completing on one answered check."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from aioice import stun

from toolkit.peer.dtls import (
    DtlsEndpoint,
    DtlsState,
    HandshakeCompleted,
    HandshakeFailed,
    self_signed_certificate,
    sha256_fingerprint,
)
from toolkit.peer.events import DtlsClosed, DtlsData, IceCompleted
from toolkit.peer.ice import IceAgent
from toolkit.peer.srtp import SrtpKeys, SrtpSession

RTP = bytes([0x80, 111, 0, 1]) + bytes(4) + (1234).to_bytes(4, "big") + b"payload"


def endpoint(role: str, remote_fingerprint: str, certificate, drops: Counter[str]) -> DtlsEndpoint:
    key, x509 = certificate
    return DtlsEndpoint(role=role, key=key, certificate=x509, srtp_profiles=("SRTP_AEAD_AES_128_GCM",),
                        fingerprint_algorithm="sha-256", remote_fingerprints=[remote_fingerprint],
                        keylog=lambda line: None, drops=drops)


def events_of(dtls: DtlsEndpoint) -> list[object]:
    events = []
    while (event := dtls.next_event()) is not None:
        events.append(event)
    return events


def exchange(first: DtlsEndpoint, second: DtlsEndpoint) -> None:
    """Carry datagrams both ways until both ends are quiet."""
    for _ in range(20):
        moved = False
        for sender, receiver in ((first, second), (second, first)):
            for datagram in sender.datagrams_to_send():
                moved = True
                if receiver.state in (DtlsState.HANDSHAKING, DtlsState.CONNECTED):
                    receiver.receive(datagram, 0.0)
        if not moved:
            return
    raise AssertionError("the endpoints never went quiet")


def pair(*, forged: bool = False) -> tuple[DtlsEndpoint, DtlsEndpoint, Counter[str]]:
    rng = random.Random(7)
    client_certificate, server_certificate = self_signed_certificate(rng), self_signed_certificate(rng)
    server_fingerprint = sha256_fingerprint(server_certificate[1])
    if forged:
        server_fingerprint = "00" + server_fingerprint[2:]
    drops: Counter[str] = Counter()
    client = endpoint("client", server_fingerprint, client_certificate, drops)
    server = endpoint("server", sha256_fingerprint(client_certificate[1]), server_certificate, drops)
    return client, server, drops


def test_two_endpoints_connect_key_srtp_carry_data_and_close():
    client, server, drops = pair()
    assert client.state is server.state is DtlsState.NEW
    server.start(0.0)
    client.start(0.0)
    assert client.state is server.state is DtlsState.HANDSHAKING
    exchange(client, server)
    assert client.state is server.state is DtlsState.CONNECTED
    [client_done], [server_done] = events_of(client), events_of(server)
    assert isinstance(client_done, HandshakeCompleted) and isinstance(server_done, HandshakeCompleted)
    assert client_done.srtp_profile == server_done.srtp_profile == "SRTP_AEAD_AES_128_GCM"
    assert client_done.keying_material == server_done.keying_material

    client_keys = SrtpKeys.from_keying_material(client_done.srtp_profile, client_done.keying_material, "client")
    server_keys = SrtpKeys.from_keying_material(server_done.srtp_profile, server_done.keying_material, "server")
    assert (client_keys.local, client_keys.remote) == (server_keys.remote, server_keys.local)
    sending, receiving = SrtpSession(client_keys, drops), SrtpSession(server_keys, drops)
    wire = sending.protect_rtp(RTP)
    assert receiving.unprotect(wire) == (False, RTP)
    assert receiving.unprotect(wire) is None and drops["srtp_unprotect_failed"] == 1  # a replay

    client.send(b"sctp")
    exchange(client, server)
    assert events_of(server) == [DtlsData(b"sctp")]
    client.close()
    exchange(client, server)
    assert client.state is server.state is DtlsState.CLOSED and events_of(server) == [DtlsClosed()]
    assert client.get_timer() is None and not drops["dtls_record_error"]


def test_a_certificate_that_does_not_match_fails_the_handshake():
    client, server, _ = pair(forged=True)
    server.start(0.0)
    client.start(0.0)
    exchange(client, server)
    assert client.state is DtlsState.FAILED and client.get_timer() is None
    [failed] = events_of(client)
    assert isinstance(failed, HandshakeFailed)
    assert failed.reason.startswith("DTLS: server certificate sha-256 fingerprint ")


@dataclass
class Credentials:
    ice_ufrag: str = "srv1abcd"
    ice_pwd: str = "serverpassword0123456789"


def test_the_agent_completes_on_an_answered_nominating_check_and_then_keeps_consent():
    agent = IceAgent(random.Random(3), Counter(), consent_interval=5.0)
    agent.remote_credentials = Credentials()
    agent.start([("127.0.0.1", 40000)], 0.0)
    [(request, addr)] = agent.datagrams_to_send()
    parsed = stun.parse_message(request)
    assert "USE-CANDIDATE" in parsed.attributes and parsed.attributes["USERNAME"] == f"srv1abcd:{agent.local_ufrag}"
    assert agent.is_checking(addr) and agent.get_timer() == 0.1  # the first retransmission
    reply = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, parsed.transaction_id,
                         {"XOR-MAPPED-ADDRESS": ("127.0.0.1", 50000)})
    reply.add_message_integrity(b"serverpassword0123456789")
    agent.receive_stun(bytes(reply), addr, 0.05)
    events = [agent.next_event(), agent.next_event()]
    assert events[1] == IceCompleted(addr, 0.05) and agent.selected == addr and not agent.is_checking(addr)
    assert 4.0 < agent.get_timer() < 6.1  # the first consent check, jittered
