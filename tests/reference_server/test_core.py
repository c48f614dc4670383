"""The server core on a fake clock, driven by the toolkit's probe peer (independent codecs)."""
from __future__ import annotations

import random
import struct

import pytest
from aioice import stun as aioice_stun

from reference_server.certificate import Certificate
from reference_server.core import CoreConfig, ServerCore, SignalingError
from reference_server.dtls import DtlsContext, DtlsEndpoint, DtlsState
from reference_server.events import PairSelected, SessionClosed
from reference_server.reasons import CloseReason
from reference_server.sessions import SessionPhase
from toolkit.peer import DtlsClosed, ProbePeer, RtcpReceived, RtpReceived

CERT = Certificate.generate()
SERVER = ("127.0.0.1", 3478)
A = ("127.0.0.1", 40000)
B = ("127.0.0.1", 40001)
C = ("127.0.0.1", 40002)


class Harness:
    """Pumps datagrams between a ServerCore and probe peers; each peer sits at an address we choose."""

    def __init__(self, **config) -> None:
        self.now = 1000.0
        self.core = ServerCore(CoreConfig(advertise_address=SERVER[0], port=SERVER[1], **config), CERT,
                               random_bytes=random.Random(7).randbytes)
        self.address_of: dict[ProbePeer, tuple[str, int]] = {}
        self.unrouted: list[tuple[bytes, tuple[str, int]]] = []
        self.seed = 0

    def new_peer(self, address=A, **kwargs) -> tuple[ProbePeer, str]:
        self.seed += 1
        peer = ProbePeer(consent_interval=None, rng=random.Random(self.seed), **kwargs)
        session_id, answer = self.core.create_session(peer.create_offer(), self.now)
        peer.set_answer(answer)
        self.address_of[peer] = address
        return peer, session_id

    def connect(self, address=A, **kwargs) -> tuple[ProbePeer, str]:
        peer, session_id = self.new_peer(address, **kwargs)
        peer.start(self.now)
        self.pump()
        assert peer.state == "connected", list(drain(peer))
        return peer, session_id

    def inject(self, data: bytes, source) -> list[tuple[bytes, tuple[str, int]]]:
        """Send one datagram to the core and return what it sends back (not delivered)."""
        self.core.receive_datagram(data, source, self.now)
        return self.core.datagrams_to_send()

    def echoed(self, peer, n: int) -> int:
        """Send `n` RTP packets from `peer`, deliver everything, and count the echoes it got back."""
        send_tone(peer, n)
        self.pump()
        return len(echoes(peer))

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for peer, address in list(self.address_of.items()):
                for data, to in peer.datagrams_to_send():
                    assert to == SERVER
                    self.core.receive_datagram(data, address, self.now)
                    moved = True
            for data, to in self.core.datagrams_to_send():
                moved = True
                owners = [p for p, a in self.address_of.items() if a == to]
                if owners:
                    owners[0].receive_datagram(data, SERVER, self.now)
                else:
                    self.unrouted.append((data, to))
            if not moved:
                return

    def advance(self, seconds: float, step: float = 0.5) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            timer = self.core.get_timer()
            if timer is not None and timer <= self.now:
                self.core.handle_timer(self.now)
            for peer in self.address_of:
                t = peer.get_timer()
                if t is not None and t <= self.now:
                    peer.handle_timer(self.now)
            self.pump()

    def session(self, session_id):
        return self.core.sessions.by_id.get(session_id)


def drain(peer):
    while (event := peer.next_event()) is not None:
        yield event


def core_events(core):
    while (event := core.next_event()) is not None:
        yield event


def echoes(peer) -> list[bytes]:
    return [e.packet for e in drain(peer) if isinstance(e, RtpReceived)]


def send_tone(peer, n=10, payload=b"\xf8\xff\xfe", first_ts=0):
    for i in range(n):
        peer.send_rtp(payload + bytes([i]), timestamp=first_ts + 960 * i)


def check(peer, address, h, **kwargs) -> list[tuple[bytes, tuple[str, int]]]:
    return h.inject(peer.binding_request(**kwargs), address)


