"""The probe peer plays the DTLS role the answer leaves it: client for a=setup:passive, server for active."""

from __future__ import annotations

import struct

import pytest
from OpenSSL import SSL

from tests.toolkit.test_peer import (
    PEER_ADDR,
    SERVER_ADDR,
    DtlsServerEnd,
    answer_sdp,
    drain_events,
    make_certificate,
    new_peer,
    pump,
    sha256_fingerprint,
    stun_reply,
)
from toolkit.peer import DtlsClosed, DtlsConnected, IceCompleted, PeerError, PeerFailed, RtpReceived, StunResponse
from toolkit.peer.core import EARLY_DTLS_LIMIT
from toolkit.peer.offer import DtlsRoleError, parse_answer

OTHER_ADDR = ("127.0.0.1", 40001)


# -- negotiation -------------------------------------------------------------------------------

ROLE_TABLE = [
    # (dtls_role option, offered a=setup, answered a=setup, resulting role or the error)
    ("auto", "actpass", "active", "server"),
    ("auto", "actpass", "passive", "client"),
    ("auto", "actpass", "actpass", PeerError),
    ("client", "active", "passive", "client"),
    ("client", "active", "active", DtlsRoleError),
    ("client", "active", "actpass", PeerError),
    ("server", "passive", "active", "server"),
    ("server", "passive", "passive", DtlsRoleError),
    ("server", "passive", "actpass", PeerError),
]


@pytest.mark.parametrize(("option", "offered", "answered", "outcome"), ROLE_TABLE,
                         ids=[f"{o}-offers-{a}-answer-{b}" for o, a, b, _ in ROLE_TABLE])
def test_role_negotiation_table(option, offered, answered, outcome):
    peer = new_peer(dtls_role=option)
    assert f"a=setup:{offered}\r\n" in peer.create_offer()
    assert peer.dtls_role is None
    if isinstance(outcome, str):
        peer.set_answer(answer_sdp("AB:CD", setup=answered))
        assert peer.dtls_role == outcome
        return
    with pytest.raises(outcome) as caught:
        peer.set_answer(answer_sdp("AB:CD", setup=answered))
    if outcome is PeerError:  # an answerer's bug, not a role the caller forced: no DtlsRoleError
        assert not isinstance(caught.value, DtlsRoleError)
        assert str(caught.value) == ("answer has a=setup:actpass: an answer must choose a=setup:active or "
                                     "a=setup:passive (RFC 8842 §5.3, RFC 5763 §5)")
    else:
        side = "client" if option == "client" else "server"
        assert str(caught.value).startswith(f"answer has a=setup:{answered} to an offer of a=setup:{offered}: "
                                            f"both sides would be the DTLS {side}")
    assert peer.answer is None and peer.dtls_role is None


def test_unknown_dtls_role_is_refused():
    with pytest.raises(PeerError, match=r"^dtls_role 'both' is not one of auto, client, server$"):
        new_peer(dtls_role="both")


# -- the peer as DTLS server ----------------------------------------------------------------------


def start_as_server(peer, target: DtlsServerEnd) -> bytes:
    """Answer a=setup:active, start ICE; returns the nominating check (not yet answered)."""
    peer.set_answer(answer_sdp(target.fingerprint, setup="active"))
    peer.start(0.0)
    [(check, addr)] = peer.datagrams_to_send()
    assert addr == SERVER_ADDR
    return check


def test_server_role_takes_an_early_client_hello_and_carries_srtp_both_ways():
    peer = new_peer(ssrc=0x1234)
    target = DtlsServerEnd(client=True, client_fingerprint=peer.fingerprint)
    check = start_as_server(peer, target)
    for client_hello in target.start():  # overtakes the answer to the nominating check
        peer.receive_datagram(client_hello, SERVER_ADDR, 0.001)
    assert peer.state == "checking" and not peer.datagrams_to_send()
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.002)
    pump(peer, target, 0.002)
    events = drain_events(peer)
    assert [type(e) for e in events] == [StunResponse, IceCompleted, DtlsConnected]
    assert events[2].role == "server" and events[2].srtp_profile == "SRTP_AEAD_AES_128_GCM"
    assert peer.dtls_role == "server" and peer.state == "connected" and target.connected
    assert any(line.startswith(b"CLIENT_RANDOM ") for line in peer.keylog_lines)
    assert not peer.drops

    material = target.connection.export_keying_material(b"EXTRACTOR-dtls_srtp", 56)
    assert peer.srtp_keys.local == material[16:32] + material[44:56]  # server key, server salt
    assert peer.srtp_keys.remote == material[0:16] + material[32:44]

    peer.send_rtp(b"hello", timestamp=0)
    [(protected, _)] = peer.datagrams_to_send()
    assert target.srtp_rx.unprotect(protected)[12:] == b"hello"
    rtp = struct.pack("!BBHII", 0x80, 111, 7, 160, 0xBEEF) + b"back"
    peer.receive_datagram(target.srtp_tx.protect(rtp), SERVER_ADDR, 1.0)
    assert drain_events(peer) == [RtpReceived(rtp, SERVER_ADDR)]


