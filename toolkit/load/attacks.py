"""Attack traffic for the load generator: the PERF-02 mixes, at a paced rate, bounded in count and time.

An attack is `KIND@PPS`, `KIND+KIND@PPS` or `mix@PPS` (every kind, equal shares); see
`parse_attack`. Each kind is data in `ATTACK_KINDS`: a description, where it is sent from
("pool": fresh source ports no ICE check ever bound; "bound": a legit session's own 5-tuple),
and a factory that pre-builds its datagrams with the crafters. Building happens once, before
the run, so a kind that needs legit sessions the context lacks fails then, not mid-run, and
the send loop only picks the next prepared datagram: Python reaches tens of thousands of
packets per second that way.

`AttackSender` opens the pool sockets (loopback targets only), paces the packets on ~2 ms ticks
round-robin over sockets and kinds, counts whatever comes back to the pool (a reply to an
unauthenticated packet is amplification evidence), and closes everything it opened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import math
import random
import socket
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from scapy.packet import Raw

from toolkit.crafters.dtls import client_hello_flight
from toolkit.crafters.rtp import Rtp
from toolkit.crafters.stun import ice_check
from toolkit.fuzz.stunkit import with_fingerprint, with_integrity, with_username
from toolkit.load.accounting import LoadError

DEFAULT_VARIANTS = 1024
DEFAULT_MAX_SECONDS = 10.0
TICK_SECONDS = 0.001
BURST_TICKS = 4
"""A tick sends at most this many ticks' worth of packets: a sender that fell behind its rate
sends flat out but still yields the loop every tick, instead of blocking it to catch up."""

ICE_CHARS = string.ascii_letters + string.digits + "+/"
"""RFC 8839 ice-char, what ufrags and passwords are made of."""
SRTP_TAG_LENGTH = 10
"""The auth tag of SRTP_AES128_CM_HMAC_SHA1_80, the profile every WebRTC stack offers."""


@dataclass(frozen=True, slots=True)
class BoundTuple:
    """A legit session's 5-tuple as an attack borrows it: its socket's send and its RTP stream."""

    send: Callable[[bytes], None]
    """Sends a datagram from the legit session's socket to the server."""
    ssrc: int
    next_sequence: Callable[[], int]
    """The RTP sequence number the legit stream is at; forged packets go a little ahead of it."""
    payload_type: int = 111


@dataclass(slots=True)
class AttackContext:
    """What the attacks may know: the server's address and the legit sessions beside them."""

    target: tuple[str, int]
    server_ufrags: list[tuple[str, str]] = field(default_factory=list)
    """(server ufrag, client ufrag) of each legit session."""
    bound: list[BoundTuple] = field(default_factory=list)


@dataclass(slots=True)
class BoundPacket:
    """A datagram for a bound 5-tuple whose RTP sequence number is set as it is sent."""

    bound: BoundTuple
    template: bytes
    sequence_offset: int

    def wire(self) -> bytes:
        sequence = (self.bound.next_sequence() + self.sequence_offset) & 0xFFFF
        return self.template[:2] + sequence.to_bytes(2, "big") + self.template[4:]


Factory = Callable[[AttackContext, random.Random, int], list]
"""(context, rng, count) -> prepared datagrams: bytes for pool kinds, BoundPacket for bound ones."""


@dataclass(frozen=True, slots=True)
class AttackKind:
    description: str
    source: Literal["pool", "bound"]
    factory: Factory


def _ice_string(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(ICE_CHARS, k=length))


def _garbage(context: AttackContext, rng: random.Random, count: int) -> list[bytes]:
    return [rng.randbytes(rng.randint(20, 1200)) for _ in range(count)]


def _restamped(template: bytes, rng: random.Random, username: str, key: bytes) -> bytes:
    """The template check with a fresh transaction id and `username`, its MESSAGE-INTEGRITY
    under `key` and FINGERPRINT recomputed: microseconds, where crafting anew takes a millisecond."""
    fresh = template[:8] + rng.randbytes(12) + template[20:]
    return with_fingerprint(with_integrity(with_username(fresh, username.encode()), key))


