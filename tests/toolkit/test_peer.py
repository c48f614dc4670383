"""toolkit.peer: its SDP, the sans-IO peer against a DTLS-SRTP server made right here with
pyOpenSSL and pylibsrtp on a fake clock, and connect_whip against an ICE-lite stand-in
served over loopback. Nothing here touches reference_server (docs/architecture.md, principle 3)."""

from __future__ import annotations

import asyncio
import datetime
import random
import re
import struct

import pylibsrtp
import pytest
import uvloop
from aiohttp import web
from aioice import stun
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from tests.support.http_app import serve_app
from toolkit.peer import (
    DtlsClosed,
    DtlsConnected,
    IceCompleted,
    PeerError,
    PeerFailed,
    ProbePeer,
    RtcpReceived,
    RtpReceived,
    StunRequestReceived,
    StunResponse,
    build_offer,
    connect_whip,
    parse_answer,
    whip_patch,
    whip_post,
)

SERVER_ADDR = ("127.0.0.1", 40000)
PEER_ADDR = ("127.0.0.1", 50000)
SERVER_UFRAG = "srv1abcd"
SERVER_PWD = "serverpassword0123456789"
PROFILE_KEYS = {"SRTP_AEAD_AES_128_GCM": (16, 12), "SRTP_AES128_CM_SHA1_80": (16, 14)}
LIBSRTP_PROFILES = {
    "SRTP_AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "SRTP_AES128_CM_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
}


# -- a DTLS-SRTP server end, independent of the peer's code ---------------------------------


