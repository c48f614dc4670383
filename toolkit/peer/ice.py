"""The probe peer's ICE: a controlling agent with aggressive nomination (RFC 8445) that keeps
consent fresh (RFC 7675), on aioice's STUN codec.

Sans-IO: STUN datagrams come in through `receive_stun`, time through `handle_timer(now)`;
datagrams go out through `datagrams_to_send()`, results through `next_event()` (the peer's own
IceCompleted, StunResponse and StunRequestReceived, and IceFailed, which the peer turns into its
PeerFailed). Garbage is counted in the shared `drops` by reason, never raised.

The target's credentials are read from `remote_credentials` at every use, so an ICE restart
made by changing them in place (the peer has no restart of its own) takes effect at once.
"""

from __future__ import annotations

import random
import string
import struct
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from aioice import stun

from toolkit.peer.events import Address, IceCompleted, StunRequestReceived, StunResponse
from toolkit.peer.offer import PeerError

STUN_RTO = 0.1
"""First retransmission interval of a Binding request (RFC 8489 §6.2.1 suggests 500 ms on
the open Internet; loopback and LAN targets answer in well under 100 ms)."""
STUN_MAX_INTERVAL = 1.6
"""The doubling stops here, so one check gives up after about 6 s instead of 39.5 s."""
STUN_TRANSMISSIONS = 7
"""Rc of RFC 8489 §6.2.1."""
STUN_FINAL_WAIT = 1.6
"""Rm × RTO: how long the last transmission waits for an answer."""
CONSENT_TIMEOUT = 30.0
"""RFC 7675 §5.1: consent is lost after 30 s without an answered check."""
PRFLX_PRIORITY = (110 << 24) | (65535 << 8) | 255
"""RFC 8445 §5.1.2.1 priority of the peer-reflexive candidate the server will learn."""

_ICE_CHARS = string.ascii_letters + string.digits
_STUN_ATTRIBUTE_HEADER = struct.Struct("!HH")
_MESSAGE_INTEGRITY = 0x0008
_FINGERPRINT = 0x8028


class RemoteCredentials(Protocol):
    """The target's ICE credentials, as its answer carries them (`offer.Answer` is one)."""

    ice_ufrag: str
    ice_pwd: str


@dataclass(slots=True)
class IceFailed:
    """No nominating check succeeded, or consent expired: the peer fails with this reason."""

    reason: str


@dataclass(slots=True)
class _Check:
    """A Binding request in flight, retransmitted on the RFC 8489 schedule until answered."""

    request: bytes
    remote: Address
    nominating: bool
    first_sent: float
    next_at: float = 0.0
    interval: float = STUN_RTO
    transmissions: int = 0


