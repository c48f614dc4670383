from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from toolkit.crafters.common import CraftError
from toolkit.crafters.dtls import (
    CLIENT_HELLO,
    HANDSHAKE,
    SERVER_HELLO,
    DtlsAlert,
    DtlsClientHello,
    DtlsExtUseSrtp,
    DtlsHandshake,
    DtlsRecord,
    DtlsServerHello,
    client_hello,
    client_hello_flight,
    fragment_handshake,
    handshake_messages,
    hello_verify_cookie,
    in_records,
    parse_records,
)

COOKIE = b"cookie-for-this-address"


@pytest.fixture(scope="module")
def identity():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "crafter-test")])
    start = datetime.datetime(2024, 1, 1)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def dtls_server(identity, *, cookie_exchange: bool) -> SSL.Connection:
    """A pyOpenSSL DTLS-SRTP server on memory BIOs, as a WebRTC answerer sets one up."""
    context = SSL.Context(SSL.DTLS_METHOD)
    context.use_certificate(identity[0])
    context.use_privatekey(identity[1])
    context.set_tlsext_use_srtp(b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80")
    if cookie_exchange:
        context.set_options(SSL.OP_COOKIE_EXCHANGE)
        context.set_cookie_generate_callback(lambda _connection: COOKIE)
        context.set_cookie_verify_callback(lambda _connection, cookie: cookie == COOKIE)
    connection = SSL.Connection(context, None)
    connection.set_accept_state()
    return connection


def exchange(server: SSL.Connection, data: bytes) -> bytes:
    server.bio_write(data)
    try:
        server.do_handshake()
    except SSL.WantReadError:
        pass
    out = b""
    while True:
        try:
            out += server.bio_read(65536)
        except SSL.WantReadError:
            return out


def test_client_hello_elicits_server_hello_with_use_srtp(identity):
    reply = exchange(dtls_server(identity, cookie_exchange=False), bytes(client_hello_flight()[0]))
    messages = handshake_messages(reply)
    assert messages[0].msg_type == SERVER_HELLO
    server_hello = messages[0][DtlsServerHello]
    use_srtp = [e for e in server_hello.extensions if isinstance(e, DtlsExtUseSrtp)]
    assert use_srtp and use_srtp[0].profiles == [0x0007]


def test_cookie_exchange_then_fragmented_client_hello(identity):
    server = dtls_server(identity, cookie_exchange=True)
    first = client_hello_flight(srtp_profiles=[0x0001])
    cookie = hello_verify_cookie(exchange(server, bytes(first[0])))
    assert cookie == COOKIE
    second = client_hello_flight(
        fragments=3, cookie=cookie, message_seq=1, first_sequence=1, srtp_profiles=[0x0001],
        random=first[0][DtlsClientHello].random,
    )
    assert [r.sequence_number for r in second] == [1, 2, 3]
    reply = exchange(server, b"".join(map(bytes, second)))
    server_hello = handshake_messages(reply)[0]
    assert server_hello.msg_type == SERVER_HELLO
    assert [e.profiles for e in server_hello[DtlsServerHello].extensions if isinstance(e, DtlsExtUseSrtp)] == [[1]]


def test_client_hello_without_use_srtp_gets_no_srtp_profile(identity):
    reply = exchange(dtls_server(identity, cookie_exchange=False), bytes(client_hello_flight(srtp_profiles=())[0]))
    server_hello = handshake_messages(reply)[0][DtlsServerHello]
    assert not [e for e in server_hello.extensions if isinstance(e, DtlsExtUseSrtp)]


def test_record_and_handshake_headers():
    record = DtlsRecord(epoch=1, sequence_number=0x0102030405) / DtlsHandshake(message_seq=5) / client_hello(
        random=bytes(32)
    )
    data = bytes(record)
    body_length = len(data) - 13 - 12
    assert data[:13] == bytes([HANDSHAKE, 0xFE, 0xFD, 0, 1, 0, 1, 2, 3, 4, 5]) + (len(data) - 13).to_bytes(2, "big")
    assert data[13:25] == bytes([CLIENT_HELLO]) + body_length.to_bytes(3, "big") + b"\x00\x05" + bytes(3) + (
        body_length.to_bytes(3, "big")
    )


def test_explicit_lengths_are_written_as_given():
    data = bytes(DtlsRecord(length=999) / DtlsHandshake(length=7, fragment_length=3) / client_hello(random=bytes(32)))
    assert data[11:13] == (999).to_bytes(2, "big")
    assert data[14:17] == (7).to_bytes(3, "big") and data[22:25] == (3).to_bytes(3, "big")
    hello = bytes(client_hello(random=bytes(32), cookie=b"abc"))
    crafted = bytes(DtlsClientHello(random=bytes(32), cookie=b"abc", cookie_length=200))
    assert hello[34:36] == b"\x00\x03" and crafted[34:36] == b"\x00\xc8"


def test_fragments_reassemble_to_the_message():
    handshake = DtlsHandshake(message_seq=2) / client_hello(random=bytes(32))
    body = bytes(handshake.payload)
    fragments = fragment_handshake(handshake, 4)
    assert len(fragments) == 4
    assert b"".join(bytes(f.payload) for f in fragments) == body
    for fragment in fragments:
        raw = bytes(fragment)
        assert int.from_bytes(raw[1:4], "big") == len(body)
        assert raw[4:6] == b"\x00\x02"
        assert int.from_bytes(raw[9:12], "big") == len(raw) - 12
    assert [f.fragment_offset for f in fragments] == sorted({f.fragment_offset for f in fragments})
    assert len(fragment_handshake(handshake, size=100)) == -(-len(body) // 100)
    with pytest.raises(CraftError, match="exactly one of count= and size="):
        fragment_handshake(handshake)


def test_several_records_in_one_datagram_and_alerts():
    records = in_records([DtlsAlert(level=2, description=40), DtlsAlert(level=1, description=0)], epoch=0)
    datagram = b"".join(map(bytes, records))
    assert datagram[:13] == bytes([21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2])
    parsed = parse_records(datagram)
    assert [(r.sequence_number, r[DtlsAlert].description) for r in parsed] == [(0, 40), (1, 0)]