def make_certificate() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-server")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(datetime.datetime(2020, 1, 1))
        .not_valid_after(datetime.datetime(2090, 1, 1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def sha256_fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


class DtlsServerEnd:
    """pyOpenSSL DTLS server on memory BIOs; after the handshake, pylibsrtp sessions."""

    def __init__(
        self,
        *,
        srtp_profiles: bytes = b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80",
        client_fingerprint: str | None = None,
        client: bool = False,
    ) -> None:
        """`client=True` plays the DTLS client instead (then `client_fingerprint` is the server's)."""
        key, self.certificate = make_certificate()
        self.fingerprint = sha256_fingerprint(self.certificate)
        self.client_fingerprint = client_fingerprint
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_options(SSL.OP_NO_QUERY_MTU)
        context.use_certificate(self.certificate)
        context.use_privatekey(key)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)
        context.set_tlsext_use_srtp(srtp_profiles)
        self.connection = SSL.Connection(context, None)
        if client:
            self.connection.set_connect_state()
        else:
            self.connection.set_accept_state()
        self.is_client = client
        self.connection.set_ciphertext_mtu(1200)
        self.connected = False
        self.closed = False
        self.handshake_error: SSL.Error | None = None
        self.srtp_profile: str | None = None
        self.srtp_tx: pylibsrtp.Session | None = None
        self.srtp_rx: pylibsrtp.Session | None = None

    def _verify(self, _connection, certificate, _error, depth, _ok) -> bool:
        if depth or self.client_fingerprint is None:
            return True
        return sha256_fingerprint(certificate.to_cryptography()) == self.client_fingerprint

    def feed(self, datagram: bytes) -> list[bytes]:
        """Take one datagram from the client; return what the server sends back."""
        self.connection.bio_write(datagram)
        if not self.connected:
            try:
                self.connection.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                self.handshake_error = exc
            else:
                self._connected()
        else:
            try:
                self.connection.recv(65536)
            except SSL.ZeroReturnError:
                self.closed = True
            except SSL.WantReadError:
                pass
        return self.pending()

    def start(self) -> list[bytes]:
        """Client role: the ClientHello."""
        try:
            self.connection.do_handshake()
        except SSL.WantReadError:
            pass
        return self.pending()

    def pending(self) -> list[bytes]:
        try:
            return [self.connection.bio_read(65536)]
        except SSL.WantReadError:
            return []

    def close_notify(self, peer: ProbePeer, now: float) -> None:
        """Send close_notify, and let `peer` read it."""
        self.connection.shutdown()
        for data in self.pending():
            peer.receive_datagram(data, SERVER_ADDR, now)

    def _connected(self) -> None:
        self.connected = True
        self.srtp_profile = self.connection.get_selected_srtp_profile().decode()
        if not self.srtp_profile:  # OpenSSL goes on without use_srtp when nothing matches
            return
        key, salt = PROFILE_KEYS[self.srtp_profile]
        material = self.connection.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (key + salt))
        client = material[:key] + material[2 * key : 2 * key + salt]
        server = material[key : 2 * key] + material[2 * key + salt :]
        profile = LIBSRTP_PROFILES[self.srtp_profile]
        if self.is_client:
            client, server = server, client  # own key first below
        self.srtp_tx = pylibsrtp.Session(
            pylibsrtp.Policy(key=server, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        )
        self.srtp_rx = pylibsrtp.Session(
            pylibsrtp.Policy(key=client, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
        )


def answer_sdp(
    fingerprint: str,
    *,
    host: str = SERVER_ADDR[0],
    port: int = SERVER_ADDR[1],
    setup: str = "passive",
    ufrag: str = SERVER_UFRAG,
    pwd: str = SERVER_PWD,
) -> str:
    return "\r\n".join([
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        "a=group:BUNDLE 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{pwd}",
        f"a=fingerprint:sha-256 {fingerprint}",
        f"a=setup:{setup}",
        "a=mid:0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        f"a=candidate:1 1 udp 2130706431 {host} {port} typ host",
        "a=end-of-candidates",
        "",
    ])


def stun_reply(request: bytes, addr, *, password: str = SERVER_PWD, error: tuple[int, str] | None = None) -> bytes:
    parsed = stun.parse_message(request)
    if error is None:
        reply = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, parsed.transaction_id,
                             {"XOR-MAPPED-ADDRESS": addr})
    else:
        reply = stun.Message(stun.Method.BINDING, stun.Class.ERROR, parsed.transaction_id,
                             {"ERROR-CODE": error})
    reply.add_message_integrity(password.encode())
    return bytes(reply)


def drain_events(peer: ProbePeer) -> list[object]:
    events = []
    while (event := peer.next_event()) is not None:
        events.append(event)
    return events


def pump(peer: ProbePeer, server: DtlsServerEnd, now: float) -> None:
    """Carry datagrams between peer and server until both are quiet."""
    for _ in range(20):
        outgoing = peer.datagrams_to_send()
        if not outgoing:
            return
        for data, addr in outgoing:
            assert addr == SERVER_ADDR
            for reply in server.feed(data):
                peer.receive_datagram(reply, SERVER_ADDR, now)
    raise AssertionError("peer and server never went quiet")


def connect(peer: ProbePeer, server: DtlsServerEnd, now: float = 0.0) -> list[object]:
    peer.set_answer(answer_sdp(server.fingerprint))
    peer.start(now)
    [(check, addr)] = peer.datagrams_to_send()
    assert addr == SERVER_ADDR
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, now + 0.002)
    pump(peer, server, now + 0.002)
    return drain_events(peer)


def new_peer(**options) -> ProbePeer:
    return ProbePeer(rng=random.Random(1), **options)


# -- SDP ------------------------------------------------------------------------------------


def test_offer_is_chromium_shaped_audio_with_bundle_and_no_candidates():
    offer = build_offer(ice_ufrag="abcd", ice_pwd="p" * 22, fingerprint="AA:BB")
    lines = offer.split("\r\n")
    assert offer.endswith("\r\n") and "\n" not in offer.replace("\r\n", "")
    assert lines[0] == "v=0"
    assert "a=group:BUNDLE 0" in lines
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111" in lines
    assert "a=rtpmap:111 opus/48000/2" in lines
    assert {"a=rtcp-mux", "a=setup:actpass", "a=fingerprint:sha-256 AA:BB"} <= set(lines)
    assert not any(line.startswith("a=candidate") for line in lines)
    assert not any(line.startswith("m=application") for line in lines)


def test_offer_with_data_channel_bundles_an_application_section():
    offer = build_offer(ice_ufrag="abcd", ice_pwd="p" * 22, fingerprint="AA:BB", datachannel=True, audio_pt=96)
    lines = offer.split("\r\n")
    assert "a=group:BUNDLE 0 1" in lines
    assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" in lines
    assert "a=sctp-port:5000" in lines
    assert "a=rtpmap:96 opus/48000/2" in lines
    assert lines.count("a=ice-ufrag:abcd") == 2


