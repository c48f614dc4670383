"""The relay ⇄ worker forwarding protocol: one client datagram per UDP datagram, plus its client.

A relay owns the public UDP port; workers hold the sessions. Each datagram between them is a
short header naming the client's transport address, followed by the client's datagram
unchanged (it is not parsed, re-encrypted or split), so a worker may sit on the same host or
on another one, and the worker's sans-IO core sees the real client address.

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |   0x52 ('R')  |   0x47 ('G')  |  Version = 1  |     Kind      |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |     Flags     |  Family (4/6) |          Client port          |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |         Client IP address (4 bytes for IPv4, 16 for IPv6)     |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |         The client's datagram, byte for byte (≥ 1 byte) ...   |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Kind 1, TO_WORKER: relay → worker, a datagram the client sent to the public port.
Kind 2, TO_CLIENT: worker → relay, a datagram the relay sends to the client from the public port.
Flags, bit 0 (0x01), BIND, TO_CLIENT only: the client address is bound to a session on this
worker (an authenticated STUN check bound it), so the relay may route the client's later
datagrams there. A TO_CLIENT without BIND (an answer to an unauthenticated check) is sent
and creates no relay state. All other flag bits are zero. Multi-byte fields are big-endian.

Addresses are converted with socket.inet_pton/inet_ntop (no socket is opened), so a decoded
address is the very string the socket module gives for the same client.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton  # address conversions only: no socket here

MAGIC = b"RG"
VERSION = 1
BIND = 0x01
FIXED_HEADER = 8
MAX_UDP_PAYLOAD = 65507  # IPv4's limit; the stricter of the two families


class RelayProtocolError(Exception):
    """A relay datagram that cannot be decoded, or a value that cannot be encoded."""


class Kind(IntEnum):
    TO_WORKER = 1
    TO_CLIENT = 2


@dataclass(frozen=True, slots=True)
class Forward:
    kind: Kind
    client: tuple[str, int]
    payload: bytes
    bind: bool = False


@lru_cache(maxsize=4096)
def header(kind: Kind, client: tuple[str, int], bind: bool = False) -> bytes:
    """The header for one client and direction; cached, since a flow repeats it per packet."""
    if bind and kind is not Kind.TO_CLIENT:
        raise RelayProtocolError("the BIND flag is only valid on TO_CLIENT messages")
    host, port = client
    try:
        family, packed = 4, inet_pton(AF_INET, host)
    except OSError:
        try:
            family, packed = 6, inet_pton(AF_INET6, host)
        except OSError:
            raise RelayProtocolError(f"client host {host!r} is not an IP address") from None
    if not 0 < port <= 0xFFFF:
        raise RelayProtocolError(f"client port {port} is outside 1..65535")
    return MAGIC + bytes((VERSION, kind, BIND if bind else 0, family)) + port.to_bytes(2, "big") + packed


def encode(kind: Kind, client: tuple[str, int], payload: bytes, *, bind: bool = False) -> bytes:
    if not payload:
        raise RelayProtocolError("there is no client datagram to forward (empty payload)")
    head = header(kind, client, bind)
    if len(head) + len(payload) > MAX_UDP_PAYLOAD:
        raise RelayProtocolError(f"a {len(payload)}-byte datagram with its {len(head)}-byte header "
                                 f"exceeds {MAX_UDP_PAYLOAD} bytes, the largest UDP payload")
    return head + payload


def _host(packed: bytes) -> str:
    """Formatted as the socket module formats addresses, so routes and sessions key alike."""
    return inet_ntop(AF_INET if len(packed) == 4 else AF_INET6, packed)


def decode(data: bytes) -> Forward:
    if len(data) < FIXED_HEADER:
        raise RelayProtocolError(f"relay datagram of {len(data)} bytes is shorter than the "
                                 f"{FIXED_HEADER}-byte fixed header")
    end = FIXED_HEADER + (16 if data[5] == 6 else 4)
    kind, client, bind = _parse_header(data[:end])
    if len(data) == end:
        raise RelayProtocolError("relay datagram carries no client datagram after its header")
    return Forward(kind, client, data[end:], bind)


@lru_cache(maxsize=4096)
def _parse_header(head: bytes) -> tuple[Kind, tuple[str, int], bool]:
    """One header, whole or cut short by the datagram's end; cached, since a flow repeats it."""
    if head[:2] != MAGIC:
        raise RelayProtocolError(f"relay datagram starts with 0x{head[:2].hex()}, not the magic 0x5247 ('RG')")
    if head[2] != VERSION:
        raise RelayProtocolError(f"relay protocol version {head[2]} is not the supported version {VERSION}")
    try:
        kind = Kind(head[3])
    except ValueError:
        raise RelayProtocolError(f"relay message kind {head[3]} is neither 1 (TO_WORKER) nor 2 (TO_CLIENT)") from None
    flags = head[4]
    allowed = BIND if kind is Kind.TO_CLIENT else 0
    if flags & ~allowed:
        raise RelayProtocolError(f"flags 0x{flags:02x} are not valid on a {kind.name} message")
    family = head[5]
    if family not in (4, 6):
        raise RelayProtocolError(f"address family {family} is neither 4 nor 6")
    end = FIXED_HEADER + (4 if family == 4 else 16)
    if len(head) < end:  # only when the datagram itself ends there
        raise RelayProtocolError(f"IPv{family} client address runs past the end of the {len(head)}-byte datagram")
    port = int.from_bytes(head[6:8], "big")
    if port == 0:
        raise RelayProtocolError("client port 0 is not a valid source port")
    return kind, (_host(head[FIXED_HEADER:end]), port), bool(flags & BIND)
