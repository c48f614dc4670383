"""In-memory DTLS pairs on a fake clock; the only real time spent is one OpenSSL retransmit
timeout."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import pytest
from OpenSSL import SSL

from reference_server.certificate import Certificate
from reference_server.dtls import (
    SRTP_PROFILES,
    ApplicationData,
    Closed,
    DtlsContext,
    DtlsEndpoint,
    DtlsError,
    DtlsState,
    HandshakeCompleted,
    HandshakeFailed,
)

SERVER_CERT = Certificate.generate(common_name="server")
CLIENT_CERT = Certificate.generate(common_name="client")
STRANGER_CERT = Certificate.generate(common_name="stranger")

KEY_SALT_LENGTHS = {"SRTP_AES128_CM_SHA1_80": (16, 14), "SRTP_AEAD_AES_128_GCM": (16, 12)}


def make_pair(
    *,
    server_profiles: Sequence[str] = SRTP_PROFILES,
    client_profiles: Sequence[str] = SRTP_PROFILES,
    server_expects: Certificate = CLIENT_CERT,
    client_expects: Certificate = SERVER_CERT,
    mtu: int = 1200,
    server_keylog: list[bytes] | None = None,
    client_keylog: list[bytes] | None = None,
) -> tuple[DtlsEndpoint, DtlsEndpoint]:
    server_context = DtlsContext(
        SERVER_CERT,
        srtp_profiles=server_profiles,
        keylog=None if server_keylog is None else server_keylog.append,
    )
    client_context = DtlsContext(
        CLIENT_CERT,
        srtp_profiles=client_profiles,
        keylog=None if client_keylog is None else client_keylog.append,
    )
    server = DtlsEndpoint(server_context, [("sha-256", server_expects.fingerprint())], mtu=mtu)
    client = DtlsEndpoint(
        client_context, [("sha-256", client_expects.fingerprint())], is_server=False, mtu=mtu
    )
    return client, server


def pump(client: DtlsEndpoint, server: DtlsEndpoint, now: float = 0.0, rounds: int = 6) -> None:
    for _ in range(rounds):
        for datagram in client.datagrams_to_send():
            server.receive_datagram(datagram, now)
        for datagram in server.datagrams_to_send():
            client.receive_datagram(datagram, now)


def record(content_type: int, body: bytes, *, epoch: int = 0, length: int | None = None) -> bytes:
    """A DTLS 1.2 record (RFC 6347 §4.1), sequence number 0; `length` overrides the real one."""
    header = bytes([content_type, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + bytes(6)
    return header + (len(body) if length is None else length).to_bytes(2, "big") + body


def events(endpoint: DtlsEndpoint) -> list[object]:
    drained = []
    while (event := endpoint.next_event()) is not None:
        drained.append(event)
    return drained


Handshake = tuple[DtlsEndpoint, DtlsEndpoint, HandshakeCompleted, HandshakeCompleted]


def handshake(**options: object) -> Handshake:
    client, server = make_pair(**options)  # type: ignore[arg-type]
    client.start(0.0)
    pump(client, server)
    [client_done] = events(client)
    [server_done] = events(server)
    assert isinstance(client_done, HandshakeCompleted)
    assert isinstance(server_done, HandshakeCompleted)
    return client, server, client_done, server_done


def raw_client(srtp_profiles: bytes) -> SSL.Connection:
    """A plain pyOpenSSL client that trusts any server and goes on where DtlsEndpoint stops."""
    context = SSL.Context(SSL.DTLS_METHOD)
    context.use_certificate(CLIENT_CERT.x509)
    context.use_privatekey(CLIENT_CERT.private_key)
    context.set_tlsext_use_srtp(srtp_profiles)
    context.set_verify(SSL.VERIFY_PEER, lambda *_: True)
    connection = SSL.Connection(context, None)
    connection.set_connect_state()
    return connection


def pump_raw(connection: SSL.Connection, server: DtlsEndpoint, now: float = 0.0) -> None:
    for _ in range(6):
        try:
            connection.do_handshake()
        except SSL.Error:
            pass  # waiting for the server, or refused by it
        try:
            server.receive_datagram(connection.bio_read(65536), now)
        except SSL.WantReadError:
            pass
        for datagram in server.datagrams_to_send():
            connection.bio_write(datagram)


def test_handshake_completes_with_identical_keying_material() -> None:
    client, server, client_done, server_done = handshake()
    assert client.state is server.state is DtlsState.CONNECTED
    assert client_done == server_done
    assert server_done.srtp_profile == "SRTP_AEAD_AES_128_GCM"  # the server's first choice
    assert len(server_done.keying_material) == 2 * (16 + 12)
    assert server_done.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert server_done.version == "DTLSv1.2"
    assert server.dropped == client.dropped == 0


@pytest.mark.parametrize("profile", SRTP_PROFILES)
def test_each_profile_can_be_forced_by_the_client(profile: str) -> None:
    _, _, client_done, server_done = handshake(client_profiles=[profile])
    key_length, salt_length = KEY_SALT_LENGTHS[profile]
    assert client_done.srtp_profile == server_done.srtp_profile == profile
    assert client_done.keying_material == server_done.keying_material
    assert len(server_done.keying_material) == 2 * (key_length + salt_length)


def test_server_preference_wins_over_client_order() -> None:
    _, _, _, server_done = handshake(
        client_profiles=["SRTP_AES128_CM_SHA1_80", "SRTP_AEAD_AES_128_GCM"]
    )
    assert server_done.srtp_profile == "SRTP_AEAD_AES_128_GCM"


def test_server_rejects_a_client_certificate_that_does_not_match_the_offer() -> None:
    client, server = make_pair(server_expects=STRANGER_CERT)
    client.start(0.0)
    pump(client, server)
    assert server.state is DtlsState.FAILED
    assert events(server) == [
        HandshakeFailed("client certificate fingerprint does not match the offer's a=fingerprint")
    ]
    # The refusal reached the client as a fatal alert.
    assert client.state is DtlsState.FAILED
    assert events(client) == [HandshakeFailed("tlsv1 alert unknown ca")]


def test_client_rejects_a_server_certificate_that_does_not_match_the_answer() -> None:
    client, server = make_pair(client_expects=STRANGER_CERT)
    client.start(0.0)
    pump(client, server)
    assert events(client) == [
        HandshakeFailed("server certificate fingerprint does not match the answer's a=fingerprint")
    ]
    assert server.state is DtlsState.FAILED
    assert not any(isinstance(event, HandshakeCompleted) for event in events(server))


def test_fingerprints_compare_case_insensitively_under_their_own_algorithm() -> None:
    server_context = DtlsContext(SERVER_CERT)
    client_context = DtlsContext(CLIENT_CERT)
    server = DtlsEndpoint(
        server_context,
        [("md5", "00:11"), ("SHA-1", CLIENT_CERT.fingerprint("sha-1").lower())],
    )
    client = DtlsEndpoint(
        client_context, [("sha-512", SERVER_CERT.fingerprint("sha-512"))], is_server=False
    )
    client.start(0.0)
    pump(client, server)
    assert server.state is client.state is DtlsState.CONNECTED


def test_remote_fingerprints_need_a_supported_algorithm() -> None:
    with pytest.raises(DtlsError) as caught:
        DtlsEndpoint(DtlsContext(SERVER_CERT), [("md5", "00:11")])
    assert str(caught.value) == (
        "remote_fingerprints has no entry with a supported hash algorithm "
        "(sha-1, sha-224, sha-256, sha-384, sha-512)"
    )


def test_no_common_srtp_profile_fails_both_sides() -> None:
    client, server = make_pair(
        server_profiles=["SRTP_AEAD_AES_128_GCM"], client_profiles=["SRTP_AES128_CM_SHA1_80"]
    )
    client.start(0.0)
    pump(client, server)
    assert client.state is server.state is DtlsState.FAILED
    # The server answered without use_srtp; the client noticed and sent a fatal alert.
    assert events(client) == [
        HandshakeFailed(
            "no common SRTP protection profile (this side accepts SRTP_AES128_CM_SHA1_80)"
        )
    ]
    [server_failure] = events(server)
    assert isinstance(server_failure, HandshakeFailed)


def test_server_refuses_a_client_that_ignores_the_missing_srtp_profile() -> None:
    server = DtlsEndpoint(DtlsContext(SERVER_CERT), [("sha-256", CLIENT_CERT.fingerprint())])
    connection = raw_client(b"SRTP_AES128_CM_SHA1_32")
    pump_raw(connection, server)
    assert server.state is DtlsState.FAILED
    assert events(server) == [
        HandshakeFailed(
            "no common SRTP protection profile "
            "(this side accepts SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80)"
        )
    ]


def test_lost_flight_is_retransmitted_after_the_timer() -> None:
    client, server = make_pair()
    client.start(100.0)
    client.datagrams_to_send()  # the ClientHello is lost
    deadline = client.get_timer()
    assert deadline is not None and 100.0 < deadline <= 101.0
    # OpenSSL's retransmit timer reads the real clock: wait out its first timeout (about 1 s).
    time.sleep(deadline - 100.0)
    client.handle_timer(deadline)
    retransmitted = client.datagrams_to_send()
    assert retransmitted
    for datagram in retransmitted:
        server.receive_datagram(datagram, deadline)
    pump(client, server, now=deadline)
    assert client.state is server.state is DtlsState.CONNECTED


def test_handle_timer_before_openssl_timeout_sends_nothing() -> None:
    client, _ = make_pair()
    client.start(0.0)
    client.datagrams_to_send()
    client.handle_timer(0.5)
    assert client.datagrams_to_send() == []
    assert client.state is DtlsState.HANDSHAKING


def test_reordered_and_duplicated_datagrams_complete_the_handshake() -> None:
    """Handshake fragments arrive backwards and twice; the datagram with ChangeCipherSpec comes
    last (a CCS that overtakes the handshake is dropped by OpenSSL and recovered only by a
    retransmission)."""
    client, server = make_pair(mtu=256)
    client.start(0.0)
    fragmented = False
    for _ in range(6):
        for sender, receiver in ((client, server), (server, client)):
            flight = sender.datagrams_to_send()
            fragmented = fragmented or len(flight) > 2
            body, last = flight[:-1], flight[-1:]
            for datagram in list(reversed(body)) + body + last + last:
                receiver.receive_datagram(datagram, 0.0)
    assert fragmented
    assert client.state is server.state is DtlsState.CONNECTED
    assert [type(event) for event in events(server)] == [HandshakeCompleted]
    assert [type(event) for event in events(client)] == [HandshakeCompleted]


GARBAGE = {
    "empty": b"",
    "random": bytes(range(200)),
    "short header": record(22, b"")[:5],
    "length past the datagram": record(22, bytes(20), length=100),
    "unknown content type": record(99, b"\x00"),
    "trailing bytes after a record": record(22, b"\x00") + b"\x01",
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_is_dropped_and_counted(name: str) -> None:
    client, server = make_pair()
    client.start(0.0)
    server.receive_datagram(GARBAGE[name], 0.0)
    assert server.dropped == 1
    assert server.state is DtlsState.NEW
    pump(client, server)
    client.receive_datagram(GARBAGE[name], 0.0)
    assert client.dropped == 1
    assert client.state is server.state is DtlsState.CONNECTED


def test_truncated_datagrams_and_early_epoch_records_do_not_disturb_the_handshake() -> None:
    client, server = make_pair(mtu=256)
    client.start(0.0)
    early_epoch_1 = record(22, bytes(range(40)), epoch=1)
    for _ in range(6):
        for datagram in client.datagrams_to_send():
            server.receive_datagram(datagram[: len(datagram) // 2], 0.0)
            server.receive_datagram(early_epoch_1, 0.0)
            server.receive_datagram(datagram, 0.0)
        for datagram in server.datagrams_to_send():
            client.receive_datagram(datagram[:-1], 0.0)
            client.receive_datagram(datagram, 0.0)
    assert client.state is server.state is DtlsState.CONNECTED
    assert server.dropped > 0 and client.dropped > 0


def test_malformed_handshake_message_fails_the_handshake_without_raising() -> None:
    client, server = make_pair()
    client.start(0.0)
    # A consistent fragment of a ClientHello whose body is garbage: OpenSSL refuses the message.
    # (An inconsistent fragment header is dropped before OpenSSL sees it: see below.)
    body = bytes(range(28))
    junk = record(22, bytes([1]) + (28).to_bytes(3, "big") + bytes(5) + (28).to_bytes(3, "big") + body)
    server.receive_datagram(junk, 0.0)
    assert server.state is DtlsState.FAILED
    assert [type(e) for e in events(server)] == [HandshakeFailed]
    pump(client, server)
    assert client.state is DtlsState.FAILED  # the alert reached the client
    assert server.dropped > 0  # the client's flight arrived after the failure


def test_second_client_hello_does_not_reset_a_connected_server() -> None:
    client, server, _, server_done = handshake()
    intruder = DtlsEndpoint(
        DtlsContext(CLIENT_CERT), [("sha-256", SERVER_CERT.fingerprint())], is_server=False
    )
    intruder.start(1.0)
    for datagram in intruder.datagrams_to_send():
        server.receive_datagram(datagram, 1.0)
    assert server.state is DtlsState.CONNECTED
    assert events(server) == []
    assert server.datagrams_to_send() == []
    client.send(b"still here")
    pump(client, server, now=1.0)
    assert events(server) == [ApplicationData(b"still here")]


def test_application_data_flows_both_ways() -> None:
    client, server, _, _ = handshake()
    client.send(b"ping")
    server.send(b"")
    assert server.datagrams_to_send() == []  # nothing to say, no record
    pump(client, server)
    assert events(server) == [ApplicationData(b"ping")]
    server.send(b"pong" * 100)
    pump(client, server)
    assert events(client) == [ApplicationData(b"pong" * 100)]


def test_send_is_refused_before_the_handshake_and_beyond_the_mtu() -> None:
    client, server = make_pair(mtu=300)
    with pytest.raises(DtlsError, match="^cannot send application data in state 'new'$"):
        client.send(b"early")
    client.start(0.0)
    pump(client, server)
    with pytest.raises(DtlsError) as caught:
        client.send(bytes(300))
    assert re.fullmatch(
        r"application data of 300 bytes exceeds the \d+ bytes that fit one record "
        r"in a 300-byte datagram",
        str(caught.value),
    )


def test_close_notify_closes_the_other_side() -> None:
    client, server, _, _ = handshake()
    client.close(5.0)
    assert client.state is DtlsState.CLOSED
    assert events(client) == [Closed("closed locally")]
    pump(client, server, now=5.0)
    assert server.state is DtlsState.CLOSED
    assert events(server) == [Closed("close_notify received")]
    client.close(6.0)  # idempotent
    assert events(client) == []
    with pytest.raises(DtlsError, match="^cannot send application data in state 'closed'$"):
        server.send(b"late")
    server.receive_datagram(record(23, b"\x00", epoch=1), 7.0)
    assert server.dropped == 1


def test_keylog_lines_use_the_sslkeylogfile_format() -> None:
    server_lines: list[bytes] = []
    client_lines: list[bytes] = []
    handshake(server_keylog=server_lines, client_keylog=client_lines)
    assert server_lines == client_lines
    assert len(server_lines) == 1
    assert re.fullmatch(rb"CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}", server_lines[0])


@pytest.mark.parametrize("mtu", [256, 400, 1200])
def test_every_datagram_fits_the_mtu(mtu: int) -> None:
    client, server = make_pair(mtu=mtu)
    client.start(0.0)
    sizes = []
    for _ in range(6):
        for datagram in client.datagrams_to_send():
            sizes.append(len(datagram))
            server.receive_datagram(datagram, 0.0)
        for datagram in server.datagrams_to_send():
            sizes.append(len(datagram))
            client.receive_datagram(datagram, 0.0)
    assert client.state is server.state is DtlsState.CONNECTED
    assert max(sizes) <= mtu
    if mtu == 256:
        assert len(sizes) > 6  # flights were fragmented across datagrams


def test_misuse_is_reported() -> None:
    context = DtlsContext(SERVER_CERT)
    fingerprints = [("sha-256", CLIENT_CERT.fingerprint())]
    server = DtlsEndpoint(context, fingerprints)
    with pytest.raises(DtlsError) as caught:
        server.start(0.0)
    assert str(caught.value) == "start() is for the client role; a server waits for the ClientHello"
    with pytest.raises(DtlsError, match="^mtu of 255 bytes is below OpenSSL's DTLS minimum of 256"):
        DtlsEndpoint(context, fingerprints, mtu=255)
    with pytest.raises(DtlsError) as caught:
        DtlsContext(SERVER_CERT, srtp_profiles=["SRTP_NULL_SHA1_80"])
    assert str(caught.value) == (
        "srtp_profiles must be a non-empty selection of "
        "SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80; got SRTP_NULL_SHA1_80"
    )
    client = DtlsEndpoint(context, [("sha-256", SERVER_CERT.fingerprint())], is_server=False)
    client.receive_datagram(record(22, b"\x00"), 0.0)
    assert client.dropped == 1 and client.state is DtlsState.NEW
    client.start(0.0)
    with pytest.raises(DtlsError, match="^start\\(\\) called in state 'handshaking'$"):
        client.start(0.0)


def test_get_timer_is_none_when_nothing_is_pending() -> None:
    client, server, _, _ = handshake()
    assert server.get_timer() is None
    client.close(1.0)
    assert client.get_timer() is None


@pytest.mark.parametrize("fragment", [
    # (length, message_seq, fragment_offset, fragment_length, body)
    (100, 0, 200, 10, b"x" * 10),          # offset past the message's length
    (100, 0, 0, 0, b""),                   # zero-length fragment of a non-empty message
    (0xFFFFFF, 0, 0, 10, b"x" * 10),       # a 16 MiB message announced
    (100, 0, 0, 50, b"x" * 10),            # fragment longer than the record holds
])
def test_inconsistent_handshake_fragments_are_dropped_and_the_handshake_survives(fragment):
    """RFC 6347 §4.1.2.7: from a spoofed address, such a record must not end the real handshake."""
    length, seq, offset, frag_len, body = fragment
    handshake = bytes([1]) + length.to_bytes(3, "big") + seq.to_bytes(2, "big") + offset.to_bytes(3, "big") \
        + frag_len.to_bytes(3, "big") + body
    record = bytes([22, 0xFE, 0xFD]) + bytes(8) + len(handshake).to_bytes(2, "big") + handshake
    context = DtlsContext(Certificate.generate())
    client_context = DtlsContext(Certificate.generate())
    server = DtlsEndpoint(context, [("sha-256", client_context.certificate.fingerprint())])
    client = DtlsEndpoint(client_context, [("sha-256", context.certificate.fingerprint())], is_server=False)
    server.receive_datagram(record, 0.0)
    assert server.dropped == 1 and server.state is DtlsState.NEW and server.datagrams_to_send() == []
    client.start(0.0)
    for _ in range(10):
        for datagram in client.datagrams_to_send():
            server.receive_datagram(datagram, 0.0)
        for datagram in server.datagrams_to_send():
            client.receive_datagram(datagram, 0.0)
    assert server.state is DtlsState.CONNECTED and client.state is DtlsState.CONNECTED