def test_offer_reads_back_through_the_answer_parser():
    offer = build_offer(ice_ufrag="uFrag", ice_pwd="x" * 24, fingerprint="0a:1B", audio_pt=109,
                        datachannel=True)
    parsed = parse_answer(offer)
    assert (parsed.ice_ufrag, parsed.ice_pwd) == ("uFrag", "x" * 24)
    assert (parsed.fingerprint_algorithm, parsed.fingerprint) == ("sha-256", "0A:1B")
    assert (parsed.setup, parsed.audio_payload_type, parsed.sctp_port) == ("actpass", 109, 5000)
    assert parsed.candidates == [] and parsed.ice_lite is False and parsed.raw == offer


def test_answer_parser_reads_lite_answer_and_keeps_udp_rtp_candidates_once():
    text = answer_sdp("AB:CD", host="127.0.0.1", port=3478).replace(
        "a=end-of-candidates",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 3478 typ host\r\n"
        "a=candidate:2 1 tcp 2130706431 127.0.0.1 443 typ host tcptype passive\r\n"
        "a=candidate:3 2 udp 2130706430 127.0.0.1 3479 typ host\r\n"
        "a=candidate:4 1 UDP 2130706429 ::1 3478 typ host",
    )
    answer = parse_answer(text.replace("\r\n", "\n"))
    assert answer.ice_lite is True
    assert answer.candidates == [("127.0.0.1", 3478), ("::1", 3478)]
    assert (answer.ice_ufrag, answer.ice_pwd, answer.setup) == (SERVER_UFRAG, SERVER_PWD, "passive")
    assert answer.audio_payload_type == 111 and answer.sctp_port is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "answer is empty"),
        ("\r\n\r\n", "answer is empty"),
        ("HTTP/1.1 200 OK\r\n", "answer starts with 'HTTP/1.1 200 OK', not 'v=0'"),
        ("v=0\r\na=ice-ufrag:x\r\n", "answer has no m= section"),
        (answer_sdp("AB:CD").replace("a=ice-ufrag:srv1abcd\r\n", ""), "answer has no a=ice-ufrag"),
        (answer_sdp("AB:CD").replace(f"a=ice-pwd:{SERVER_PWD}\r\n", "a=ice-pwd:\r\n"), "answer has no a=ice-pwd"),
        (answer_sdp("AB:CD").replace("a=fingerprint:sha-256 AB:CD\r\n", ""), "answer has no a=fingerprint"),
        (answer_sdp("AB:CD").replace("a=setup:passive\r\n", ""), "answer has no a=setup"),
        (answer_sdp("AB:CD").replace("sha-256 AB:CD", "sha-256 ABCD"),
         "a=fingerprint value 'sha-256 ABCD' is not '<hash> <hex:hex:...>'"),
        (answer_sdp("AB:CD", setup="holdconn"), "a=setup:holdconn is not active, passive or actpass"),
        (answer_sdp("AB:CD") + "a=ice-ufrag:other\r\n",
         "answer has two different a=ice-ufrag values: 'srv1abcd' and 'other'"),
        (answer_sdp("AB:CD").replace("typ host", "host"),
         "line 16: a=candidate:1 1 udp 2130706431 127.0.0.1 40000 host is not "
         "'<foundation> <component> <transport> <priority> <address> <port> typ <type>'"),
        (answer_sdp("AB:CD", port=0), "line 16: candidate port '0' is not a number in 1..65535"),
        (answer_sdp("AB:CD").replace("a=rtpmap:111", "a=rtpmap:300"),
         "line 15: a=rtpmap payload type '300' is not 0..127"),
        (answer_sdp("AB:CD") + "a=sctp-port:many\r\n", "a=sctp-port:many is not a number"),
    ],
)
def test_answer_parser_errors_are_exact(text, message):
    with pytest.raises(PeerError) as caught:
        parse_answer(text)
    assert str(caught.value) == message


def test_set_answer_refuses_roles_and_hashes_the_peer_cannot_play():
    with pytest.raises(PeerError, match=r"^answer has a=setup:actpass: an answer must choose"):
        new_peer().set_answer(answer_sdp("AB:CD", setup="actpass"))
    with pytest.raises(PeerError, match=r"^answer's a=fingerprint uses 'md5'; the probe peer verifies sha-1"):
        new_peer().set_answer(answer_sdp("AB:CD").replace("sha-256", "md5"))
    peer = new_peer()
    peer.set_answer(answer_sdp("AB:CD"))
    with pytest.raises(PeerError, match="^set_answer called twice"):
        peer.set_answer(answer_sdp("AB:CD"))