def test_server_role_verifies_the_client_certificate_against_the_answer():
    peer = new_peer()
    target = DtlsServerEnd(client=True)
    impostor = sha256_fingerprint(make_certificate()[1])
    peer.set_answer(answer_sdp(impostor, setup="active"))
    peer.start(0.0)
    [(check, _)] = peer.datagrams_to_send()
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    for client_hello in target.start():
        peer.receive_datagram(client_hello, SERVER_ADDR, 0.0)
    pump(peer, target, 0.0)
    assert drain_events(peer)[-1] == PeerFailed(
        f"DTLS: client certificate sha-256 fingerprint {target.fingerprint} does not match the answer's {impostor}")
    assert peer.state == "failed" and not target.connected


def test_server_role_refuses_a_client_without_a_common_srtp_profile():
    peer = new_peer(srtp_profiles=("SRTP_AES128_CM_SHA1_80",))
    target = DtlsServerEnd(client=True, srtp_profiles=b"SRTP_AEAD_AES_128_GCM")
    check = start_as_server(peer, target)
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    for client_hello in target.start():
        peer.receive_datagram(client_hello, SERVER_ADDR, 0.0)
    pump(peer, target, 0.0)
    assert drain_events(peer)[-1] == PeerFailed("DTLS: the client offered no SRTP profile of ours "
                                                "(SRTP_AES128_CM_SHA1_80)")
    assert not target.connected


def test_early_dtls_is_kept_only_from_checked_addresses_and_only_a_few():
    peer = new_peer()
    target = DtlsServerEnd(client=True)
    check = start_as_server(peer, target)
    peer.receive_datagram(target.start()[0], OTHER_ADDR, 0.0)  # nobody we are checking
    for _ in range(EARLY_DTLS_LIMIT + 3):
        peer.receive_datagram(b"\x16\xfe\xfd" + bytes(10), SERVER_ADDR, 0.0)
    assert peer.drops["dtls_before_ice"] == 4
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    assert peer.state == "dtls"  # the kept garbage did not end the handshake

    client_role = new_peer()
    client_role.set_answer(answer_sdp("AB:CD", setup="passive"))
    client_role.start(0.0)
    client_role.receive_datagram(b"\x16\xfe\xfd" + bytes(10), SERVER_ADDR, 0.0)
    assert client_role.drops["dtls_before_ice"] == 1  # a DTLS client expects nothing before its ClientHello


def connected_as_server(**options):
    peer = new_peer(**options)
    target = DtlsServerEnd(client=True, client_fingerprint=peer.fingerprint)
    check = start_as_server(peer, target)
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    for client_hello in target.start():
        peer.receive_datagram(client_hello, SERVER_ADDR, 0.0)
    pump(peer, target, 0.0)
    drain_events(peer)
    assert peer.state == "connected"
    return peer, target


def test_server_role_close_both_ways():
    peer, target = connected_as_server()
    peer.close(1.0)
    for data, _ in peer.datagrams_to_send():
        target.feed(data)
    assert target.closed and peer.state == "closed"

    peer, target = connected_as_server()
    target.connection.shutdown()
    for data in target.pending():
        peer.receive_datagram(data, SERVER_ADDR, 1.0)
    assert drain_events(peer) == [DtlsClosed()] and peer.state == "closed"


def test_server_role_renegotiation_is_a_hello_request_a_refusing_client_declines():
    peer, target = connected_as_server()
    target.connection.set_options(SSL.OP_NO_RENEGOTIATION)
    peer.renegotiate()
    [(hello_request, _)] = peer.datagrams_to_send()
    assert hello_request[0] == 22 and hello_request[3:5] == b"\x00\x01"  # an encrypted handshake record
    assert peer.renegotiation_pending
    for reply in target.feed(hello_request):
        peer.receive_datagram(reply, SERVER_ADDR, 1.0)
    assert peer.renegotiation_pending and peer.renegotiation_refused
    assert peer.state == "connected" and not peer.datagrams_to_send()
    peer.send_rtp(b"still", timestamp=0)
    [(protected, _)] = peer.datagrams_to_send()
    assert target.srtp_rx.unprotect(protected)[12:] == b"still"


def test_lost_client_flight_ends_the_server_role_in_a_bounded_failure():
    peer = new_peer(consent_interval=None)
    target = DtlsServerEnd(client=True)
    check = start_as_server(peer, target)
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    assert peer.state == "dtls" and not peer.datagrams_to_send()
    for client_hello in target.start():
        peer.receive_datagram(client_hello, SERVER_ADDR, 0.0)
    assert peer.datagrams_to_send()  # the server flight; the client's answer to it never comes
    while (when := peer.get_timer()) is not None:
        peer.handle_timer(when)
        peer.datagrams_to_send()
    assert peer.state == "failed"
    assert drain_events(peer)[-1] == PeerFailed("DTLS handshake did not complete within 10 s")


def test_answer_parser_keeps_the_answers_setup():
    assert parse_answer(answer_sdp("AB:CD", setup="active")).setup == "active"