def _stun_unknown_ufrag(context: AttackContext, rng: random.Random, count: int) -> list[bytes]:
    real = {server for server, _ in context.server_ufrags}
    template = bytes(ice_check("x:y", "p" * 22, transaction_id=bytes(12), tie_breaker=rng.getrandbits(64)))
    datagrams = []
    while len(datagrams) < count:
        ufrag = _ice_string(rng, 8)
        if ufrag not in real:
            datagrams.append(_restamped(template, rng, f"{ufrag}:{_ice_string(rng, 8)}",
                                        _ice_string(rng, 22).encode()))
    return datagrams


def _stun_bad_credentials(context: AttackContext, rng: random.Random, count: int) -> list[bytes]:
    if not context.server_ufrags:
        raise LoadError("attack kind stun-bad-credentials needs at least one legit session "
                        "(it names a real server ufrag), and there are none")
    sessions = context.server_ufrags
    template = bytes(ice_check("x:y", "p" * 22, transaction_id=bytes(12), tie_breaker=rng.getrandbits(64)))
    return [
        _restamped(template, rng, f"{server}:{client}", _ice_string(rng, 22).encode())
        for server, client in itertools.islice(itertools.cycle(sessions), max(count, len(sessions)))
    ]


def _clienthello_unbound(context: AttackContext, rng: random.Random, count: int) -> list[bytes]:
    """One crafted ClientHello, its 32-byte random redrawn per variant (DTLS has no checksum)."""
    template = b"".join(map(bytes, client_hello_flight(random=bytes(32))))
    # record header 13 bytes, handshake header 12, client_version 2: then the random
    offset = 13 + 12 + 2
    return [template[:offset] + rng.randbytes(32) + template[offset + 32:] for _ in range(count)]


def _srtp_bad_tag(context: AttackContext, rng: random.Random, count: int) -> list[BoundPacket]:
    if not context.bound:
        raise LoadError("attack kind srtp-bad-tag needs at least one legit session "
                        "(it sends on a bound 5-tuple), and there are none")
    packets = []
    for bound in itertools.islice(itertools.cycle(context.bound), max(count, len(context.bound))):
        body = rng.randbytes(rng.randint(40, 160)) + rng.randbytes(SRTP_TAG_LENGTH)
        header = Rtp(payload_type=bound.payload_type, sequence=0, timestamp=rng.getrandbits(32), ssrc=bound.ssrc)
        packets.append(BoundPacket(bound, bytes(header / Raw(body)), rng.randint(1, 32)))
    return packets


ATTACK_KINDS: dict[str, AttackKind] = {
    "garbage": AttackKind("random bytes, 20 to 1200 long, any first byte", "pool", _garbage),
    "stun-unknown-ufrag": AttackKind(
        "well-formed ICE Binding requests for a ufrag the server never issued", "pool", _stun_unknown_ufrag),
    "stun-bad-credentials": AttackKind(
        "Binding requests naming a live session's ufrags, MESSAGE-INTEGRITY under a wrong password",
        "pool", _stun_bad_credentials),
    "clienthello-unbound": AttackKind(
        "DTLS 1.2 ClientHello with use_srtp from source ports no ICE check bound", "pool", _clienthello_unbound),
    "srtp-bad-tag": AttackKind(
        "SRTP on a live session's own 5-tuple: its SSRC, a sequence number just ahead, a random tag",
        "bound", _srtp_bad_tag),
}
MIX = "mix"


@dataclass(frozen=True, slots=True)
class AttackSpec:
    """Which kinds, in equal shares, at how many packets per second in all."""

    kinds: tuple[str, ...]
    pps: float

    def __str__(self) -> str:
        kinds = MIX if self.kinds == tuple(ATTACK_KINDS) else "+".join(self.kinds)
        return f"{kinds}@{self.pps:g}"


def _known() -> str:
    return ", ".join([*ATTACK_KINDS, MIX])