def test_unknown_or_empty_srtp_profiles_are_refused():
    with pytest.raises(PeerError, match=r"^unknown SRTP profile 'SRTP_NULL'; known: SRTP_AES128_CM_SHA1_80"):
        ProbePeer(srtp_profiles=("SRTP_NULL",))
    with pytest.raises(PeerError, match="^srtp_profiles is empty"):
        ProbePeer(srtp_profiles=())


# -- ICE ------------------------------------------------------------------------------------


def test_nominating_check_verifies_with_aioice():
    peer = new_peer()
    peer.set_answer(answer_sdp("AB:CD"))
    peer.start(0.0)
    [(data, addr)] = peer.datagrams_to_send()
    assert addr == SERVER_ADDR and peer.state == "checking"
    message = stun.parse_message(data)  # raises if FINGERPRINT is wrong
    assert "FINGERPRINT" in message.attributes
    assert message.message_method == stun.Method.BINDING and message.message_class == stun.Class.REQUEST
    assert message.check_message_integrity(SERVER_PWD.encode())
    assert not message.check_message_integrity(peer.local_pwd.encode())
    assert message.attributes["USERNAME"] == f"{SERVER_UFRAG}:{peer.local_ufrag}"
    assert "USE-CANDIDATE" in message.attributes
    assert message.attributes["ICE-CONTROLLING"] == peer.tie_breaker
    assert "ICE-CONTROLLED" not in message.attributes
    assert message.attributes["PRIORITY"] == (110 << 24) | (65535 << 8) | 255


def test_check_retransmits_on_a_doubling_schedule_then_fails():
    peer = new_peer()
    peer.set_answer(answer_sdp("AB:CD"))
    peer.start(0.0)
    [(first, _)] = peer.datagrams_to_send()
    sent_at = [0.0]
    while (when := peer.get_timer()) is not None:
        peer.handle_timer(when)
        for data, _ in peer.datagrams_to_send():
            assert data == first
            sent_at.append(when)
    assert sent_at == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 4.7])
    assert drain_events(peer) == [PeerFailed("ICE: no answer to 7 Binding requests to 127.0.0.1:40000 within 6.3 s")]
    assert peer.state == "failed"


def test_response_with_wrong_integrity_does_not_complete_ice():
    peer = new_peer()
    peer.set_answer(answer_sdp("AB:CD"))
    peer.start(0.0)
    [(check, _)] = peer.datagrams_to_send()
    forged = stun_reply(check, PEER_ADDR, password="not-the-server-password")
    peer.receive_datagram(forged, SERVER_ADDR, 0.01)
    [event] = drain_events(peer)
    assert isinstance(event, StunResponse) and event.raw == forged and not event.is_error
    assert peer.drops["stun_response_bad_integrity"] == 1 and peer.state == "checking"
    peer.receive_datagram(stun_reply(check, PEER_ADDR), ("127.0.0.1", 40001), 0.02)
    assert peer.drops["stun_response_wrong_address"] == 1 and peer.state == "checking"
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.05)
    events = drain_events(peer)
    assert events[-1] == IceCompleted(SERVER_ADDR, pytest.approx(0.05))
    assert peer.state == "dtls" and peer.remote == SERVER_ADDR


def test_error_response_to_the_nominating_check_fails_the_peer():
    peer = new_peer()
    peer.set_answer(answer_sdp("AB:CD"))
    peer.start(0.0)
    [(check, _)] = peer.datagrams_to_send()
    peer.receive_datagram(stun_reply(check, PEER_ADDR, error=(487, "Role Conflict")), SERVER_ADDR, 0.01)
    response, failed = drain_events(peer)
    assert (response.is_error, response.error_code) == (True, 487)
    assert failed == PeerFailed("ICE: Binding request to 127.0.0.1:40000 was answered with error 487 Role Conflict")
    assert peer.get_timer() is None