def craft(attributes: dict, *, password: str | None, fingerprint=True, cls=aioice_stun.Class.REQUEST,
          extra: bytes = b"") -> bytes:
    """A Binding message built with aioice; `extra` raw attributes go before MESSAGE-INTEGRITY."""
    message = aioice_stun.Message(aioice_stun.Method.BINDING, cls, attributes=attributes)
    data = bytes(message) + extra
    data = data[:2] + struct.pack("!H", len(data) - 20) + data[4:]

    def append(data, kind, value):
        data = data[:2] + struct.pack("!H", len(data) - 20 + 4 + len(value)) + data[4:]
        return data + struct.pack("!HH", kind, len(value)) + value

    if password is not None:
        data = append(data, 0x0008, b"\0" * 20)
        data = data[:-20] + aioice_stun.message_integrity(data[:-24], password.encode())
        # message_integrity() above was computed with the length already covering MI.
    if fingerprint:
        data = append(data, 0x8028, b"\0\0\0\0")
        data = data[:-4] + struct.pack("!I", aioice_stun.message_fingerprint(data[:-8]))
    return data


def raw_attributes(data: bytes) -> dict[int, bytes]:
    """Attribute type -> value, for attributes aioice does not decode."""
    found, offset = {}, 20
    while offset + 4 <= len(data):
        kind, length = struct.unpack_from("!HH", data, offset)
        found.setdefault(kind, data[offset + 4: offset + 4 + length])
        offset += 4 + (length + 3) // 4 * 4
    return found


def parse_response(data: bytes):
    return aioice_stun.parse_message(data)


# --- a whole session ---------------------------------------------------------------------


def test_session_connects_and_audio_is_echoed_under_the_servers_stream():
    h = Harness()
    peer, session_id = h.connect()
    events = list(core_events(h.core))
    assert any(isinstance(e, PairSelected) and e.address == A for e in events)
    send_tone(peer, 20)
    h.pump()
    packets = echoes(peer)
    assert len(packets) == 20
    ssrcs = {struct.unpack_from("!I", p, 8)[0] for p in packets}
    seqs = [struct.unpack_from("!H", p, 2)[0] for p in packets]
    assert ssrcs == {h.session(session_id).outbound.ssrc} and peer.ssrc not in ssrcs
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))
    assert [p[12:] for p in packets] == [b"\xf8\xff\xfe" + bytes([i]) for i in range(20)]
    metrics = h.core.metrics
    assert metrics.sessions == 1 and metrics.packets_received["rtp"] == 20
    assert metrics.phases["signaling_to_first_srtp"].count == 1


def step_until_quiet(h: Harness, peer: ProbePeer, address, session) -> list[SessionPhase]:
    """Move datagrams one at a time both ways; the session's phase after each one the core took."""
    phases = []
    for _ in range(50):
        to_core = peer.datagrams_to_send()
        for data, _ in to_core:
            h.core.receive_datagram(data, address, h.now)
            phases.append(session.phase)
        to_peer = h.core.datagrams_to_send()
        for data, _ in to_peer:
            peer.receive_datagram(data, SERVER, h.now)
        if not to_core and not to_peer:
            break
    return [phase for i, phase in enumerate(phases) if i == 0 or phase is not phases[i - 1]]


def test_session_phase_follows_ice_then_dtls_then_close():
    h = Harness()
    peer, session_id = h.new_peer(A)
    session = h.session(session_id)
    assert session.phase is SessionPhase.OFFERED
    check(peer, A, h, use_candidate=False)
    assert session.phase is SessionPhase.CHECKED and session.selected is None
    check(peer, A, h, use_candidate=True)
    assert session.phase is SessionPhase.SELECTED and session.selected == A
    peer.start(h.now)
    assert step_until_quiet(h, peer, A, session) == [SessionPhase.SELECTED, SessionPhase.DTLS_HANDSHAKING,
                                                     SessionPhase.CONNECTED]
    assert peer.state == "connected" and session.dtls.state is DtlsState.CONNECTED and session.srtp is not None
    h.core.close_session(session_id, h.now)
    assert session.phase is SessionPhase.CLOSED
    closed = [e for e in core_events(h.core) if isinstance(e, SessionClosed)]
    assert closed == [SessionClosed(session_id, CloseReason.SIGNALING)] and closed[0].reason == "signaling"