def parse_attack(text: str) -> AttackSpec:
    """`KIND@PPS`, `KIND+KIND@PPS` or `mix@PPS`; PPS a positive number, `k` for thousands (2k, 1.5k)."""
    kinds_text, at, rate_text = text.rpartition("@")
    if not at:
        raise LoadError(f"attack {text!r} is not KIND@PPS (e.g. garbage@2k, mix@500); known kinds: {_known()}")
    names = kinds_text.split("+")
    if names == [MIX]:
        kinds = tuple(ATTACK_KINDS)
    else:
        for name in names:
            if name == MIX:
                raise LoadError(f"attack {text!r} combines mix with other kinds; mix already names every kind")
            if name not in ATTACK_KINDS:
                raise LoadError(f"attack {text!r} has unknown kind {name!r}; known kinds: {_known()}")
        duplicate = next((name for name in names if names.count(name) > 1), None)
        if duplicate is not None:
            raise LoadError(f"attack {text!r} names {duplicate} twice")
        kinds = tuple(names)
    scale = 1000 if rate_text[-1:] in ("k", "K") else 1
    try:
        pps = float(rate_text[:-1] if scale == 1000 else rate_text) * scale
    except ValueError:
        pps = math.nan
    if not (0 < pps < math.inf):
        raise LoadError(f"attack {text!r} has rate {rate_text!r}: not a positive number of packets per second "
                        "(e.g. 500, 2k, 1.5k)")
    return AttackSpec(kinds, pps)


@dataclass(slots=True)
class AttackStats:
    """What an attack did; live while it runs (the runner reads it for a pps display)."""

    sent: int = 0
    sent_by_kind: dict[str, int] = field(default_factory=dict)
    sent_bytes: int = 0
    replies: int = 0
    """Datagrams that came back to the pool sockets: the server answered unauthenticated traffic."""
    replies_bytes: int = 0
    socket_errors: int = 0
    elapsed_s: float = 0.0