def test_authentic_check_from_the_server_is_answered_and_forged_one_is_not():
    peer = new_peer()
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST,
                           attributes={"USERNAME": f"{peer.local_ufrag}:{SERVER_UFRAG}", "ICE-CONTROLLED": 1})
    request.add_message_integrity(peer.local_pwd.encode())
    peer.receive_datagram(bytes(request), SERVER_ADDR, 0.0)
    [(data, addr)] = peer.datagrams_to_send()
    response = stun.parse_message(data)
    assert addr == SERVER_ADDR and response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == request.transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == SERVER_ADDR
    assert response.check_message_integrity(peer.local_pwd.encode())
    request.add_message_integrity(b"wrong")
    peer.receive_datagram(bytes(request), SERVER_ADDR, 0.0)
    assert peer.datagrams_to_send() == []
    assert [(type(e), e.answered) for e in drain_events(peer)] == [
        (StunRequestReceived, True), (StunRequestReceived, False)]
    assert peer.drops["stun_request_unauthenticated"] == 1


def test_crafted_binding_request_carries_what_the_test_asks_for():
    peer = new_peer()
    peer.set_answer(answer_sdp("AB:CD"))
    data = peer.binding_request(use_candidate=False, controlling=False, password="guess",
                                extra_attributes=[("SOFTWARE", "probe"), (0x0011, b"\x01\x02\x03")])
    message = stun.parse_message(data)
    assert message.check_message_integrity(b"guess") and not message.check_message_integrity(SERVER_PWD.encode())
    assert message.attributes["ICE-CONTROLLED"] == peer.tie_breaker and "USE-CANDIDATE" not in message.attributes
    assert message.attributes["SOFTWARE"] == "probe"
    assert b"\x00\x11\x00\x03\x01\x02\x03\x00" in data  # unknown attribute, padded, before MI
    assert data.index(b"\x00\x11\x00\x03") < data.index(b"\x00\x08\x00\x14")
    bare = stun.parse_message(peer.binding_request(message_integrity=False, fingerprint=False))
    assert "MESSAGE-INTEGRITY" not in bare.attributes and "FINGERPRINT" not in bare.attributes
    assert peer.datagrams_to_send() == [] and peer.state == "new"
    with pytest.raises(PeerError, match="^binding_request needs the answer's ice-ufrag and ice-pwd"):
        new_peer().binding_request()


# -- DTLS and SRTP --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer_profiles", "expected"),
    [
        (("SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80"), "SRTP_AEAD_AES_128_GCM"),
        (("SRTP_AES128_CM_SHA1_80",), "SRTP_AES128_CM_SHA1_80"),
    ],
)
def test_dtls_client_and_srtp_both_ways(peer_profiles, expected):
    peer = new_peer(srtp_profiles=peer_profiles, ssrc=0x1234, rtp_sequence_start=65534)
    server = DtlsServerEnd(client_fingerprint=peer.fingerprint)
    events = connect(peer, server)
    assert [type(e) for e in events] == [StunResponse, IceCompleted, DtlsConnected]
    assert events[2].srtp_profile == expected and events[2].cipher
    assert server.connected and server.srtp_profile == expected and peer.state == "connected"
    assert any(line.startswith(b"CLIENT_RANDOM ") for line in peer.keylog_lines)

    for index in range(3):  # crosses the sequence-number wrap
        peer.send_rtp(b"frame%d" % index, timestamp=960 * index, marker=index == 0)
    packets = [server.srtp_rx.unprotect(data) for data, _ in peer.datagrams_to_send()]
    headers = [struct.unpack("!BBHII", packet[:12]) for packet in packets]
    assert headers == [(0x80, 0x80 | 111, 65534, 0, 0x1234), (0x80, 111, 65535, 960, 0x1234),
                       (0x80, 111, 0, 1920, 0x1234)]
    assert [packet[12:] for packet in packets] == [b"frame0", b"frame1", b"frame2"]

    rtp = struct.pack("!BBHII", 0x80, 111, 7, 160, 0xBEEF) + b"echo"
    receiver_report = struct.pack("!BBHI", 0x80, 201, 1, 0xBEEF)
    peer.receive_datagram(server.srtp_tx.protect(rtp), SERVER_ADDR, 1.0)
    peer.receive_datagram(server.srtp_tx.protect_rtcp(receiver_report), SERVER_ADDR, 1.0)
    assert drain_events(peer) == [RtpReceived(rtp, SERVER_ADDR), RtcpReceived(receiver_report, SERVER_ADDR)]

    peer.send_rtcp(receiver_report)
    [(protected, _)] = peer.datagrams_to_send()
    assert server.srtp_rx.unprotect_rtcp(protected) == receiver_report