def test_a_client_hello_from_a_checked_tuple_starts_the_handshake_without_a_nomination():
    """As DTLS server, the core takes a ClientHello from any bound tuple: CHECKED → DTLS_HANDSHAKING."""
    h = Harness()
    peer, session_id = h.new_peer(A)
    session = h.session(session_id)
    check(peer, A, h, use_candidate=False)
    client = DtlsEndpoint(DtlsContext(CERT), [("sha-256", CERT.fingerprint("sha-256"))], is_server=False)
    client.start(h.now)
    [client_hello] = client.datagrams_to_send()
    assert h.inject(client_hello, A), "no ServerHello flight"
    assert session.phase is SessionPhase.DTLS_HANDSHAKING and session in h.core._handshaking
    assert session.selected is None and h.core.get_timer() is not None


def test_client_role_goes_from_selected_to_handshaking_on_the_nominating_check():
    h = Harness(dtls_role="client")
    peer, session_id = h.new_peer(A)
    session = h.session(session_id)
    check(peer, A, h, use_candidate=False)
    assert session.phase is SessionPhase.CHECKED and session.dtls.state is DtlsState.NEW  # no ClientHello yet
    sent = check(peer, A, h, use_candidate=True)
    assert [data[0] for data, _ in sent] == [1, 22]  # the check's answer, then our ClientHello
    assert session.phase is SessionPhase.DTLS_HANDSHAKING and session in h.core._handshaking


def test_failed_handshake_and_timeouts_close_the_session():
    h = Harness(connect_timeout=5.0)
    peer, session_id = h.new_peer(A)
    session = h.session(session_id)
    check(peer, A, h, use_candidate=True)
    forged = bytes.fromhex("16fefd0000000000000000003c") + b"\x01" + b"\0" * 59  # a ClientHello OpenSSL refuses
    h.inject(forged, A)
    assert session.phase is SessionPhase.CLOSED and session not in h.core._handshaking
    _, waiting_id = h.new_peer(B)
    waiting = h.session(waiting_id)
    h.advance(6.0)
    assert waiting.phase is SessionPhase.CLOSED
    reasons = [e.reason for e in core_events(h.core) if isinstance(e, SessionClosed)]
    assert reasons == [CloseReason.DTLS_FAILED, CloseReason.CONNECT_TIMEOUT]


@pytest.mark.parametrize("profile", ["SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80"])
def test_both_srtp_profiles_negotiate(profile):
    h = Harness()
    peer, session_id = h.connect(srtp_profiles=(profile,))
    assert h.session(session_id).srtp.profile == profile
    assert h.echoed(peer, 3) == 3


def test_sessions_never_exchange_packets():
    h = Harness()
    p1, s1 = h.connect(A)
    p2, s2 = h.connect(B)
    p1.send_rtp(b"one", timestamp=0)
    p2.send_rtp(b"two", timestamp=0)
    h.pump()
    assert [p[12:] for p in echoes(p1)] == [b"one"]
    assert [p[12:] for p in echoes(p2)] == [b"two"]
    assert h.session(s1).ufrag != h.session(s2).ufrag


def test_rtcp_sender_reports_go_out_periodically():
    h = Harness(rtcp_interval=2.0)
    peer, _ = h.connect()
    send_tone(peer, 5)
    h.pump()
    list(drain(peer))
    h.advance(3.0)
    reports = [e.packet for e in drain(peer) if isinstance(e, RtcpReceived)]
    assert reports and reports[0][1] == 200  # SR
    assert struct.unpack_from("!I", reports[0], 20)[0] == 5  # sender packet count


# --- STUN and ICE-lite -----------------------------------------------------------------------


def test_unknown_ufrag_is_silent_and_creates_nothing():
    h = Harness()
    peer, _ = h.new_peer()
    out = check(peer, A, h, username="nosuchufrag:abcd")
    assert out == [] and not h.core.sessions.by_address
    assert h.core.metrics.drops["stun_unknown_ufrag"] == 1


def test_wrong_password_gets_401_and_binds_nothing():
    h = Harness()
    peer, _ = h.new_peer()
    request = peer.binding_request(password="x" * 24)
    out = h.inject(request, A)
    assert len(out) == 1 and len(out[0][0]) <= len(request)
    response = parse_response(out[0][0])
    assert response.message_class == aioice_stun.Class.ERROR
    assert response.attributes["ERROR-CODE"][0] == 401
    assert not h.core.sessions.by_address


