"""Stateful property test of the server core: sessions, ICE-lite, DTLS and SRTP on a fake clock.

A hypothesis state machine drives `ServerCore` with probe peers (the toolkit's independent
STUN, DTLS and SRTP) and with hostile traffic, and keeps its own model of which addresses the
core must have bound to which session, which tuple each session has selected, and which phase
each session is in. Every datagram the core sends is checked against that model the moment it
comes out (no packet crosses sessions, media only on the selected tuple, STUN only back to the
asker); after every step the core's routing tables and every session's phase (freed ones too)
are compared with the model.
"""
from __future__ import annotations

import itertools
import random
import struct
from dataclasses import dataclass, field

import pylibsrtp
from aioice import stun as aioice_stun
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, precondition, rule

from reference_server.certificate import Certificate
from reference_server.core import SWEEP_INTERVAL, CoreConfig, ServerCore, SignalingError
from reference_server.events import SessionClosed
from reference_server.sessions import Session, SessionPhase
from toolkit.peer.core import ProbePeer
from toolkit.peer.srtp import SRTP_PROFILES

from .support import CLIENT_HELLO, DATABASE

Address = tuple[str, int]

CERT = Certificate.generate()
SERVER: Address = ("127.0.0.1", 3478)
CONSENT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
RTCP_INTERVAL = 5.0
MAX_TUPLES = 3
KEEPALIVE_INTERVAL = 5.0
MAX_SESSIONS = 5
EPSILON = 1e-6
SLACK = 0.01  # how late the last sweep may have run: timers that cannot fire yet are stepped over by 1 ms


@dataclass(eq=False)
class Client:
    """One signaled session and the probe peer behind it, as the model expects the core to see it."""

    label: str
    peer: ProbePeer
    session_id: str
    ufrag: str  # the server's current credentials for this session
    pwd: str
    remote_ufrag: str
    home: Address  # where the peer sends from and listens
    created_at: float
    session: Session  # the core's own record, kept to compare its phase with ours, after it is freed too
    phase: SessionPhase = SessionPhase.OFFERED
    started: bool = False
    restarted: bool = False
    tuples: dict[Address, float] = field(default_factory=dict)  # bound address -> last check, oldest first
    selected: Address | None = None
    last_check: float | None = None
    retired: list[tuple[str, str]] = field(default_factory=list)
    sent_payloads: set[bytes] = field(default_factory=set)
    echoes: int = 0
    rx: pylibsrtp.Session | None = None  # our own decryptor for what the core sends this client

    @property
    def alive(self) -> bool:
        return self.phase is not SessionPhase.CLOSED

    @property
    def connected(self) -> bool:
        return self.phase is SessionPhase.CONNECTED

    def __repr__(self) -> str:
        return self.label

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints a failing sequence
        printer.text(self.label)


@dataclass(frozen=True, slots=True)
class Check:
    """What the model makes of a datagram that is an authentic Binding request."""

    client: Client
    controlling: bool
    use_candidate: bool


def drain_core_events(core: ServerCore) -> list:
    out = []
    while (item := core.next_event()) is not None:
        out.append(item)
    return out