def test_srtp_keys_follow_rfc5764_layout():
    peer = new_peer()
    server = DtlsServerEnd()
    connect(peer, server)
    material = server.connection.export_keying_material(b"EXTRACTOR-dtls_srtp", 56)
    assert peer.srtp_keys.profile == "SRTP_AEAD_AES_128_GCM"
    assert peer.srtp_keys.local == material[0:16] + material[32:44]
    assert peer.srtp_keys.remote == material[16:32] + material[44:56]


def test_server_certificate_must_match_the_answers_fingerprint():
    peer = new_peer()
    server = DtlsServerEnd()
    impostor = sha256_fingerprint(make_certificate()[1])
    peer.set_answer(answer_sdp(impostor))
    peer.start(0.0)
    [(check, _)] = peer.datagrams_to_send()
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    pump(peer, server, 0.0)
    failed = drain_events(peer)[-1]
    assert failed == PeerFailed(
        f"DTLS: server certificate sha-256 fingerprint {server.fingerprint} does not match "
        f"the answer's {impostor}"
    )
    assert peer.state == "failed" and not server.connected
    with pytest.raises(PeerError, match=r"^send_rtp in state 'failed': SRTP needs a connected peer$"):
        peer.send_rtp(b"x", timestamp=0)


def test_lost_server_flight_ends_in_a_bounded_handshake_failure():
    peer = new_peer(consent_interval=None)
    peer.set_answer(answer_sdp(DtlsServerEnd().fingerprint))
    peer.start(0.0)
    [(check, _)] = peer.datagrams_to_send()
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    [(client_hello, _)] = peer.datagrams_to_send()
    assert client_hello[0] == 22 and peer.state == "dtls"
    assert 0.0 < peer.get_timer() <= 1.0  # OpenSSL's first DTLS retransmission timeout
    while (when := peer.get_timer()) is not None:
        peer.handle_timer(when)
        peer.datagrams_to_send()
    assert when is None and peer.state == "failed"
    assert drain_events(peer)[-1] == PeerFailed("DTLS handshake did not complete within 10 s")


def test_no_common_srtp_profile_fails_the_peer():
    peer = new_peer(srtp_profiles=("SRTP_AES128_CM_SHA1_80",))
    server = DtlsServerEnd(srtp_profiles=b"SRTP_AEAD_AES_128_GCM")
    events = connect(peer, server)
    assert events[-1] == PeerFailed("DTLS: the server selected no SRTP profile (use_srtp gave '')")
    assert server.connected and server.srtp_profile == "" and peer.state == "failed"


def test_close_sends_close_notify_and_server_close_is_reported():
    peer = new_peer()
    server = DtlsServerEnd()
    connect(peer, server)
    peer.close(2.0)
    for data, _ in peer.datagrams_to_send():
        server.feed(data)
    assert server.closed and peer.state == "closed" and peer.get_timer() is None

    peer = new_peer()
    server = DtlsServerEnd()
    connect(peer, server)
    server.close_notify(peer, 2.0)
    assert drain_events(peer) == [DtlsClosed()] and peer.state == "closed"


def test_consent_checks_keep_the_session_and_their_absence_fails_it():
    peer = new_peer()
    server = DtlsServerEnd()
    connect(peer, server)
    when = peer.get_timer()
    assert 4.0 <= when <= 6.0
    peer.handle_timer(when)
    [(data, addr)] = peer.datagrams_to_send()
    consent = stun.parse_message(data)
    assert addr == SERVER_ADDR and "USE-CANDIDATE" not in consent.attributes
    peer.receive_datagram(stun_reply(data, PEER_ADDR), SERVER_ADDR, when + 0.01)
    drain_events(peer)
    answered_at, failed_at = when + 0.01, None
    while peer.get_timer() is not None:
        failed_at = peer.get_timer()
        peer.handle_timer(failed_at)
        peer.datagrams_to_send()
    assert peer.state == "failed" and failed_at == pytest.approx(answered_at + 30.0)
    assert drain_events(peer) == [PeerFailed("ICE consent expired: no consent check answered for 30 s")]