@pytest.mark.parametrize("missing", ["USERNAME", "MESSAGE-INTEGRITY"])
def test_missing_credentials_get_400_no_larger_than_the_request(missing):
    h = Harness()
    peer, sid = h.new_peer()
    session = h.session(sid)
    attributes = {"PRIORITY": 1, "ICE-CONTROLLING": 1, "SOFTWARE": "probe" * 4}
    if missing != "USERNAME":
        attributes["USERNAME"] = f"{session.ufrag}:{peer.local_ufrag}"
    request = craft(attributes, password=None if missing == "MESSAGE-INTEGRITY" else session.pwd)
    out = h.inject(request, A)
    assert len(out) == 1 and len(out[0][0]) <= len(request)
    assert parse_response(out[0][0]).attributes["ERROR-CODE"][0] == 400
    assert not h.core.sessions.by_address


def test_tiny_unauthenticated_request_gets_silence_rather_than_amplification():
    h = Harness()
    request = craft({}, password=None)  # 28 bytes: any error response would be larger
    assert h.inject(request, A) == []


def test_error_responses_to_unauthenticated_requests_are_rate_limited():
    h = Harness(stun_error_rate=4)
    peer, _ = h.new_peer()
    wrong = [peer.binding_request(password="x" * 24) for _ in range(6)]
    answered = [h.inject(request, A) for request in wrong]
    assert [len(out) for out in answered] == [1, 1, 1, 1, 0, 0]  # a burst of one second's worth
    assert all(parse_response(out[0][0]).attributes["ERROR-CODE"][0] == 401 for out in answered[:4])
    drops = h.core.metrics.drops
    assert drops["stun_bad_integrity"] == 4 and drops["stun_error_rate_limited"] == 2
    # Authenticated checks never wait on that budget.
    ok = check(peer, A, h)
    assert parse_response(ok[0][0]).message_class == aioice_stun.Class.RESPONSE
    h.now += 0.25  # a quarter second at 4 per second buys one more answer, of either kind
    missing_integrity = craft({"USERNAME": f"{peer.answer.ice_ufrag}:{peer.local_ufrag}",
                               "SOFTWARE": "probe" * 4}, password=None)
    assert parse_response(h.inject(missing_integrity, A)[0][0]).attributes["ERROR-CODE"][0] == 400
    assert h.inject(missing_integrity, A) == [] and h.inject(wrong[0], A) == []
    assert drops["stun_bad_request"] == 1 and drops["stun_error_rate_limited"] == 4
    h.now += 10.0  # refilled, but never past the burst
    assert sum(len(h.inject(request, A)) for request in wrong) == 4
    assert not set(h.core.sessions.by_address) - {A}


def test_stun_error_rate_zero_answers_no_unauthenticated_request():
    h = Harness(stun_error_rate=0)
    peer, _ = h.new_peer()
    assert h.inject(peer.binding_request(password="x" * 24), A) == []
    assert h.core.metrics.drops["stun_error_rate_limited"] == 1 and "stun_bad_integrity" not in h.core.metrics.drops


@pytest.mark.parametrize("variant", ["bad", "missing"])
def test_fingerprint_problems_are_silent(variant):
    h = Harness()
    peer, _ = h.new_peer()
    request = peer.binding_request(fingerprint=variant != "missing")
    if variant == "bad":
        request = request[:-1] + bytes([request[-1] ^ 1])
    assert h.inject(request, A) == []
    assert not h.core.sessions.by_address


def test_unknown_comprehension_required_attribute_gets_420():
    h = Harness()
    peer, _ = h.new_peer()
    out = h.inject(peer.binding_request(extra_attributes=[(0x0777, b"abcd")]), A)
    response = parse_response(out[0][0])
    assert response.attributes["ERROR-CODE"][0] == 420
    assert raw_attributes(out[0][0])[0x000A] == b"\x07\x77"  # UNKNOWN-ATTRIBUTES
    # authenticated: the error carries MESSAGE-INTEGRITY under the server's password
    assert "MESSAGE-INTEGRITY" in response.attributes