class CoreMachine(RuleBasedStateMachine):
    clients = Bundle("clients")

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.core = ServerCore(
            CoreConfig(advertise_address=SERVER[0], port=SERVER[1], consent_timeout=CONSENT_TIMEOUT,
                       connect_timeout=CONNECT_TIMEOUT, max_tuples_per_session=MAX_TUPLES,
                       max_sessions=MAX_SESSIONS, rtcp_interval=RTCP_INTERVAL),
            CERT, random_bytes=random.Random(7).randbytes)
        self.everyone: list[Client] = []
        self.live: dict[str, Client] = {}
        self.bound: dict[Address, Client] = {}
        self.resident: dict[Address, Client] = {}  # who receives what is sent to an address
        self.closed_reasons: dict[str, str] = {}
        self._ports = itertools.count(20000)
        self._hostile_ssrc = itertools.count(0x10000)

    # ---- addresses --------------------------------------------------------------------------

    def fresh_client_address(self) -> Address:
        port = next(self._ports)
        return ("198.51.100.7", port) if port % 2 else ("2001:db8::7", port)

    def fresh_hostile_address(self) -> Address:
        return ("203.0.113.66", next(self._ports))

    # ---- the model's view of one datagram ---------------------------------------------------

    def authentic_check(self, data: bytes) -> Check | None:
        """Independently (aioice) decide whether `data` is a Binding request with valid credentials."""
        if len(data) < 20 or data[0] > 3:
            return None
        try:
            message = aioice_stun.parse_message(data)
        except (ValueError, struct.error, UnicodeDecodeError, IndexError, KeyError):
            return None
        if (message.message_method != aioice_stun.Method.BINDING
                or message.message_class != aioice_stun.Class.REQUEST
                or "FINGERPRINT" not in message.attributes):
            return None
        username = message.attributes.get("USERNAME")
        if not isinstance(username, str):
            return None
        client = next((c for c in self.live.values() if c.ufrag == username.split(":", 1)[0]), None)
        if client is None or not message.check_message_integrity(client.pwd.encode()):
            return None
        controlling = "ICE-CONTROLLING" in message.attributes and "ICE-CONTROLLED" not in message.attributes
        return Check(client, controlling, "USE-CANDIDATE" in message.attributes)

    def bind(self, client: Client, address: Address, use_candidate: bool) -> None:
        """An authenticated check binds its source; the latest nomination wins; the oldest unselected goes."""
        previous = self.bound.get(address)
        if previous is not None and previous is not client:
            event("tuple taken over by another session")
            del previous.tuples[address]
            if previous.selected == address:
                previous.selected = None
        client.tuples.pop(address, None)
        client.tuples[address] = self.now
        self.bound[address] = client
        while len(client.tuples) > MAX_TUPLES:
            victim = next((a for a in client.tuples if a not in (client.selected, address)), None)
            if victim is None:
                break
            event("tuple evicted at the cap")
            del client.tuples[victim]
            del self.bound[victim]
        if use_candidate:
            client.selected = address
        client.last_check = self.now
        if client.phase is SessionPhase.OFFERED:
            client.phase = SessionPhase.CHECKED
        if use_candidate and client.phase is SessionPhase.CHECKED:
            client.phase = SessionPhase.SELECTED  # a nomination once DTLS has begun is no phase of its own

    def forget(self, client: Client, reason: str) -> None:
        for item in drain_core_events(self.core):
            if isinstance(item, SessionClosed):
                self.closed_reasons[item.session_id] = item.reason
        actual = self.closed_reasons.pop(client.session_id, None)
        assert actual == reason, f"{client} was freed with reason {actual!r}, expected {reason!r}"
        event(f"session freed: {reason}")
        client.phase = SessionPhase.CLOSED
        del self.live[client.session_id]
        for address in client.tuples:
            del self.bound[address]
        client.tuples.clear()
        client.selected = None

    # ---- moving datagrams, checking each one the core sends ------------------------------------

    def to_core(self, data: bytes, source: Address) -> list[tuple[bytes, Address]]:
        """Deliver one datagram to the core, mirror it in the model, check and route the replies."""
        before = dict(self.bound)
        sender = before.get(source)
        check = self.authentic_check(data)
        self.core.receive_datagram(data, source, self.now)
        if check is not None and check.controlling:
            self.bind(check.client, source, check.use_candidate)
        if (data and 19 < data[0] < 64 and sender is not None
                and sender.phase in (SessionPhase.CHECKED, SessionPhase.SELECTED)):
            # The only DTLS a bound, unconnected session gets here is its peer's ClientHello
            # (`garbage` sends none to it): it starts the handshake.
            sender.phase = SessionPhase.DTLS_HANDSHAKING
        out = self.core.datagrams_to_send()
        stun_replies = 0
        for reply, dest in out:
            first = reply[0]
            if first < 4:
                stun_replies += 1
                self.check_stun_reply(reply, dest, data, source, check)
                self.deliver_to_resident(reply, dest)
            elif 19 < first < 64:
                assert 19 < data[0] < 64, f"a {data[0]:#x} datagram from {source} made the core send DTLS to {dest}"
                assert sender is not None, f"DTLS from unbound {source} was answered (to {dest})"
                assert before.get(dest) is sender, (
                    f"DTLS of {sender}'s session (reply to {source}) sent to {dest}, "
                    f"bound to {before.get(dest)}")
                self.deliver_dtls(reply, sender)
            elif 127 < first < 192:
                assert 127 < data[0] < 192, f"a {data[0]:#x} datagram from {source} made the core send SRTP"
                assert sender is not None and sender.connected, f"SRTP answered for unbound/unconnected {source}"
                expected = sender.selected or source
                assert dest == expected, f"echo for {sender} went to {dest}, not its selected tuple {expected}"
                self.check_media(reply, dest, sender)
            else:
                raise AssertionError(f"core sent a datagram starting {first:#x} to {dest}")
        assert stun_replies <= (1 if data and data[0] < 4 else 0), f"{stun_replies} STUN replies to one datagram"
        if check is not None and check.controlling:
            assert stun_replies == 1, f"authentic check from {source} for {check.client} got no success response"
        return out

    def check_stun_reply(self, reply: bytes, dest: Address, request: bytes, source: Address,
                         check: Check | None) -> None:
        assert dest == source, f"STUN reply to a request from {source} sent to {dest}"
        assert reply[8:20] == request[8:20], "STUN reply carries another transaction id"
        response = aioice_stun.parse_message(reply)
        if response.message_class == aioice_stun.Class.RESPONSE:
            assert check is not None and check.controlling, f"success response to a rejected check from {source}"
            assert response.attributes["XOR-MAPPED-ADDRESS"] == source
            assert response.check_message_integrity(check.client.pwd.encode()), "success not signed with the pwd"
            return
        assert response.message_class == aioice_stun.Class.ERROR, "a STUN reply that is neither success nor error"
        if "MESSAGE-INTEGRITY" in response.attributes:
            assert check is not None, "signed error response to a request with no valid credentials"
            assert response.check_message_integrity(check.client.pwd.encode()), "error signed with another pwd"
        else:
            assert len(reply) <= len(request), f"unauthenticated error of {len(reply)} bytes to {len(request)}"

    def check_media(self, packet: bytes, dest: Address, owner: Client) -> None:
        """SRTP to `dest` must decrypt with the keys of the session bound there, and carry its payloads."""
        is_rtcp = len(packet) > 1 and 191 < packet[1] < 224
        try:
            if owner.rx is None:
                raise pylibsrtp.Error(f"{owner} has no SRTP keys")
            plain = owner.rx.unprotect_rtcp(packet) if is_rtcp else owner.rx.unprotect(packet)
        except pylibsrtp.Error:
            others = [c for c in self.everyone if c is not owner and c.rx is not None and _decrypts(c, packet)]
            raise AssertionError(f"SRTP sent to {dest} ({owner}'s tuple) does not decrypt with {owner}'s keys"
                                 f"; it is {others or 'nobody'}'s") from None
        if is_rtcp:
            event("RTCP report checked")
        else:
            assert plain[12:] in owner.sent_payloads, f"echo to {owner} carries a payload it never sent"
            owner.echoes += 1
            if dest != owner.home:
                event("echo followed the selected tuple, not the sender")

    def deliver_to_resident(self, datagram: bytes, dest: Address) -> None:
        resident = self.resident.get(dest)
        if resident is not None:
            resident.peer.receive_datagram(datagram, SERVER, self.now)
            self.drain_peer(resident)

    def deliver_dtls(self, datagram: bytes, client: Client) -> None:
        client.peer.receive_datagram(datagram, SERVER, self.now)
        self.drain_peer(client)

    def drain_peer(self, client: Client) -> None:
        """The peer's own events are the toolkit's business; the model judges the core's datagrams."""
        while client.peer.next_event() is not None:
            pass

    def pump(self) -> None:
        for _ in range(100):
            moved = False
            for client in self.everyone:
                for data, to in client.peer.datagrams_to_send():
                    assert to == SERVER
                    self.to_core(data, client.home)
                    moved = True
            if not moved:
                return
        raise AssertionError("datagrams still moving after 100 rounds")

    def fire_core_timer(self) -> None:
        """handle_timer, then hold the core to the timeouts, then check what it sent."""
        self.core.handle_timer(self.now)
        out = self.core.datagrams_to_send()
        self.sync_timeouts()
        for datagram, dest in out:
            owner = self.bound.get(dest)
            first = datagram[0]
            assert 19 < first < 64 or 127 < first < 192, f"timer sent a {first:#x} datagram to {dest}"
            assert owner is not None, f"timer sent a {first:#x} datagram to unbound {dest}"
            if 127 < first < 192:
                self.check_media(datagram, dest, owner)
                assert owner.selected is None or dest == owner.selected, (
                    f"RTCP for {owner} went to {dest}, not its selected tuple {owner.selected}")
            else:
                self.deliver_dtls(datagram, owner)

    def sync_timeouts(self) -> None:
        """Sessions and stale tuples go between their deadline and one sweep interval after it."""
        for client in list(self.live.values()):
            session = self.core.sessions.by_id.get(client.session_id)
            if client.connected:
                deadline, reason = client.last_check + CONSENT_TIMEOUT, "consent_timeout"
            else:
                deadline, reason = client.created_at + CONNECT_TIMEOUT, "connect_timeout"
            if session is None:
                assert self.now >= deadline - EPSILON, f"{client} freed at {self.now}, before {deadline} ({reason})"
                self.forget(client, reason)
                continue
            assert self.now < deadline + SWEEP_INTERVAL + SLACK, (
                f"{client} still held at {self.now}, past its {reason} deadline {deadline}")
            if not client.connected:
                continue
            for address, last in list(client.tuples.items()):
                if address == client.selected:
                    continue
                if address not in session.tuples:
                    assert self.now > last + CONSENT_TIMEOUT - EPSILON, f"{client}'s tuple {address} unbound early"
                    event("stale tuple unbound")
                    del client.tuples[address]
                    del self.bound[address]
                else:
                    assert self.now < last + CONSENT_TIMEOUT + SWEEP_INTERVAL + SLACK, (
                        f"{client}'s stale tuple {address} still bound at {self.now}")

    # ---- signaling ----------------------------------------------------------------------------

    @initialize(target=clients, connected=st.integers(0, 2))
    def connected_sessions(self, connected):
        """Most interesting states need connected sessions: start some examples with them."""
        clients = [self.signal() for _ in range(connected)]
        for client in clients:
            self.start(client)
        return multiple(*clients)

    @rule(target=clients)
    def create_session(self):
        full = len(self.live) >= MAX_SESSIONS
        try:
            client = self.signal()
        except SignalingError as exc:
            assert full and exc.status == 503, f"create_session refused ({exc.status} {exc})"
            event("server full")
            return multiple()
        assert not full, f"create_session accepted session {len(self.live)} of {MAX_SESSIONS}"
        return client

    def signal(self) -> Client:
        """WHIP POST in-process: the peer's offer in, the core's answer back to the peer."""
        peer = ProbePeer(consent_interval=None, rng=random.Random(len(self.everyone)))
        session_id, answer = self.core.create_session(peer.create_offer(), self.now)
        peer.set_answer(answer)
        assert all(c.ufrag != peer.answer.ice_ufrag for c in self.live.values()), "ufrag handed out twice"
        home = ("127.0.0.1", next(self._ports))
        client = Client(f"c{len(self.everyone) + 1}", peer, session_id, peer.answer.ice_ufrag, peer.answer.ice_pwd,
                        peer.local_ufrag, home, self.now, self.core.sessions.by_id[session_id])
        self.everyone.append(client)
        self.live[session_id] = client
        self.resident[home] = client
        return client

    @precondition(lambda self: any(c.alive and not c.started and not c.restarted for c in self.everyone))
    @rule(data=st.data())
    def start_peer(self, data):
        self.start(data.draw(st.sampled_from([c for c in self.everyone
                                              if c.alive and not c.started and not c.restarted])))

    def start(self, client: Client) -> None:
        """ICE from the peer's home address, then a real DTLS handshake: the session connects."""
        client.started = True
        client.peer.start(self.now, SERVER)
        self.pump()
        assert client.peer.state == "connected", f"{client} did not connect: {client.peer.state}"
        session = self.core.sessions.by_id[client.session_id]
        assert session.srtp is not None and client.selected == client.home
        assert client.phase is SessionPhase.DTLS_HANDSHAKING, f"{client}'s handshake left the model at {client.phase}"
        client.phase = SessionPhase.CONNECTED  # the peer holds the server's Finished: the server completed first
        keys = client.peer.srtp_keys
        client.rx = pylibsrtp.Session(pylibsrtp.Policy(
            key=keys.remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=SRTP_PROFILES[keys.profile].libsrtp_id))

    @rule(client=clients, trickle=st.booleans())
    def restart_ice(self, client, trickle):
        ufrag = client.remote_ufrag if trickle else f"r{len(client.retired)}{client.label}xyz"
        fragment = f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:restartpassword{len(client.retired):09d}\r\n"
        if not client.alive:
            try:
                self.core.restart_ice(client.session_id, fragment, self.now)
            except SignalingError as exc:
                assert exc.status == 404
                return
            raise AssertionError(f"ICE restart of freed {client} accepted")
        answer = self.core.restart_ice(client.session_id, fragment, self.now)
        if trickle:
            assert answer is None, "a fragment with the current remote ufrag restarted ICE"
            return
        values = dict(line.split(":", 1) for line in answer.splitlines()
                      if line.startswith(("a=ice-ufrag:", "a=ice-pwd:")))
        client.retired.append((client.ufrag, client.pwd))
        client.ufrag, client.pwd = values["a=ice-ufrag"], values["a=ice-pwd"]
        client.remote_ufrag = ufrag
        client.restarted = True
        event("ICE restarted")
        assert all(c.ufrag != client.ufrag for c in self.live.values() if c is not client), "restart reused a ufrag"
        assert (client.ufrag, client.pwd) not in client.retired, "restart kept the old credentials"

    @rule(client=clients)
    def close_session(self, client):
        if not client.alive:
            try:
                self.core.close_session(client.session_id, self.now)
            except SignalingError as exc:
                assert exc.status == 404
                return
            raise AssertionError(f"closing freed {client} succeeded")
        before = dict(self.bound)
        selected, connected = client.selected, client.connected
        self.core.close_session(client.session_id, self.now)
        out = self.core.datagrams_to_send()
        self.forget(client, "signaling")
        for datagram, dest in out:
            assert 19 < datagram[0] < 64, f"close_session sent a {datagram[0]:#x} datagram"
            assert before.get(dest) is client, f"{client}'s close_notify sent to {dest}, bound to {before.get(dest)}"
            assert selected is None or dest == selected, (
                f"{client}'s close_notify sent to {dest}, not its selected tuple {selected}")
            self.deliver_dtls(datagram, client)
        if connected and selected is not None:
            assert out, f"closing connected {client} sent no close_notify"
            assert client.peer.state == "closed", f"{client}'s peer did not see close_notify"
        self.pump()

    # ---- ICE ----------------------------------------------------------------------------------

    @rule(client=clients, where=st.sampled_from(["fresh", "home", "bound"]), use_candidate=st.booleans(),
          move=st.booleans(), fresh_addresses=st.integers(1, MAX_TUPLES + 1))
    def authenticated_check(self, client, where, use_candidate, move, fresh_addresses):
        """Checks with the session's current credentials; from new addresses they are NAT rebinding."""
        if where == "fresh":
            addresses = [self.fresh_client_address() for _ in range(fresh_addresses)]
        elif where == "bound" and client.tuples:
            addresses = [list(client.tuples)[0]]
        else:
            addresses = [client.home]
        for address in addresses:
            self.resident.setdefault(address, client)
            out = self.to_core(valid_check(client, use_candidate), address)
            if not client.alive:
                assert out == [], f"check with freed {client}'s credentials was answered"
                return
            assert address in client.tuples and (not use_candidate or client.selected == address)
        if move:
            client.home = addresses[-1]

    @precondition(lambda self: len(self.live) >= 2 and self.bound)
    @rule(data=st.data(), use_candidate=st.booleans())
    def address_takeover(self, data, use_candidate):
        """A NAT hands one client's port to another client, which checks from it."""
        address = data.draw(st.sampled_from(sorted(self.bound)))
        victim = self.bound[address]
        taker = data.draw(st.sampled_from([c for c in self.live.values() if c is not victim]))
        self.to_core(valid_check(taker, use_candidate), address)
        assert self.bound[address] is taker and address not in victim.tuples
        if victim.home == address:
            victim.home = self.fresh_client_address()
            self.resident[victim.home] = victim
        self.resident[address] = taker
        taker.home = address

    @rule(client=clients, variant=st.sampled_from(
              ["unknown_ufrag", "wrong_password", "no_integrity", "no_fingerprint", "bad_fingerprint",
               "retired_credentials", "role_conflict"]),
          sources=st.lists(st.sampled_from(["fresh", "bound"]), min_size=1, max_size=4))
    def unauthenticated_checks(self, client, variant, sources):
        """Checks that must bind nothing, refresh nothing, and get at most a no-larger error back."""
        username, password = f"{client.ufrag}:{client.remote_ufrag}", client.pwd
        options = {}
        if variant == "unknown_ufrag":
            username = f"nosuch{client.label}:{client.remote_ufrag}"
        elif variant == "wrong_password":
            password = "w" * 24 if client.pwd != "w" * 24 else "v" * 24
        elif variant == "no_integrity":
            options["message_integrity"] = False
        elif variant == "no_fingerprint":
            options["fingerprint"] = False
        elif variant == "retired_credentials":
            old_ufrag, password = client.retired[0] if client.retired else (f"nosuch{client.label}", client.pwd)
            username = f"{old_ufrag}:{client.remote_ufrag}"
        elif variant == "role_conflict":
            options["controlling"] = False
        for source in sources:
            address = self.fresh_hostile_address() if source == "fresh" or not self.bound else sorted(self.bound)[0]
            request = client.peer.binding_request(username=username, password=password, **options)
            if variant == "bad_fingerprint":
                request = request[:-1] + bytes([request[-1] ^ 0x5A])
            check = self.authentic_check(request)
            assert check is None or not check.controlling, "the model would accept this check"
            out = self.to_core(request, address)
            silent = ("unknown_ufrag", "retired_credentials", "no_fingerprint", "bad_fingerprint")
            if variant in silent or (not client.alive and variant != "no_integrity"):
                assert out == [], f"{variant} check from {address} was answered"

    # ---- hostile and broken traffic --------------------------------------------------------------

    @rule(payload=st.binary(min_size=0, max_size=80),
          first=st.sampled_from([0x00, 0x01, 0x03, 0x05, 0x14, 0x15, 0x16, 0x17, 0x3F, 0x40, 0x7F, 0x80, 0x90,
                                 0xBF, 0xC0, 0xFF]),
          from_bound=st.booleans())
    def garbage(self, payload, first, from_bound):
        data = bytes([first]) + payload
        if from_bound and self.bound:
            address = sorted(self.bound)[len(payload) % len(self.bound)]
            if 19 < first < 64 and not self.bound[address].connected:
                return  # a spoofed record before the handshake is the real peer's business
        else:
            address = self.fresh_hostile_address()
        out = self.to_core(data, address)
        assert all(reply[0] < 4 for reply, _ in out) or 19 < first < 64, f"garbage from {address} drew media"

    @rule(client=clients, kind=st.sampled_from(["client_hello", "srtp", "srtcp"]), from_other_session=st.booleans())
    def unbound_dtls_and_srtp(self, client, kind, from_other_session):
        """Records from a tuple no check bound to this session (RTP Bleed, CVE-2023-49786 class)."""
        if kind != "client_hello" and client.peer.srtp_keys is None:
            kind = "client_hello"
        strangers = sorted(a for a, owner in self.bound.items() if owner is not client and owner.connected)
        if from_other_session and strangers and kind != "client_hello":
            address = strangers[0]
        else:
            address = self.fresh_hostile_address()
        if kind == "client_hello":
            data = CLIENT_HELLO
        elif kind == "srtp":
            ssrc = next(self._hostile_ssrc)
            data = client.peer.protect_rtp(struct.pack("!BBHII", 0x80, 111, 1, 0, ssrc) + b"bleed")
        else:
            ssrc = next(self._hostile_ssrc)
            data = client.peer.protect_rtcp(struct.pack("!BBHI", 0x80, 201, 1, ssrc))
        drops = sum(self.core.metrics.drops.values())
        assert self.to_core(data, address) == [], f"{kind} of {client} from {address} was answered"
        assert sum(self.core.metrics.drops.values()) == drops + 1, f"{kind} from {address} was not counted as a drop"

    # ---- media --------------------------------------------------------------------------------

    @precondition(lambda self: any(c.peer.state == "connected" for c in self.everyone))
    @rule(data=st.data(), count=st.integers(1, 3))
    def send_media(self, data, count):
        client = data.draw(st.sampled_from([c for c in self.everyone if c.peer.state == "connected"]))
        expect = count if client.alive and self.bound.get(client.home) is client else 0
        echoes = client.echoes
        for _ in range(count):
            payload = f"{client.label}-{len(client.sent_payloads)}".encode()
            client.sent_payloads.add(payload)
            client.peer.send_rtp(payload, timestamp=960 * len(client.sent_payloads))
        self.pump()
        assert client.echoes - echoes == expect, f"{client} got {client.echoes - echoes} echoes, expected {expect}"

    @precondition(lambda self: any(c.peer.state == "connected" for c in self.everyone))
    @rule(data=st.data())
    def peer_close(self, data):
        """close_notify from the peer frees its session, if it comes from a tuple of that session."""
        client = data.draw(st.sampled_from([c for c in self.everyone if c.peer.state == "connected"]))
        frees = client.alive and self.bound.get(client.home) is client
        client.peer.close(self.now)
        self.pump()
        if frees:
            self.forget(client, "dtls_closed")

    # ---- time ---------------------------------------------------------------------------------

    @rule(seconds=st.one_of(st.floats(0.01, 3.0),
                            st.sampled_from([CONNECT_TIMEOUT + 0.5, CONSENT_TIMEOUT / 2, CONSENT_TIMEOUT + 1.5,
                                             CONSENT_TIMEOUT + 5.0])),
          keepalive=st.booleans())
    def advance(self, seconds, keepalive):
        """Time passes, timers fire; with keepalive, connected peers send consent checks from home (RFC 7675)."""
        end = self.now + seconds
        next_keepalive = self.now + KEEPALIVE_INTERVAL if keepalive else None
        floor = self.now
        while True:
            timers = [self.core.get_timer(), next_keepalive, *(c.peer.get_timer() for c in self.everyone)]
            self.now = min(end, max(floor, min((t for t in timers if t is not None), default=end)))
            timer = self.core.get_timer()
            if timer is not None and timer <= self.now:
                self.fire_core_timer()
            if next_keepalive is not None and next_keepalive <= self.now:
                next_keepalive += KEEPALIVE_INTERVAL
                self.keepalive()
            for client in self.everyone:
                timer = client.peer.get_timer()
                if timer is not None and timer <= self.now:
                    client.peer.handle_timer(self.now)
                    self.drain_peer(client)
            self.pump()
            if self.now >= end:
                self.sync_timeouts()
                return
            # OpenSSL's retransmission timers run on the real clock: one that is due but cannot fire is stepped over.
            timers = [self.core.get_timer(), *(c.peer.get_timer() for c in self.everyone)]
            stuck = any(t is not None and t <= self.now for t in timers)
            floor = self.now + 0.001 if stuck else self.now

    def keepalive(self) -> None:
        for client in list(self.live.values()):
            if client.connected and client.peer.state == "connected" and self.bound.get(client.home) is client:
                self.to_core(valid_check(client, use_candidate=False), client.home)

    # ---- invariants -----------------------------------------------------------------------------

    @invariant()
    def no_unexpected_frees(self):
        for item in drain_core_events(self.core):
            if isinstance(item, SessionClosed):
                assert item.session_id not in self.live, (
                    f"core freed {self.live[item.session_id]} ({item.reason}); the model expects it alive")
                self.closed_reasons[item.session_id] = item.reason

    @invariant()
    def routing_indexes_agree_with_the_model(self):
        table = self.core.sessions
        assert set(table.by_id) == set(self.live), "by_id holds other sessions than the model"
        assert {u: s.id for u, s in table.by_ufrag.items()} == {c.ufrag: c.session_id for c in self.live.values()}
        assert {a: s.id for a, s in table.by_address.items()} == {a: c.session_id for a, c in self.bound.items()}, (
            "by_address differs from the addresses authenticated checks bound")
        for session_id, client in self.live.items():
            session = table.by_id[session_id]
            assert session.id == session_id and session.ufrag == client.ufrag and session.pwd == client.pwd
            assert list(session.tuples.items()) == list(client.tuples.items()), f"{client}'s tuples differ"
            assert session.selected == client.selected, f"{client} selected {session.selected}, model {client.selected}"
            assert session.selected is None or session.selected in session.tuples
            assert len(session.tuples) <= MAX_TUPLES
            assert all(table.by_address.get(a) is session for a in session.tuples)
            assert (session.srtp is not None) == client.connected

    @invariant()
    def phases_agree_with_the_model(self):
        for client in self.everyone:
            assert client.session.phase is client.phase, (
                f"{client} is {client.session.phase.name} in the core, {client.phase.name} in the model")

    @invariant()
    def metrics_agree(self):
        metrics = self.core.metrics
        assert metrics.drops["internal_error"] == 0, "a datagram hit an internal error"
        assert metrics.sessions == len(self.core.sessions.by_id)
        assert metrics.bound_tuples == len(self.core.sessions.by_address)


def valid_check(client: Client, use_candidate: bool) -> bytes:
    """A Binding request with the session's current credentials, as the peer's ICE agent sends it."""
    return client.peer.binding_request(use_candidate=use_candidate, password=client.pwd,
                                       username=f"{client.ufrag}:{client.remote_ufrag}")


def _decrypts(client: Client, packet: bytes) -> bool:
    """Whether `packet` is `client`'s, without disturbing its replay window (a throwaway session)."""
    keys = client.peer.srtp_keys
    session = pylibsrtp.Session(pylibsrtp.Policy(key=keys.remote, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                                 srtp_profile=SRTP_PROFILES[keys.profile].libsrtp_id))
    try:
        if len(packet) > 1 and 191 < packet[1] < 224:
            session.unprotect_rtcp(packet)
        else:
            session.unprotect(packet)
    except pylibsrtp.Error:
        return False
    return True


CoreMachine.TestCase.settings = settings(max_examples=500, stateful_step_count=60, deadline=None, database=DATABASE,
                                         report_multiple_bugs=False)
TestCoreMachine = CoreMachine.TestCase