def test_garbage_never_raises_and_is_counted():
    peer = new_peer()
    server = DtlsServerEnd()
    connect(peer, server)
    rng = random.Random(5)
    garbage = [b"", b"\x00", b"\x01" * 19, b"\x00\x01\x00\x08" + b"\x21\x12\xa4\x42" + bytes(12),
               b"\x16\xfe\xfd" + bytes(10), b"\x80" * 12, b"\x90\xc8" + bytes(30), b"\xff" * 50]
    garbage += [bytes([first]) + rng.randbytes(rng.randrange(0, 80)) for first in range(256)]
    for data in garbage:
        peer.receive_datagram(data, SERVER_ADDR, 3.0)
        peer.receive_datagram(data, ("127.0.0.1", 1), 3.0)
    assert peer.state == "connected"
    assert not any(isinstance(e, (RtpReceived, RtcpReceived, PeerFailed)) for e in drain_events(peer))
    assert peer.drops["empty"] == 2 and peer.drops["unknown_first_byte"] >= 2 * (256 - 4 - 44 - 64)
    assert peer.drops["srtp_unprotect_failed"] > 0 and peer.drops["dtls_wrong_address"] > 0
    peer.send_rtp(b"still fine", timestamp=0)
    [(data, _)] = peer.datagrams_to_send()
    assert server.srtp_rx.unprotect(data)[12:] == b"still fine"


def test_media_before_keys_is_refused_and_dropped():
    peer = new_peer()
    with pytest.raises(PeerError, match=r"^send_rtp in state 'new': SRTP needs a connected peer$"):
        peer.send_rtp(b"x", timestamp=0)
    with pytest.raises(PeerError, match=r"^protect_rtp in state 'new': no SRTP keys yet$"):
        peer.protect_rtp(b"\x80" * 12)
    with pytest.raises(PeerError, match="^send_raw needs an address"):
        peer.send_raw(b"x")
    with pytest.raises(PeerError, match="^start before set_answer"):
        peer.start(0.0)
    peer.receive_datagram(b"\x80\x6f" + bytes(30), SERVER_ADDR, 0.0)
    peer.receive_datagram(b"\x16\xfe\xfd" + bytes(30), SERVER_ADDR, 0.0)
    assert peer.drops == {"srtp_before_keys": 1, "dtls_before_ice": 1}


# -- connect_whip against an ICE-lite stand-in on loopback ----------------------------------


class LiteStandIn(asyncio.DatagramProtocol):
    """A one-session ICE-lite echo server: aioice STUN, pyOpenSSL DTLS, pylibsrtp echo."""

    echo_ssrc = 0x5EED5EED

    def __init__(self) -> None:
        self.ufrag, self.pwd = "standin1", "standinpassword-0123456789"
        self.dtls: DtlsServerEnd | None = None
        self.remote = None
        self.checks = 0
        self.deleted = False
        self.echo_sequence = 100

    def connection_made(self, transport) -> None:
        self.transport = transport

    def answer(self, offer: str, host: str, port: int) -> str:
        client_fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", offer).group(1)
        self.client_ufrag = re.search(r"a=ice-ufrag:(\S+)", offer).group(1)
        self.dtls = DtlsServerEnd(client_fingerprint=client_fingerprint)
        return answer_sdp(self.dtls.fingerprint, host=host, port=port, ufrag=self.ufrag, pwd=self.pwd)

    def datagram_received(self, data: bytes, addr) -> None:
        if data[0] < 4:
            self._check(data, addr)
        elif addr != self.remote:
            return
        elif 19 < data[0] < 64:
            for reply in self.dtls.feed(data):
                self.transport.sendto(reply, addr)
        elif 127 < data[0] < 192 and self.dtls.srtp_rx is not None and not 191 < data[1] < 224:
            packet = self.dtls.srtp_rx.unprotect(data)
            self.echo_sequence += 1
            echoed = (packet[:2] + struct.pack("!H", self.echo_sequence) + packet[4:8]
                      + struct.pack("!I", self.echo_ssrc) + packet[12:])
            self.transport.sendto(self.dtls.srtp_tx.protect(echoed), addr)

    def _check(self, data: bytes, addr) -> None:
        request = stun.parse_message(data)
        if (request.attributes.get("USERNAME") != f"{self.ufrag}:{self.client_ufrag}"
                or not request.check_message_integrity(self.pwd.encode())):
            return
        self.checks += 1
        if "USE-CANDIDATE" in request.attributes:
            self.remote = addr
        self.transport.sendto(stun_reply(data, addr, password=self.pwd), addr)


