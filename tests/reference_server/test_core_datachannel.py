"""The core's side of data channels on a fake clock: it accepts m=application, hands DTLS
application data out as DataChannelBytes and encrypts SCTP packets handed in."""
from __future__ import annotations

import pytest

from reference_server.core import DATACHANNEL_DTLS_MTU, DTLS_MTU, DataChannelOffer
from reference_server.dtls import DtlsError
from reference_server.events import DataChannelBytes
from reference_server.shell.datachannel import MAX_SCTP_PACKET
from tests.reference_server.test_core import A, B, Harness, core_events, drain
from toolkit.peer import DtlsData, ProbePeer


def application_data(peer) -> list[bytes]:
    return [event.data for event in drain(peer) if isinstance(event, DtlsData)]


def datachannel_bytes(core) -> list[DataChannelBytes]:
    return [event for event in core_events(core) if isinstance(event, DataChannelBytes)]


def test_the_answer_accepts_an_offered_data_channel():
    h = Harness()
    session_id, answer = h.core.create_session(ProbePeer(datachannel=True).create_offer(), h.now)
    lines = answer.splitlines()
    assert "m=application 3478 UDP/DTLS/SCTP webrtc-datachannel" in lines
    assert "a=sctp-port:5000" in lines and "a=max-message-size:262144" in lines
    assert "a=group:BUNDLE 0 1" in lines
    assert h.core.datachannel_offer(session_id) == DataChannelOffer(mid="1", sctp_port=5000, max_message_size=262144)
    assert h.session(session_id).dtls.mtu == DATACHANNEL_DTLS_MTU


def test_an_audio_only_session_has_no_data_channel():
    h = Harness()
    peer, session_id = h.new_peer()
    assert h.core.datachannel_offer(session_id) is None
    assert h.core.datachannel_offer("no such session") is None
    assert h.session(session_id).dtls.mtu == DTLS_MTU


def test_application_data_comes_out_as_datachannel_bytes_of_its_session():
    h = Harness()
    p1, s1 = h.connect(A, datachannel=True)
    p2, s2 = h.connect(B, datachannel=True)
    list(core_events(h.core))
    p1.send_dtls(b"sctp from one")
    p2.send_dtls(b"sctp from two")
    p1.send_dtls(b"again from one")
    h.pump()
    received = datachannel_bytes(h.core)
    assert [e.data for e in received if e.session_id == s1] == [b"sctp from one", b"again from one"]
    assert [e.data for e in received if e.session_id == s2] == [b"sctp from two"]
    assert len(received) == 3
    assert h.core.metrics.drops["dtls_application_data"] == 0


def test_application_data_without_an_offered_data_channel_is_dropped():
    h = Harness()
    peer, _ = h.connect()
    list(core_events(h.core))
    peer.send_dtls(b"unexpected sctp")
    h.pump()
    assert datachannel_bytes(h.core) == []
    assert h.core.metrics.drops["dtls_application_data"] == 1


def test_send_application_data_reaches_only_that_sessions_peer():
    h = Harness()
    p1, s1 = h.connect(A, datachannel=True)
    p2, _ = h.connect(B, datachannel=True)
    list(drain(p1)), list(drain(p2))
    largest = bytes(range(256)) * 4 + bytes(MAX_SCTP_PACKET - 1024)  # aiortc's largest SCTP packet
    assert h.core.send_application_data(s1, b"sctp to one")
    assert h.core.send_application_data(s1, largest)
    outgoing = h.core.datagrams_to_send()
    assert [to for _, to in outgoing] == [A, A]
    for datagram, _to in outgoing:
        p1.receive_datagram(datagram, ("127.0.0.1", 3478), h.now)
    assert application_data(p1) == [b"sctp to one", largest]
    assert application_data(p2) == []


def test_nothing_is_sent_for_a_session_that_is_gone_or_not_connected():
    h = Harness()
    connected, session_id = h.connect(A, datachannel=True)
    _, waiting = h.new_peer(B, datachannel=True)
    assert not h.core.send_application_data("no such session", b"x")
    assert not h.core.send_application_data(waiting, b"x")  # DTLS not up yet
    h.core.close_session(session_id, h.now)
    h.core.datagrams_to_send()  # the close_notify
    assert not h.core.send_application_data(session_id, b"x")
    assert h.core.datagrams_to_send() == []


def test_a_packet_larger_than_one_record_is_the_callers_bug():
    h = Harness()
    _, session_id = h.connect(datachannel=True)
    with pytest.raises(DtlsError, match=r"^application data of 1300 bytes exceeds the \d+ bytes"):
        h.core.send_application_data(session_id, bytes(1300))