def test_unknown_comprehension_optional_attribute_is_ignored():
    h = Harness()
    peer, _ = h.new_peer()
    out = h.inject(peer.binding_request(extra_attributes=[(0xC057, b"\0\1\0\0")]), A)
    assert parse_response(out[0][0]).message_class == aioice_stun.Class.RESPONSE


def test_role_conflict_gets_487():
    h = Harness()
    peer, _ = h.new_peer()
    out = h.inject(peer.binding_request(controlling=False), A)
    assert parse_response(out[0][0]).attributes["ERROR-CODE"][0] == 487
    assert not h.core.sessions.by_address


def test_binding_indication_gets_no_response():
    h = Harness()
    assert h.inject(craft({}, password=None, cls=aioice_stun.Class.INDICATION), A) == []


def test_success_response_carries_the_source_address_and_verifies():
    h = Harness()
    peer, sid = h.new_peer()
    for source in (A, ("::1", 5555)):
        request = peer.binding_request()
        (data, to), = h.inject(request, source)
        assert to == source
        response = parse_response(data)
        assert response.transaction_id == request[8:20]
        assert response.attributes["XOR-MAPPED-ADDRESS"] == source
        assert response.check_message_integrity(h.session(sid).pwd.encode())
        assert "FINGERPRINT" in response.attributes


def test_latest_nomination_wins_and_media_follows_it():
    h = Harness()
    peer, sid = h.connect(A)
    session = h.session(sid)
    check(peer, B, h)
    assert session.selected == B
    check(peer, A, h)
    assert session.selected == A
    check(peer, C, h, use_candidate=False)  # authenticated but not nominated: bound, not selected
    assert session.selected == A and C in session.tuples
    out = h.inject(peer.protect_rtp(struct.pack("!BBHII", 0x80, 111, 2, 960, peer.ssrc) + b"y"), C)
    assert [to for _, to in out] == [A]  # echo goes to the selected pair, not the sender


def test_tuples_per_session_are_capped_oldest_unselected_first():
    h = Harness(max_tuples_per_session=2)
    peer, sid = h.connect(A)
    session = h.session(sid)
    check(peer, B, h, use_candidate=False)
    check(peer, C, h, use_candidate=False)
    assert set(session.tuples) == {A, C}
    assert B not in h.core.sessions.by_address


def test_nat_rebinding_moves_media_without_a_new_handshake():
    h = Harness()
    peer, sid = h.connect(A)
    session = h.session(sid)
    srtp_before = session.srtp
    dtls_packets = h.core.metrics.packets_received["dtls"]
    h.address_of[peer] = B  # the NAT gives the client a new port
    check(peer, B, h)
    assert h.echoed(peer, 5) == 5
    assert session.selected == B and session.srtp is srtp_before
    assert h.core.metrics.packets_received["dtls"] == dtls_packets
    assert not h.unrouted


def test_check_with_wrong_password_from_new_address_binds_nothing():
    h = Harness()
    peer, sid = h.connect(A)
    h.inject(peer.binding_request(password="y" * 24), B)
    assert h.session(sid).selected == A and B not in h.core.sessions.by_address


# --- unbound 5-tuples ----------------------------------------------------------------------


def test_dtls_and_rtp_from_unbound_tuples_get_nothing():
    h = Harness()
    peer, sid = h.new_peer()
    # Before the real handshake, a ClientHello from an unbound tuple is ignored (CVE-2023-49786 class).
    client_hello = bytes.fromhex("16fefd0000000000000000003c") + b"\x01" + b"\0" * 59
    assert h.inject(client_hello, C) == []
    peer.start(h.now)
    h.pump()
    assert peer.state == "connected"
    before = len(h.core.sessions.by_address)
    rtp = peer.protect_rtp(struct.pack("!BBHII", 0x80, 111, 9, 0, peer.ssrc) + b"bleed")
    assert h.inject(rtp, C) == []
    assert h.inject(client_hello, C) == []
    assert len(h.core.sessions.by_address) == before
    assert h.core.metrics.drops["rtp_unbound"] == 1 and h.core.metrics.drops["dtls_unbound"] == 2
    assert h.session(sid).selected == A


