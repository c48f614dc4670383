"""The asyncio shell around ProbePeer: one real UDP socket per peer, WHIP for signaling.

Works on the stock loop and on uvloop alike: it only uses create_datagram_endpoint,
call_at and loop.time(). After every input the peer's outputs are drained
(docs/architecture.md, principle 1): datagrams go to the socket, events to `received`.
`PeerTimer` keeps the one timer a peer asks for; the other shells around a ProbePeer (the
conformance conversation, the voice benchmark) use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

from toolkit.peer.core import ProbePeer
from toolkit.peer.events import Address, DtlsConnected, IceCompleted, PeerFailed
from toolkit.peer.offer import PeerError
from toolkit.peer.shell.whip import whip_delete, whip_post


class PeerTimer:
    """The one asyncio timer a ProbePeer asks for through `get_timer()`.

    Call `rearm()` after every input: it moves the timer only when the deadline changed. When
    it fires, the peer handles its timer, then `after` runs (the shell's flush)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, peer: ProbePeer, after: Callable[[], None]) -> None:
        self._loop = loop
        self._peer = peer
        self._after = after
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def rearm(self) -> None:
        when = self._peer.get_timer()
        if when == self._at:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None if when is None else self._loop.call_at(when, self._fire)
        self._at = when

    def cancel(self) -> None:
        """Drop the pending call (the shell is closing); a later `rearm()` with a new deadline sets one again."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        # call_at may fire a hair early; the peer must see its deadline as reached.
        now = max(self._loop.time(), self._at)
        self._handle = self._at = None
        self._peer.handle_timer(now)
        self._after()


class PeerConnection:
    """A ProbePeer on a live socket. `received` holds every event, unbounded: consume it."""

    def __init__(self, peer: ProbePeer, loop: asyncio.AbstractEventLoop) -> None:
        self.peer = peer
        self.loop = loop
        self.transport: asyncio.DatagramTransport | None = None
        self.local_addr: Address | None = None
        self.location: str | None = None
        self.headers: Mapping[str, str] = {}
        """Extra HTTP headers of every WHIP request of this session (an Authorization, say)."""
        self.ice_completed: IceCompleted | None = None
        self.dtls_connected: DtlsConnected | None = None
        self.received: asyncio.Queue[object] = asyncio.Queue()
        self.socket_errors: list[OSError] = []
        self.phase_times: dict[str, float] = {}
        """time.perf_counter() at each setup step connect_whip passed: offer_sent, answer, first_stun,
        ice_completed, dtls_connected (PERF-01 and the load generator read them; uvloop's own
        clock counts whole milliseconds)."""
        self.media_handler: Callable[[bytes, Address], None] | None = None
        """When set, SRTP/SRTCP datagrams go here instead of the peer: a lean path for load,
        which protects and unprotects with the keys in `peer.srtp_keys` itself."""
        self._timer = PeerTimer(loop, peer, self.flush)
        self._closed = False

    async def wait_for(self, event_type: type, timeout: float) -> object:
        """Consume events up to and including the first `event_type`; return it.

        A PeerFailed on the way raises PeerError with its reason (unless PeerFailed is what
        is awaited); so does the timeout.
        """
        deadline = self.loop.time() + timeout
        while True:
            try:
                event = self.received.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    left = deadline - self.loop.time()
                    if left <= 0:
                        raise TimeoutError
                    event = await asyncio.wait_for(self.received.get(), left)
                except TimeoutError:
                    raise PeerError(
                        f"no {event_type.__name__} within {timeout:g} s "
                        f"(peer state {self.peer.state.value!r})"
                    ) from None
            if isinstance(event, event_type):
                return event
            if isinstance(event, PeerFailed):
                raise PeerError(event.reason)

    def send_rtp(
        self,
        payload: bytes,
        *,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
    ) -> None:
        self.peer.send_rtp(payload, timestamp=timestamp, marker=marker, payload_type=payload_type)
        self.flush()

    def send_rtcp(self, packet: bytes) -> None:
        self.peer.send_rtcp(packet)
        self.flush()

    def send_raw(self, data: bytes, addr: Address | None = None) -> None:
        self.peer.send_raw(data, addr)
        self.flush()

    def flush(self) -> None:
        """Send queued datagrams, move events to `received`, re-arm the peer's timer."""
        peer = self.peer
        outgoing = peer.datagrams_to_send()
        if outgoing and not self._closed:
            sendto = self.transport.sendto
            for data, addr in outgoing:
                sendto(data, addr)
        event = peer.next_event()
        while event is not None:
            self.received.put_nowait(event)
            event = peer.next_event()
        self._timer.rearm()

    async def close(self) -> None:
        """DTLS close_notify, WHIP DELETE, then the socket; safe to call twice."""
        if self._closed:
            return
        try:
            self.peer.close(self.loop.time())
            self.flush()
            if self.location is not None:
                try:
                    await whip_delete(self.location, headers=self.headers)
                except PeerError as exc:
                    if exc.status != 404:  # 404: close_notify already ended the session
                        raise
        finally:
            self._closed = True
            self._timer.cancel()
            self.transport.close()

    def _datagram_received(self, data: bytes, addr: tuple) -> None:
        if self.media_handler is not None and data and 127 < data[0] < 192:  # RFC 7983: RTP/RTCP
            self.media_handler(data, addr)
            return
        self.peer.receive_datagram(data, addr[:2], self.loop.time())
        self.flush()


class _PeerProtocol(asyncio.DatagramProtocol):
    def __init__(self, connection: PeerConnection) -> None:
        self._connection = connection

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._connection._datagram_received(data, addr)

    def error_received(self, exc: OSError) -> None:
        # ICMP errors (port unreachable after the server went away) must not stop the peer.
        self._connection.socket_errors.append(exc)


async def connect_whip(
    whip_url: str,
    *,
    peer: ProbePeer | None = None,
    local_host: str = "127.0.0.1",
    remote: Address | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> PeerConnection:
    """Offer over WHIP, run ICE and DTLS from a fresh UDP socket; return once SRTP is ready.

    `remote` overrides the answer's candidates (a server behind NAT or in a container).
    On failure the socket is closed, the WHIP session deleted if one was made, and
    PeerError raised.
    """
    loop = asyncio.get_running_loop()
    peer = peer or ProbePeer()
    connection = PeerConnection(peer, loop)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _PeerProtocol(connection), local_addr=(local_host, 0)
    )
    connection.transport = transport
    connection.local_addr = transport.get_extra_info("sockname")[:2]
    connection.headers = dict(headers or {})
    deadline = loop.time() + timeout
    times = connection.phase_times
    try:
        offer = peer.create_offer()
        times["offer_sent"] = time.perf_counter()
        answer, connection.location = await whip_post(whip_url, offer, headers=headers, timeout=timeout)
        times["answer"] = time.perf_counter()
        peer.set_answer(answer)
        peer.start(loop.time(), remote, local_host=connection.local_addr[0])
        connection.flush()
        times["first_stun"] = time.perf_counter()
        connection.ice_completed = await connection.wait_for(IceCompleted, deadline - loop.time())
        times["ice_completed"] = time.perf_counter()
        connection.dtls_connected = await connection.wait_for(
            DtlsConnected, deadline - loop.time()
        )
        times["dtls_connected"] = time.perf_counter()
    except BaseException:
        location, connection.location = connection.location, None
        await connection.close()
        if location is not None:
            with contextlib.suppress(PeerError):
                await whip_delete(location, headers=headers, timeout=min(timeout, 2.0))
        raise
    return connection
