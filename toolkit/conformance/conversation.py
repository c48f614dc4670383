"""The live side of one check: local UDP sockets (one per 5-tuple), probe peers, the recorder.

A check's steps talk to a `Conversation`. It owns named sockets — several sockets are
several 5-tuples, which is how NAT rebinding and unbound-tuple attacks are played — and named
sessions, each a `ProbePeer` the target answered through the signaling adapter. Every
datagram that crosses any socket, either way, is recorded with its time and addresses.

A datagram arriving on a socket goes into that socket's inbox (what `Expect` steps read) and,
when the socket belongs to a session, into that session's peer (so consent stays fresh and
SRTP decrypts). The peer's own output leaves through the session's current socket, which a
step may switch (`Session.socket`) to play a NAT rebinding — except its answers to STUN
requests, which leave from the socket the request arrived on (the request's 5-tuple, RFC 8445
§7.3.1.1 / RFC 8489 §6.3: a target that validates pairs with its own checks sees the answer on
the pair it checked).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from toolkit.conformance.model import NOT_SENT, Address, CheckFailed, CheckSkipped, Datagram, Settings
from toolkit.conformance.targets import Target
from toolkit.peer import DtlsConnected, DtlsRoleError, IceCompleted, PeerError, PeerFailed, PeerTimer, ProbePeer

Filter = Callable[[bytes], bool]
"""Decides, per datagram, whether it goes through (True) or is dropped by the check (False)."""
Transform = Callable[[bytes], "list[bytes]"]
"""Rewrites one outgoing datagram into the datagrams actually sent (none: dropped)."""


@dataclass(slots=True)
class Received:
    time: float
    data: bytes
    addr: Address


def is_stun_request(data: bytes) -> bool:
    """STUN first byte (RFC 9443) and a request class (bits 0x0110 of the type clear)."""
    return len(data) >= 20 and data[0] < 4 and (data[0] & 0x01) == 0 and (data[1] & 0x10) == 0


def is_rtcp(data: bytes) -> bool:
    """RTP/RTCP first byte and an RTCP packet type in 192–223 (RFC 5761 §4)."""
    return len(data) >= 2 and 127 < data[0] < 192 and 191 < data[1] < 224


def is_stun_response(data: bytes) -> bool:
    """STUN first byte and a response class (success or error: bit 0x0100 of the type set)."""
    return len(data) >= 20 and data[0] < 4 and (data[0] & 0x01) == 1


def stun_transaction_id(data: bytes) -> bytes | None:
    return data[8:20] if len(data) >= 20 and data[0] < 4 else None


class LocalSocket(asyncio.DatagramProtocol):
    """One local UDP socket = one 5-tuple towards the target."""

    def __init__(self, conversation: Conversation, name: str, owner: Session | None) -> None:
        self.conversation = conversation
        self.name = name
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None
        self.local: Address | None = None
        self.inbox: list[Received] = []
        self.arrived = asyncio.Event()
        self.mark = 0
        """Inbox length when a step last sent from here: `Expect` reads what came after."""
        self.last_request_tid: bytes | None = None
        """Transaction ID of the last STUN message a step sent from here: what "reply" means."""
        self.last_request_to: Address | None = None
        self.receive_filter: Filter | None = None

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        addr = addr[:2]
        conversation = self.conversation
        if self.receive_filter is not None and not self.receive_filter(data):
            conversation.record("in", self, addr, data, note="dropped by the check before the peer saw it")
            return
        conversation.record("in", self, addr, data)
        self.inbox.append(Received(conversation.now(), data, addr))
        self.arrived.set()
        if self.owner is not None:
            self.owner.receive(data, addr, self)

    def error_received(self, exc: OSError) -> None:
        self.conversation.notes.append(f"socket {self.name}: {exc}")

    def send(self, data: bytes, addr: Address) -> None:
        self.conversation.record("out", self, addr, data)
        self.transport.sendto(data, addr)

    async def wait_arrival(self, seen: int, deadline: float) -> bool:
        """Wait until the inbox holds more than `seen` datagrams; False at the deadline."""
        loop = self.conversation.loop
        while len(self.inbox) <= seen:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                return len(self.inbox) > seen
        return True


class Session:
    """A probe peer with a session at the target, driven on the conversation's loop."""

    def __init__(self, conversation: Conversation, name: str, peer: ProbePeer, socket: LocalSocket) -> None:
        self.conversation = conversation
        self.name = name
        self.peer = peer
        self.socket = socket
        self.answer_sdp: str | None = None
        self.handle: object = None
        """The signaling adapter's handle (a WHIP Location, for instance) for restart and close."""
        self.events: list[tuple[str, float, object]] = []
        """(socket name, time, event) for every event the peer emitted."""
        self.own_tids: set[bytes] = set()
        """Transaction IDs of the peer's own checks, so their answers count as background."""
        self.send_transform: Transform | None = None
        """Applied to the peer's own datagrams before they leave (loss, reordering, fragmenting)."""
        self._request_sockets: dict[bytes, LocalSocket] = {}
        """Transaction ID of each STUN request the peer received -> the socket it arrived on."""
        self._event_added = asyncio.Event()
        self._timer = PeerTimer(conversation.loop, peer, self.flush)

    @property
    def remote(self) -> Address:
        """Where the target listens: the selected pair, or the answer's first candidate."""
        if self.peer.remote is not None:
            return self.peer.remote
        override = self.conversation.target.remote_override
        if override is not None:
            return override
        if self.peer.answer is None or not self.peer.answer.candidates:
            raise CheckFailed(f"session {self.name}: the answer has no UDP candidate to send to")
        return self.peer.answer.candidates[0]

    def receive(self, data: bytes, addr: Address, socket: LocalSocket) -> None:
        if is_stun_request(data):
            self._request_sockets[data[8:20]] = socket
        self.peer.receive_datagram(data, addr, self.conversation.loop.time())
        self.flush(socket.name)

    def flush(self, origin: str | None = None) -> None:
        """Send what the peer queued — answers to STUN requests from the socket the request came
        in on, the rest through the current socket; collect its events; re-arm its timer."""
        for data, addr in self.peer.datagrams_to_send():
            if is_stun_request(data):
                self.own_tids.add(data[8:20])
            socket = self.socket
            if is_stun_response(data):
                socket = self._request_sockets.pop(data[8:20], socket)
            if self.send_transform is None:
                socket.send(data, addr)
                continue
            sent = self.send_transform(data)
            if not sent:
                self.conversation.record("out", socket, addr, data, note=NOT_SENT)
            for piece in sent:
                socket.send(piece, addr)
        now = self.conversation.now()
        origin = origin or self.socket.name
        event = self.peer.next_event()
        while event is not None:
            self.events.append((origin, now, event))
            self._event_added.set()
            event = self.peer.next_event()
        self._timer.rearm()

    def take_output(self) -> list[tuple[bytes, Address]]:
        """What the peer just queued, unsent: for steps that send it some other way."""
        return self.peer.datagrams_to_send()

    async def wait_event(self, kind: type, timeout: float, *, since: int = 0) -> tuple[int, object]:
        """The first event of `kind` at index ≥ `since`: (index, event). PeerFailed raises PeerError."""
        loop = self.conversation.loop
        deadline = loop.time() + timeout
        index = since
        while True:
            while index < len(self.events):
                _, _, event = self.events[index]
                if isinstance(event, kind):
                    return index, event
                if isinstance(event, PeerFailed) and kind is not PeerFailed:
                    raise PeerError(event.reason)
                index += 1
            left = deadline - loop.time()
            if left <= 0:
                raise PeerError(f"no {kind.__name__} within {timeout:g} s (peer state {self.peer.state!r})")
            self._event_added.clear()
            try:
                await asyncio.wait_for(self._event_added.wait(), left)
            except TimeoutError:
                pass

    async def more_events(self, since: int) -> None:
        """Until the peer has emitted more than `since` events. For long-lived readers: it waits
        without asyncio.wait_for, which on Python 3.11 can swallow a cancellation that coincides
        with the event, leaving the reader running after its check."""
        while len(self.events) <= since:
            self._event_added.clear()
            await self._event_added.wait()

    def close_timers(self) -> None:
        self._timer.cancel()


