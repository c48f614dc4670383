"""PERF variants: a slow setup, a per-datagram cost for traffic the server drops, and state kept
for requests nobody authenticated. Each bug costs time or memory only where a real server's
would; the slow parts wait instead of burning CPU, so a variant slows only its own server and
not the others the zoo runs beside it on the same cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from reference_server import stun
from reference_server.core import ServerCore
from reference_server.events import Address
from reference_server.metrics import Metrics
from reference_server.sessions import Session
from tests.zoo import variant
from tests.zoo.seams import addressed_session, after_drop, parse_stun, per_instance

KEY_SERVICE_SECONDS = 1.5
"""slow-handshake-key: how long after the offer a session's handshake key is ready."""
DROP_LOOKUP_SECONDS = 0.0025
"""drop-log-blocks: one blocking reverse-DNS lookup per dropped datagram. At 500 attack packets
a second that is 125% of the event loop's time, so the legit traffic queues behind the attack."""
PENDING_BUFFER_BYTES = 64 * 1024
"""session-per-unknown-ufrag: the receive buffer each pending session allocates up front."""


@variant("slow-handshake-key", checks=("PERF-01",),
         why="holds each session's DTLS handshake until a per-session key from a slow key service is ready, "
             "1.5 s after the offer, so the ClientHello waits unanswered")
class SlowHandshakeKey(ServerCore):
    _held: dict[Session, list[tuple[bytes, Address]]] = per_instance(dict)

    def _key_ready_at(self, session: Session) -> float:
        return session.created_at + KEY_SERVICE_SECONDS

    def _receive_dtls(self, data: bytes, address: Address, now: float) -> None:
        session = self.sessions.by_address.get(address)
        if session is not None and (session in self._held or now < self._key_ready_at(session)):
            self._held.setdefault(session, []).append((data, address))
            return
        super()._receive_dtls(data, address, now)

    def get_timer(self) -> float | None:
        timers = [self._key_ready_at(session) for session in self._held]
        timer = super().get_timer()
        if timer is not None:
            timers.append(timer)
        return min(timers, default=None)

    def handle_timer(self, now: float) -> None:
        for session in [session for session in self._held if self._key_ready_at(session) <= now]:
            for data, address in self._held.pop(session):
                super()._receive_dtls(data, address, now)
        super().handle_timer(now)

    def _free(self, session: Session, reason: str) -> None:
        self._held.pop(session, None)
        super()._free(session, reason)


@variant("drop-log-blocks", checks=("PERF-02", "PERF-04"),
         why="logs every dropped datagram with its sender's reverse-DNS name, looked up with a blocking "
             "2.5 ms resolver call on the event loop, so attack traffic stalls the legit media and the voice loop")
@after_drop
def drop_log_blocks(_core: ServerCore, _reason: str, address: Address | None, _detail: object) -> None:
    if address is not None:
        time.sleep(DROP_LOOKUP_SECONDS)


@dataclass(slots=True)
class PendingSession:
    """A session opened for a Binding request whose offer has not arrived (it never will)."""

    ufrag: bytes
    address: Address
    request: bytes
    receive_buffer: bytearray = field(default_factory=lambda: bytearray(PENDING_BUFFER_BYTES))


class PendingMetrics(Metrics):
    """The reference's metrics, with the pending sessions counted in the sessions gauge."""

    def __init__(self, pending: list[PendingSession]) -> None:
        super().__init__()
        self.pending = pending

    @property
    def sessions(self) -> int:
        return self._table_sessions + len(self.pending)

    @sessions.setter
    def sessions(self, value: int) -> None:
        self._table_sessions = value


@variant("session-per-unknown-ufrag", checks=("PERF-03",),
         why="opens a pending session, with a 64 KiB receive buffer, for every Binding request naming an unknown "
             "ufrag (in case its offer is still on the way) and never expires them")
class SessionPerUnknownUfrag(ServerCore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[PendingSession] = []
        self.metrics = PendingMetrics(self._pending)

    def _receive_stun(self, data: bytes, address: Address, now: float) -> None:
        msg = parse_stun(data)
        if msg is not None and msg.msg_class == stun.REQUEST and addressed_session(self, msg) is None:
            username = msg.get(stun.USERNAME)
            if username is not None:
                self._pending.append(PendingSession(username.split(b":", 1)[0], address, data))
        super()._receive_stun(data, address, now)