class AttackSender:
    """Sends one attack spec at its rate until max_packets or max_seconds, or `stop()`.

    `max_packets` defaults to the rate times `max_seconds`. Every packet is prepared in the
    constructor (LoadError there when the context lacks what a kind needs); `run()` opens
    `source_ports` sockets on `local_host` for the pool kinds and closes them before returning.
    `progress`, when given, is called with the live stats every `progress_interval` seconds.
    """

    def __init__(
        self,
        spec: AttackSpec,
        context: AttackContext,
        *,
        source_ports: int = 64,
        local_host: str = "127.0.0.1",
        max_packets: int | None = None,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        rng: random.Random | None = None,
        variants: int = DEFAULT_VARIANTS,
        progress: Callable[[AttackStats], None] | None = None,
        progress_interval: float = 0.5,
        reply_grace: float = 0.1,
    ) -> None:
        host, port = context.target
        target_ip = _ip_literal(host, "target")
        if not target_ip.is_loopback:
            raise LoadError(f"attack target {host} is not a loopback address; attacks go to loopback only")
        if _ip_literal(local_host, "local host").version != target_ip.version:
            raise LoadError(f"local host {local_host} and target {host} are not the same IP version")
        if not 0 < max_seconds < math.inf:
            raise LoadError(f"max_seconds must be a positive number, not {max_seconds}")
        if max_packets is None:
            max_packets = max(1, math.ceil(spec.pps * max_seconds))
        if max_packets < 1:
            raise LoadError(f"max_packets must be at least 1, not {max_packets}")
        if source_ports < 1:
            raise LoadError(f"source_ports must be at least 1, not {source_ports}")
        if variants < 1:
            raise LoadError(f"variants must be at least 1, not {variants}")
        self.spec = spec
        self.max_packets = max_packets
        self.max_seconds = max_seconds
        self.progress = progress
        self.progress_interval = progress_interval
        self.reply_grace = reply_grace
        self.stats = AttackStats(sent_by_kind={name: 0 for name in spec.kinds})
        rng = rng or random.Random()
        self._senders = [
            (self._bound_sender if ATTACK_KINDS[name].source == "bound" else self._pool_sender)(
                ATTACK_KINDS[name].factory(context, rng, variants))
            for name in spec.kinds
        ]
        self._pool_ports = source_ports if any(ATTACK_KINDS[n].source == "pool" for n in spec.kinds) else 0
        self._local_host = local_host
        self._family = socket.AF_INET if target_ip.version == 4 else socket.AF_INET6
        self._target = (str(target_ip), port)
        self._sockets: list[socket.socket] = []
        self._socket_cycle: itertools.cycle[socket.socket] = itertools.cycle(())
        self._stopping = False
        self._started = False

    @property
    def local_ports(self) -> list[int]:
        """The pool's source ports while it runs."""
        return [sock.getsockname()[1] for sock in self._sockets]

    def stop(self) -> None:
        """End the run at the next tick."""
        self._stopping = True

    async def run(self) -> AttackStats:
        if self._started:
            raise LoadError("an AttackSender runs once; make a new one")
        self._started = True
        loop = asyncio.get_running_loop()
        try:
            self._open_pool(loop)
            await self._pace()
            if self._sockets and self.reply_grace > 0:
                await asyncio.sleep(self.reply_grace)
        finally:
            self._close_pool(loop)
        return self.stats

    async def _pace(self) -> None:
        stats = self.stats
        by_kind = stats.sent_by_kind
        rate = self.spec.pps
        burst = max(1, math.ceil(rate * TICK_SECONDS * BURST_TICKS))
        senders = self._senders
        names = self.spec.kinds
        count = len(senders)
        position = 0
        attempts = 0
        clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
        start = clock()
        next_progress = self.progress_interval
        while not self._stopping:
            elapsed = clock() - start
            stats.elapsed_s = elapsed
            if elapsed >= self.max_seconds:
                break
            due = min(min(int(rate * elapsed), self.max_packets) - attempts, burst)
            for _ in range(due):
                try:
                    size = senders[position]()
                except OSError:
                    stats.socket_errors += 1
                else:
                    stats.sent += 1
                    stats.sent_bytes += size
                    by_kind[names[position]] += 1
                position = position + 1 if position + 1 < count else 0
            attempts += due
            if attempts >= self.max_packets:
                break
            if self.progress is not None and elapsed >= next_progress:
                self.progress(stats)
                next_progress = elapsed + self.progress_interval
            await asyncio.sleep(TICK_SECONDS)
        stats.elapsed_s = clock() - start
        if self.progress is not None:
            self.progress(stats)

    def _pool_sender(self, prepared: list[bytes]) -> Callable[[], int]:
        """Sends the kind's next datagram from the next pool socket; returns its size."""
        datagrams = itertools.cycle(prepared)

        def send_next() -> int:
            data = next(datagrams)
            next(self._socket_cycle).sendto(data, self._target)
            return len(data)

        return send_next

    @staticmethod
    def _bound_sender(prepared: list[BoundPacket]) -> Callable[[], int]:
        """Sends the kind's next packet through its legit session's socket; returns its size."""
        packets = itertools.cycle(prepared)

        def send_next() -> int:
            packet = next(packets)
            data = packet.wire()
            packet.bound.send(data)
            return len(data)

        return send_next

    def _open_pool(self, loop: asyncio.AbstractEventLoop) -> None:
        for _ in range(self._pool_ports):
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            self._sockets.append(sock)
            sock.setblocking(False)
            sock.bind((self._local_host, 0))
            loop.add_reader(sock.fileno(), self._on_readable, sock)
        self._socket_cycle = itertools.cycle(self._sockets)

    def _on_readable(self, sock: socket.socket) -> None:
        stats = self.stats
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                stats.socket_errors += 1
                return
            stats.replies += 1
            stats.replies_bytes += len(data)

    def _close_pool(self, loop: asyncio.AbstractEventLoop) -> None:
        for sock in self._sockets:
            loop.remove_reader(sock.fileno())
            self._on_readable(sock)
            sock.close()
        self._sockets.clear()


def _ip_literal(host: str, role: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        raise LoadError(f"{role} {host!r} is not an IP address literal") from None