def test_garbage_is_counted_and_the_session_keeps_serving():
    h = Harness()
    peer, _ = h.connect(A)
    for data in (b"", b"\x05" * 30, b"\x40" * 30, b"\xff" * 30, b"\x00" * 19, b"\x80" * 11, b"\x16" * 5,
                 b"\x00\x01\x00\x00" + b"\0" * 16, bytes(65507)):
        assert h.inject(data, A) == []
    tampered = bytearray(peer.protect_rtp(struct.pack("!BBHII", 0x80, 111, 77, 0, peer.ssrc) + b"zz"))
    tampered[-1] ^= 0x01
    assert h.inject(bytes(tampered), A) == []
    assert h.inject(struct.pack("!BBHII", 0x80, 111, 78, 0, peer.ssrc) + b"plain" * 4, A) == []
    drops = h.core.metrics.drops
    assert drops["srtp_unprotect_failed"] == 2 and drops["oversized"] == 1 and drops["unknown_first_byte"] == 3
    assert h.echoed(peer, 3) == 3


# --- time: consent, connect timeout --------------------------------------------------------


def test_consent_timeout_frees_the_session():
    h = Harness(consent_timeout=30.0)
    peer, sid = h.connect(A)
    h.advance(20.0)
    assert h.session(sid) is not None
    h.advance(11.0)
    assert h.session(sid) is None
    assert any(isinstance(e, SessionClosed) and e.reason == "consent_timeout" for e in core_events(h.core))
    assert not h.core.sessions.by_address and h.core.metrics.sessions == 0
    send_tone(peer, 1)
    h.pump()
    assert echoes(peer) == [] and h.core.metrics.drops["rtp_unbound"] == 1


def test_checks_keep_consent_alive():
    h = Harness(consent_timeout=30.0)
    peer, sid = h.connect(A)
    for _ in range(6):
        h.advance(10.0)
        check(peer, A, h, use_candidate=False)
    assert h.session(sid) is not None


def test_sessions_that_never_connect_expire():
    h = Harness(connect_timeout=10.0)
    _, sid = h.new_peer()
    h.advance(11.0)
    assert h.session(sid) is None and h.core.metrics.sessions_closed["connect_timeout"] == 1
    assert h.core.get_timer() is None


# --- signaling -----------------------------------------------------------------------------


def test_ice_restart_keeps_srtp_running():
    h = Harness()
    peer, sid = h.connect(A)
    session = h.session(sid)
    old_ufrag, srtp = session.ufrag, session.srtp
    fragment = "a=ice-ufrag:newU\r\na=ice-pwd:newpasswordnewpassword12\r\n"
    answer = h.core.restart_ice(sid, fragment, h.now)
    lines = dict(line.split(":", 1) for line in answer.splitlines() if line.startswith(("a=ice-ufrag", "a=ice-pwd")))
    new_ufrag, new_pwd = lines["a=ice-ufrag"], lines["a=ice-pwd"]
    assert new_ufrag != old_ufrag and session.remote_ufrag == "newU"
    assert check(peer, A, h) == []  # old credentials route nowhere now
    out = check(peer, A, h, username=f"{new_ufrag}:newU", password=new_pwd)
    assert parse_response(out[0][0]).message_class == aioice_stun.Class.RESPONSE
    assert h.echoed(peer, 4) == 4 and session.srtp is srtp


def test_dual_stack_core_answers_and_restarts_with_a_candidate_per_address():
    h = Harness(extra_addresses=("::1",))
    peer, sid = h.new_peer()
    assert peer.answer.candidates == [SERVER, ("::1", SERVER[1])]
    fragment = h.core.restart_ice(sid, "a=ice-ufrag:newU\r\na=ice-pwd:newpasswordnewpassword12\r\n", h.now)
    assert [line.split()[4] for line in fragment.splitlines() if line.startswith("a=candidate:")] == [SERVER[0], "::1"]


def test_trickle_fragment_without_new_credentials_is_not_a_restart():
    h = Harness()
    peer, sid = h.connect(A)
    ufrag = h.session(sid).ufrag
    assert h.core.restart_ice(sid, f"a=ice-ufrag:{peer.local_ufrag}\r\na=ice-pwd:{peer.local_pwd}\r\n", h.now) is None
    assert h.session(sid).ufrag == ufrag