class IceAgent:
    """One controlling agent: checks to candidates until one nominating check is answered
    (IceCompleted, `selected` set), then consent checks to that pair every `consent_interval`
    seconds (None: none), failing after CONSENT_TIMEOUT without an answer."""

    def __init__(self, rng: random.Random, drops: Counter[str], *, consent_interval: float | None) -> None:
        self._rng = rng
        self._drops = drops
        self.consent_interval = consent_interval
        self.local_ufrag = "".join(rng.choice(_ICE_CHARS) for _ in range(8))
        self.local_pwd = "".join(rng.choice(_ICE_CHARS) for _ in range(24))
        self.tie_breaker = rng.getrandbits(64)
        self.remote_credentials: RemoteCredentials | None = None
        self.selected: Address | None = None
        """The pair the first answered nominating check chose; None until then."""
        self._outgoing: list[tuple[bytes, Address]] = []
        self._events: deque[IceCompleted | StunResponse | StunRequestReceived | IceFailed] = deque()
        self._checks: dict[bytes, _Check] = {}
        self._consent_at: float | None = None
        self._consent_answered_at = 0.0

    # -- inputs ----------------------------------------------------------------------------

    def start(self, targets: Iterable[Address], now: float) -> None:
        """Send a nominating check to each target."""
        for target in targets:
            self._send_new_check(target, nominating=True, now=now)

    def binding_request(
        self,
        *,
        use_candidate: bool = True,
        password: str | None = None,
        username: str | None = None,
        controlling: bool = True,
        extra_attributes: Iterable[tuple[str | int, object]] = (),
        transaction_id: bytes | None = None,
        message_integrity: bool = True,
        fingerprint: bool = True,
    ) -> bytes:
        """Build one connectivity check; the defaults are the agent's own nominating check.

        `extra_attributes` holds (aioice attribute name, value) pairs, or (type number, raw
        bytes) pairs for attributes aioice does not know; all go before MESSAGE-INTEGRITY.
        Nothing is tracked: responses show up as StunResponse events.
        """
        if (username is None or password is None) and self.remote_credentials is None:
            raise PeerError(
                "binding_request needs the answer's ice-ufrag and ice-pwd: call set_answer "
                "first, or pass username and password"
            )
        if username is None:
            username = f"{self.remote_credentials.ice_ufrag}:{self.local_ufrag}"
        if password is None:
            password = self.remote_credentials.ice_pwd
        attributes: dict[str, object] = {"USERNAME": username, "PRIORITY": PRFLX_PRIORITY}
        attributes["ICE-CONTROLLING" if controlling else "ICE-CONTROLLED"] = self.tie_breaker
        if use_candidate:
            attributes["USE-CANDIDATE"] = None
        raw_attributes = b""
        for kind, value in extra_attributes:
            if isinstance(kind, str):
                attributes[kind] = value
            else:
                raw_attributes += _stun_attribute(kind, value)
        message = stun.Message(
            stun.Method.BINDING,
            stun.Class.REQUEST,
            transaction_id=transaction_id or self._rng.getrandbits(96).to_bytes(12, "big"),
            attributes=attributes,
        )
        data = _with_stun_length(bytes(message) + raw_attributes)
        if message_integrity:
            data = _with_stun_length(
                data + _stun_attribute(_MESSAGE_INTEGRITY, stun.message_integrity(data, password.encode()))
            )
        if fingerprint:
            data = _with_stun_length(
                data + _stun_attribute(_FINGERPRINT, struct.pack("!I", stun.message_fingerprint(data)))
            )
        return data

    def receive_stun(self, data: bytes, addr: Address, now: float) -> None:
        """One datagram whose first byte says STUN (0–3)."""
        try:
            message = stun.parse_message(data)
        except (ValueError, struct.error):
            self._drops["stun_malformed"] += 1
            return
        if message.message_method != stun.Method.BINDING:
            self._drops["stun_not_binding"] += 1
            return
        message_class = message.message_class
        if message_class == stun.Class.REQUEST:
            self._answer_request(message, data, addr)
            return
        if message_class == stun.Class.INDICATION:
            self._drops["stun_indication"] += 1
            return
        is_error = message_class == stun.Class.ERROR
        error_code = message.error_code
        self._events.append(StunResponse(data, addr, message.transaction_id, is_error, error_code))
        check = self._checks.get(message.transaction_id)
        if check is None:
            return
        if addr != check.remote:
            self._drops["stun_response_wrong_address"] += 1
            return
        if is_error:
            del self._checks[message.transaction_id]
            if check.nominating and self.selected is None and not self._nominating_pending():
                reason = message.attributes.get("ERROR-CODE", (error_code, ""))[1]
                self._fail(
                    f"ICE: Binding request to {addr[0]}:{addr[1]} was answered with error "
                    f"{error_code} {reason}".rstrip()
                )
            return
        if not message.check_message_integrity(self.remote_credentials.ice_pwd.encode()):
            self._drops["stun_response_bad_integrity"] += 1
            return
        del self._checks[message.transaction_id]
        if not check.nominating:
            self._consent_answered_at = now
        elif self.selected is None:
            self._completed(addr, now - check.first_sent, now)

    def handle_timer(self, now: float) -> None:
        for transaction_id, check in list(self._checks.items()):
            if now < check.next_at:
                continue
            if check.transmissions < STUN_TRANSMISSIONS:
                self._transmit(check, now)
                continue
            del self._checks[transaction_id]
            if check.nominating and self.selected is None and not self._nominating_pending():
                host, port = check.remote
                self._fail(
                    f"ICE: no answer to {STUN_TRANSMISSIONS} Binding requests to {host}:{port} "
                    f"within {now - check.first_sent:.1f} s"
                )
                return
        if self._consent_at is not None:
            if now - self._consent_answered_at >= CONSENT_TIMEOUT:
                self._fail(f"ICE consent expired: no consent check answered for {CONSENT_TIMEOUT:.0f} s")
                return
            if now >= self._consent_at:
                self._send_new_check(self.selected, nominating=False, now=now)
                self._consent_at = now + self.consent_interval * self._rng.uniform(0.8, 1.2)

    def stop(self) -> None:
        """No more checks and no more timers (the peer failed or closed)."""
        self._checks.clear()
        self._consent_at = None

    # -- outputs ---------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        times = [check.next_at for check in self._checks.values()]
        if self._consent_at is not None:
            times += (self._consent_at, self._consent_answered_at + CONSENT_TIMEOUT)
        return min(times) if times else None

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def next_event(self) -> IceCompleted | StunResponse | StunRequestReceived | IceFailed | None:
        return self._events.popleft() if self._events else None

    def is_checking(self, addr: Address) -> bool:
        """Whether a nominating check to `addr` is in flight (no pair is selected yet)."""
        return any(check.nominating and check.remote == addr for check in self._checks.values())

    # -- inside ----------------------------------------------------------------------------

    def _send_new_check(self, remote: Address, *, nominating: bool, now: float) -> None:
        transaction_id = self._rng.getrandbits(96).to_bytes(12, "big")
        request = self.binding_request(use_candidate=nominating, transaction_id=transaction_id)
        check = _Check(request=request, remote=remote, nominating=nominating, first_sent=now)
        self._checks[transaction_id] = check
        self._transmit(check, now)

    def _transmit(self, check: _Check, now: float) -> None:
        self._outgoing.append((check.request, check.remote))
        check.transmissions += 1
        if check.transmissions < STUN_TRANSMISSIONS:
            check.next_at = now + check.interval
            check.interval = min(check.interval * 2, STUN_MAX_INTERVAL)
        else:
            check.next_at = now + STUN_FINAL_WAIT

    def _nominating_pending(self) -> bool:
        return any(check.nominating for check in self._checks.values())

    def _answer_request(self, message: stun.Message, data: bytes, addr: Address) -> None:
        """Answer an authentic check (a full-ICE server sends them; a lite one must not)."""
        username = message.attributes.get("USERNAME")
        key = self.local_pwd.encode()
        authentic = (
            isinstance(username, str)
            and username.startswith(self.local_ufrag + ":")
            and message.check_message_integrity(key)
        )
        self._events.append(StunRequestReceived(data, addr, authentic))
        if not authentic:
            self._drops["stun_request_unauthenticated"] += 1
            return
        response = stun.Message(
            stun.Method.BINDING,
            stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
            attributes={"XOR-MAPPED-ADDRESS": addr},
        )
        response.add_message_integrity(key)
        self._outgoing.append((bytes(response), addr))

    def _completed(self, remote: Address, rtt: float, now: float) -> None:
        self.selected = remote
        self._checks = {tid: c for tid, c in self._checks.items() if not c.nominating}
        self._events.append(IceCompleted(remote, rtt))
        if self.consent_interval is not None:
            self._consent_answered_at = now
            self._consent_at = now + self.consent_interval * self._rng.uniform(0.8, 1.2)

    def _fail(self, reason: str) -> None:
        self.stop()
        self._events.append(IceFailed(reason))


def _stun_attribute(kind: int, value: bytes) -> bytes:
    return _STUN_ATTRIBUTE_HEADER.pack(kind, len(value)) + value + bytes(-len(value) % 4)


def _with_stun_length(data: bytes) -> bytes:
    return data[:2] + struct.pack("!H", len(data) - 20) + data[4:]