class Conversation:
    """Everything one check touches; `close()` releases it all (sessions at the target too)."""

    def __init__(self, target: Target, settings: Settings, rng: random.Random) -> None:
        self.target = target
        self.settings = settings
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.sockets: dict[str, LocalSocket] = {}
        self.sessions: dict[str, Session] = {}
        self.datagrams: list[Datagram] = []
        self.notes: list[str] = []
        self.scratch: dict[str, object] = {}
        """Values one step leaves for a later one (captured bytes, counters)."""
        self.cleanups: list[Callable[[], Awaitable[None]]] = []
        """What steps started and `close()` must stop first (data-channel associations, senders)."""

    def now(self) -> float:
        return self.loop.time() - self.started

    def record(self, direction: str, socket: LocalSocket, remote: Address, data: bytes, *, note: str = "") -> None:
        self.datagrams.append(Datagram(self.now(), direction, socket.name, socket.local, remote, data, note))

    def note(self, text: str) -> None:
        self.notes.append(text)

    async def open_socket(self, name: str, owner: Session | None = None, *, host: str | None = None) -> LocalSocket:
        """A new local socket (a new 5-tuple) on `host` (default: the run's local host)."""
        if name in self.sockets:
            raise ValueError(f"socket {name!r} already exists in this conversation")
        socket = LocalSocket(self, name, owner)
        host = host or self.settings.local_host
        transport, _ = await self.loop.create_datagram_endpoint(lambda: socket, local_addr=(host, 0))
        socket.transport = transport
        socket.local = transport.get_extra_info("sockname")[:2]
        self.sockets[name] = socket
        return socket

    async def ensure_socket(self, name: str, owner: Session | None = None) -> LocalSocket:
        socket = self.sockets.get(name)
        if socket is None:
            socket = await self.open_socket(name, owner)
        elif owner is not None and socket.owner is None:
            socket.owner = owner
        return socket

    def session(self, name: str) -> Session:
        session = self.sessions.get(name)
        if session is None:
            raise ValueError(f"no session {name!r} in this conversation: add an Offer or Connect step first")
        return session

    def socket(self, name: str) -> LocalSocket:
        socket = self.sockets.get(name)
        if socket is None:
            raise ValueError(f"no socket {name!r} in this conversation: add a Socket step first")
        return socket

    def new_peer(self, **options: object) -> ProbePeer:
        options.setdefault("consent_interval", self.settings.consent_interval)
        options.setdefault("dtls_role", self.settings.dtls_role)
        return ProbePeer(rng=random.Random(self.rng.getrandbits(64)), **options)

    async def offer(self, name: str, socket_name: str, peer: ProbePeer) -> Session:
        """Signal an offer through the target's adapter; the session is ready to start ICE."""
        if name in self.sessions:
            raise ValueError(f"session {name!r} already exists in this conversation")
        socket = await self.open_socket(socket_name) if socket_name not in self.sockets else self.sockets[socket_name]
        session = Session(self, name, peer, socket)
        socket.owner = session
        self.sessions[name] = session
        offer = peer.create_offer()
        try:
            answer, handle = await self.target.offer(offer, timeout=self.settings.connect_timeout)
        except PeerError as exc:
            raise CheckFailed(f"session {name}: signaling failed: {exc}") from None
        session.answer_sdp = answer
        session.handle = handle
        try:
            peer.set_answer(answer)
        except DtlsRoleError as exc:  # the role the run forced, not the target's fault
            raise CheckSkipped(f"session {name}: {exc}") from None
        except PeerError as exc:
            raise CheckFailed(f"session {name}: the answer is unusable: {exc}") from None
        return session

    async def start(self, session: Session, *, until: str = "dtls", timeout: float | None = None) -> None:
        """Run ICE (and DTLS unless `until` is "ice") from the session's socket; raise PeerError on failure."""
        peer = session.peer
        since = len(session.events)
        local = session.socket.local
        peer.start(self.loop.time(), self.target.remote_override, local_host=local[0] if local else None)
        session.flush()
        timeout = timeout or self.settings.connect_timeout
        await session.wait_event(IceCompleted, timeout, since=since)
        if until == "dtls":
            await session.wait_event(DtlsConnected, timeout, since=since)

    async def close(self) -> None:
        """Steps' cleanups, then DTLS close_notify and a signaling close for every session still
        open; close all sockets."""
        for cleanup in reversed(self.cleanups):
            try:
                await cleanup()
            except Exception as exc:  # one failed cleanup must not keep the sessions open
                self.note(f"cleanup: {type(exc).__name__}: {exc}")
        self.cleanups.clear()
        for session in self.sessions.values():
            session.close_timers()
            if session.peer.state not in ("closed", "failed"):
                session.peer.close(self.loop.time())
                session.flush()
                session.close_timers()
            if session.handle is not None:
                try:
                    await self.target.close(session.handle, timeout=2.0)
                except PeerError:
                    pass  # already gone (close_notify or consent freed it): nothing left to release
                session.handle = None
        for socket in self.sockets.values():
            socket.transport.close()
