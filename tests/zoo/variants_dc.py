"""Data-channel variants: SCTP packets lost on their way to the association, and a DCEP parser that dies.

Each filters the SCTP packets the core hands to the shell's association (`DataChannelBytes`
events): a dropped packet is lost as if on the wire, so the client's SCTP retransmits it and it is
dropped again, and the message never arrives.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from reference_server.core import ServerCore
from reference_server.events import DataChannelBytes
from tests.zoo import variant
from tests.zoo.seams import per_instance
from toolkit.crafters.sctp import crc32c

DATA = 0
UNORDERED, BEGINNING = 0x04, 0x02
PPID_DCEP = 50
PPID_AS_IF_NOT_EMPTY = {56: 51, 57: 53}
"""WebRTC String/Binary Empty -> WebRTC String/Binary: the padding byte taken for content."""
DATA_CHANNEL_OPEN = 3
MAX_MESSAGE = 65536


class DataChunk(NamedTuple):
    flags: int
    stream: int
    ppid: int
    data: bytes
    position: int
    """Where the chunk starts in its packet."""


def data_chunks(packet: bytes) -> Iterator[DataChunk]:
    """Each DATA chunk in an SCTP packet."""
    position = 12
    while position + 16 <= len(packet):
        kind, flags = packet[position], packet[position + 1]
        length = int.from_bytes(packet[position + 2:position + 4], "big")
        if length < 4:
            return
        if kind == DATA and length >= 16:
            stream = int.from_bytes(packet[position + 8:position + 10], "big")
            ppid = int.from_bytes(packet[position + 12:position + 16], "big")
            yield DataChunk(flags, stream, ppid, packet[position + 16:position + length], position)
        position += (length + 3) & ~3


def dcep_opens(packet: bytes) -> Iterator[bytes]:
    """The DATA_CHANNEL_OPEN messages (RFC 8832 §5.1) in an SCTP packet, whole header or more."""
    for chunk in data_chunks(packet):
        if chunk.ppid == PPID_DCEP and len(chunk.data) >= 12 and chunk.data[0] == DATA_CHANNEL_OPEN:
            yield chunk.data


class SctpFilterCore(ServerCore):
    """Drops the SCTP packets `drop(session_id, packet)` says to, before the association sees them."""

    def next_event(self):
        while (event := super().next_event()) is not None:
            if isinstance(event, DataChannelBytes) and self.drop(event.session_id, event.data):
                continue
            return event
        return None

    def drop(self, session_id: str, packet: bytes) -> bool:
        raise NotImplementedError


@variant("dc-drops-unordered", checks=("DC-05",),
         why="loses every message sent on an unordered data channel (DATA chunks with the U bit)")
class DropsUnordered(SctpFilterCore):
    def drop(self, session_id: str, packet: bytes) -> bool:
        return any(chunk.flags & UNORDERED and chunk.ppid != PPID_DCEP for chunk in data_chunks(packet))


@variant("dc-empty-message-as-padding-byte", checks=("DC-01",),
         why="reads an empty message (PPID 56/57) as an ordinary one, so its one padding byte is delivered as a "
             "1-byte message instead of an empty one (RFC 8831 §6.6)")
class EmptyMessageAsPaddingByte(ServerCore):
    def next_event(self):
        event = super().next_event()
        if isinstance(event, DataChannelBytes):
            return DataChannelBytes(event.session_id, without_empty_ppids(event.data))
        return event


def without_empty_ppids(packet: bytes) -> bytes:
    """The SCTP packet with each DATA chunk's empty-message PPID replaced by its non-empty twin."""
    rewritten = bytearray(packet)
    for chunk in data_chunks(packet):
        if chunk.ppid in PPID_AS_IF_NOT_EMPTY:
            rewritten[chunk.position + 12:chunk.position + 16] = PPID_AS_IF_NOT_EMPTY[chunk.ppid].to_bytes(4, "big")
    if rewritten == packet:
        return packet
    rewritten[8:12] = bytes(4)
    rewritten[8:12] = struct.pack("<I", crc32c(bytes(rewritten)))
    return bytes(rewritten)


@variant("dc-refuses-unusual-labels", checks=("DC-02",),
         why="its DCEP parser takes only non-empty ASCII labels: a DATA_CHANNEL_OPEN with an empty or UTF-8 "
             "label is lost, never acknowledged")
class RefusesUnusualLabels(SctpFilterCore):
    def drop(self, session_id: str, packet: bytes) -> bool:
        labels = (message[12:12 + int.from_bytes(message[8:10], "big")] for message in dcep_opens(packet))
        return any(not label or not label.isascii() for label in labels)


@variant("dc-dies-on-bad-dcep", checks=("DC-03",),
         why="a DATA_CHANNEL_OPEN whose label length runs past the payload ends the whole session "
             "(an unhandled parse error tears it down)")
class DiesOnBadDcep(SctpFilterCore):
    def receive_datagram(self, data: bytes, address, now: float) -> None:
        self._now = now
        super().receive_datagram(data, address, now)

    def drop(self, session_id: str, packet: bytes) -> bool:
        for message in dcep_opens(packet):
            if 12 + int.from_bytes(message[8:10], "big") + int.from_bytes(message[10:12], "big") > len(message):
                self.close_session(session_id, self._now)  # label and protocol lengths run past the payload
                return True
        return False


@variant("dc-drops-past-64k", checks=("DC-04",),
         why="loses the fragments of a data-channel message past its first 64 KiB, so messages over 64 KiB "
             "never arrive")
class DropsPast64k(SctpFilterCore):
    _received: dict[tuple[str, int], int] = per_instance(dict)  # (session, stream) -> bytes of the message so far

    def drop(self, session_id: str, packet: bytes) -> bool:
        for flags, stream, _, data, _ in data_chunks(packet):
            key = (session_id, stream)
            so_far = len(data) if flags & BEGINNING else self._received.get(key, 0) + len(data)
            self._received[key] = so_far
            if so_far > MAX_MESSAGE:
                return True
        return False