async def serve_stand_in():
    loop = asyncio.get_running_loop()
    stand_in = LiteStandIn()
    transport, _ = await loop.create_datagram_endpoint(lambda: stand_in, local_addr=("127.0.0.1", 0))
    udp_port = transport.get_extra_info("sockname")[1]

    async def post(request: web.Request) -> web.Response:
        if request.content_type != "application/sdp":
            return web.Response(status=415, text="offer must be application/sdp")
        answer = stand_in.answer(await request.text(), "127.0.0.1", udp_port)
        return web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": "/whip/sessions/1"})

    async def delete(request: web.Request) -> web.Response:
        stand_in.deleted = True
        return web.Response(status=200)

    async def reject(request: web.Request) -> web.Response:
        return web.Response(status=403, text="no entry")

    app = web.Application()
    app.router.add_post("/whip", post)
    app.router.add_delete("/whip/sessions/1", delete)
    app.router.add_route("*", "/reject", reject)
    runner, base_url = await serve_app(app)
    return stand_in, transport, runner, base_url, udp_port


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop],
                         ids=["asyncio", "uvloop"])
def test_connect_whip_end_to_end_against_a_lite_stand_in(loop_factory):
    async def scenario():
        stand_in, transport, runner, base_url, udp_port = await serve_stand_in()
        try:
            connection = await connect_whip(f"{base_url}/whip", peer=new_peer(ssrc=0xABCD), timeout=5.0)
            assert connection.location == f"{base_url}/whip/sessions/1"
            assert connection.ice_completed.remote == ("127.0.0.1", udp_port)
            assert connection.dtls_connected.srtp_profile == "SRTP_AEAD_AES_128_GCM"
            assert stand_in.remote == connection.local_addr and stand_in.checks == 1
            for index in range(50):
                connection.send_rtp(b"probe-%02d" % index, timestamp=960 * index)
            echoed = [await connection.wait_for(RtpReceived, 5.0) for _ in range(50)]
            assert sorted(e.packet[12:] for e in echoed) == [b"probe-%02d" % i for i in range(50)]
            assert {struct.unpack("!I", e.packet[8:12])[0] for e in echoed} == {LiteStandIn.echo_ssrc}
            assert {e.addr for e in echoed} == {("127.0.0.1", udp_port)}
            await connection.close()
            await asyncio.sleep(0.05)  # let close_notify arrive
            assert stand_in.deleted and stand_in.dtls.closed
            assert connection.peer.state == "closed" and connection.transport.is_closing()
        finally:
            await runner.cleanup()
            transport.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(asyncio.wait_for(scenario(), 20))


def test_whip_errors_carry_status_and_body():
    async def scenario():
        stand_in, transport, runner, base_url, _ = await serve_stand_in()
        try:
            with pytest.raises(PeerError) as caught:
                await whip_post(f"{base_url}/reject", "v=0\r\n")
            assert str(caught.value) == f"WHIP POST {base_url}/reject answered 403 Forbidden: no entry"
            assert (caught.value.status, caught.value.body) == (403, "no entry")
            with pytest.raises(PeerError, match=rf"^WHIP PATCH {base_url}/reject answered 403 Forbidden"):
                await whip_patch(f"{base_url}/reject", "a=ice-ufrag:x\r\n")
            with pytest.raises(PeerError) as caught:
                await connect_whip(f"{base_url}/missing", timeout=2.0)
            assert caught.value.status == 404
        finally:
            await runner.cleanup()
            transport.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_connect_whip_fails_cleanly_when_nobody_answers_checks():
    async def scenario():
        stand_in, transport, runner, base_url, _ = await serve_stand_in()
        transport.close()  # the answer's candidate now leads nowhere
        try:
            with pytest.raises(PeerError, match=r"^no IceCompleted within .* \(peer state 'checking'\)$"):
                await connect_whip(f"{base_url}/whip", timeout=0.5)
            assert stand_in.deleted
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(scenario(), 20))