def test_close_session_sends_close_notify_and_frees_everything():
    h = Harness()
    peer, sid = h.connect(A)
    h.core.close_session(sid, h.now)
    h.pump()
    assert any(isinstance(e, DtlsClosed) for e in drain(peer))
    assert h.session(sid) is None and not h.core.sessions.by_address and not h.core.sessions.by_ufrag
    with pytest.raises(SignalingError, match="no session"):
        h.core.close_session(sid, h.now)


def test_client_certificate_must_match_the_offer_fingerprint():
    h = Harness()
    peer = ProbePeer(consent_interval=None, rng=random.Random(99))
    impostor = ProbePeer(consent_interval=None, rng=random.Random(100))
    offer = peer.create_offer().replace(peer.fingerprint, impostor.fingerprint)
    sid, answer = h.core.create_session(offer, h.now)
    peer.set_answer(answer)
    h.address_of[peer] = A
    peer.start(h.now)
    h.pump()
    assert peer.state != "connected"
    assert h.session(sid) is None and h.core.metrics.sessions_closed["dtls_failed"] == 1


@pytest.mark.parametrize("offer, message", [
    ("garbage", "not of the form"),
    ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "no audio"),
])
def test_bad_offers_are_refused_with_a_reason(offer, message):
    h = Harness()
    with pytest.raises(SignalingError, match=message) as info:
        h.core.create_session(offer, h.now)
    assert info.value.status == 400 and len(h.core.sessions) == 0


def test_server_full_is_503():
    h = Harness(max_sessions=1)
    h.new_peer()
    with pytest.raises(SignalingError) as info:
        h.new_peer()
    assert info.value.status == 503


# --- nothing raises out of the datagram path ---------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st

FIRST_BYTES = st.sampled_from([0, 1, 3, 4, 19, 20, 22, 23, 63, 64, 127, 128, 144, 191, 192, 255])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(FIRST_BYTES, st.binary(max_size=300), st.sampled_from([A, B, C]), st.booleans()),
                max_size=30))
def test_arbitrary_datagrams_never_raise_nor_hit_internal_errors(datagrams):
    h = Harness()
    peer, sid = h.connect(A)
    for first, rest, source, keep_valid_header in datagrams:
        data = bytes([first]) + rest
        if keep_valid_header and first < 4 and len(data) >= 20:
            data = data[:4] + b"\x21\x12\xa4\x42" + data[8:]  # reach the STUN parser, not just demux
        h.core.receive_datagram(data, source, h.now)
        h.core.datagrams_to_send()
    assert h.core.metrics.drops["internal_error"] == 0
    assert h.echoed(peer, 2) == 2


# -- DTLS client role (answers a=setup:active) ----------------------------------------------------


def test_client_role_answers_active_and_connects_after_answering_the_nomination():
    h = Harness(dtls_role="client")
    peer, session_id = h.new_peer()
    assert "a=setup:active" in peer.answer.raw and peer.dtls_role == "server"
    peer.start(h.now)
    [(nomination, _)] = peer.datagrams_to_send()
    h.core.receive_datagram(nomination, A, h.now)
    sent = h.core.datagrams_to_send()
    assert [data[0] for data, _ in sent][:2] == [1, 22]  # the check's answer, then the ClientHello
    for data, _ in sent:
        peer.receive_datagram(data, SERVER, h.now)
    h.pump()
    assert peer.state == "connected" and h.session(session_id).dtls.state == "connected"
    assert h.echoed(peer, 5) == 5


def test_client_role_refuses_renegotiation_and_an_offer_that_is_also_active():
    h = Harness(dtls_role="client")
    peer, _ = h.connect()
    peer.renegotiate()
    h.pump()
    assert peer.renegotiation_pending and peer.renegotiation_refused and peer.state == "connected"
    with pytest.raises(SignalingError, match=r"offer has a=setup:active; this server is the DTLS client \(active\), "
                                             r"so the offer must be actpass or passive"):
        h.core.create_session(ProbePeer(dtls_role="client").create_offer(), h.now)
    with pytest.raises(ValueError, match="dtls_role must be 'server' or 'client'"):
        Harness(dtls_role="both")
