"""SCTP over DTLS (RFC 8261) and DCEP (RFC 8832) for data channels: scapy's SCTP, extended.

The SCTP common header and chunks are scapy's own (`scapy.layers.sctp`: `SCTP`, `SCTPChunkInit`,
`SCTPChunkInitAck`, `SCTPChunkCookieEcho`, `SCTPChunkCookieAck`, `SCTPChunkData`,
`SCTPChunkSACK`, `SCTPChunkAbort`, `SCTPChunkHeartbeatReq`, ...), re-exported here. Their rule is
this package's rule: `SCTP(chksum=None)` computes the CRC32c at build, a value is written as
given; chunk lengths likewise. In WebRTC the SCTP packet is the DTLS application data — no IP
header — so `bytes(sctp_packet(...))` is what goes into the DTLS connection.

This module adds the DCEP messages as layers, bound to DATA chunks with PPID 50 so they
dissect in place, the WebRTC PPIDs, and builders:

    packet = sctp_packet(
        data_chunk(DataChannelOpen(label=b"oai-events"), ppid=PPID_DCEP, tsn=1, stream_id=1),
        verification_tag=peer_tag)
    bytes(packet)                                   # CRC32c filled in
    bytes(sctp_packet(..., checksum=0xDEADBEEF))    # a wrong one

`DataChannelOpen` label/protocol lengths are None = computed, or written as given.
"""

from __future__ import annotations

import struct
from typing import Any, cast

from scapy.fields import (
    ByteEnumField,
    FieldLenField,
    IntField,
    ShortField,
    StrLenField,
)
from scapy.layers.sctp import (  # noqa: F401 — re-exported: scapy's SCTP layers are this module's
    SCTP,
    SCTPChunkAbort,
    SCTPChunkCookieAck,
    SCTPChunkCookieEcho,
    SCTPChunkData,
    SCTPChunkHeartbeatReq,
    SCTPChunkInit,
    SCTPChunkInitAck,
    SCTPChunkSACK,
)
from scapy.layers.sctp import (
    crc32c as _scapy_crc32c,
)
from scapy.packet import Packet, Raw, bind_layers

PPID_DCEP = 50
PPID_STRING = 51
PPID_BINARY_PARTIAL = 52
PPID_BINARY = 53
PPID_STRING_PARTIAL = 54
PPID_STRING_EMPTY = 56
PPID_BINARY_EMPTY = 57

DATA_CHANNEL_ACK = 0x02
DATA_CHANNEL_OPEN = 0x03
DCEP_MESSAGE_TYPES = {DATA_CHANNEL_ACK: "DATA_CHANNEL_ACK", DATA_CHANNEL_OPEN: "DATA_CHANNEL_OPEN"}

RELIABLE = 0x00
RELIABLE_UNORDERED = 0x80
PARTIAL_RELIABLE_REXMIT = 0x01
PARTIAL_RELIABLE_REXMIT_UNORDERED = 0x81
PARTIAL_RELIABLE_TIMED = 0x02
PARTIAL_RELIABLE_TIMED_UNORDERED = 0x82
CHANNEL_TYPES = {
    RELIABLE: "RELIABLE",
    RELIABLE_UNORDERED: "RELIABLE_UNORDERED",
    PARTIAL_RELIABLE_REXMIT: "PARTIAL_RELIABLE_REXMIT",
    PARTIAL_RELIABLE_REXMIT_UNORDERED: "PARTIAL_RELIABLE_REXMIT_UNORDERED",
    PARTIAL_RELIABLE_TIMED: "PARTIAL_RELIABLE_TIMED",
    PARTIAL_RELIABLE_TIMED_UNORDERED: "PARTIAL_RELIABLE_TIMED_UNORDERED",
}

WEBRTC_SCTP_PORT = 5000
"""The a=sctp-port browsers use (RFC 8841)."""


class Dcep(Packet):
    """Base of the DCEP messages: `Dcep(data)` dissects to DataChannelOpen/DataChannelAck by type."""

    name = "DCEP"
    fields_desc = [ByteEnumField("message_type", 0, DCEP_MESSAGE_TYPES)]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> type:
        if cls is Dcep and _pkt:
            return {DATA_CHANNEL_OPEN: DataChannelOpen, DATA_CHANNEL_ACK: DataChannelAck}.get(_pkt[0], cls)
        return cls


class DataChannelOpen(Dcep):
    """RFC 8832 §5.1: type, channel type, priority, reliability parameter, label and protocol."""

    name = "DCEP DATA_CHANNEL_OPEN"
    fields_desc = [
        ByteEnumField("message_type", DATA_CHANNEL_OPEN, DCEP_MESSAGE_TYPES),
        ByteEnumField("channel_type", RELIABLE, CHANNEL_TYPES),
        ShortField("priority", 0),
        IntField("reliability", 0),
        FieldLenField("label_length", None, length_of="label"),
        FieldLenField("protocol_length", None, length_of="protocol"),
        StrLenField("label", b"", length_from=lambda pkt: pkt.label_length),
        StrLenField("protocol", b"", length_from=lambda pkt: pkt.protocol_length),
    ]


class DataChannelAck(Dcep):
    name = "DCEP DATA_CHANNEL_ACK"
    fields_desc = [ByteEnumField("message_type", DATA_CHANNEL_ACK, DCEP_MESSAGE_TYPES)]


bind_layers(SCTPChunkData, Dcep, proto_id=PPID_DCEP)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, the standard value (b"123456789" -> 0xE3069283).

    SCTP writes it least significant byte first (RFC 9260 appendix A), which is why scapy's
    `chksum` field shows it byte-swapped.
    """
    value: int = _scapy_crc32c(data)  # type: ignore[no-untyped-call]  # scapy leaves it unannotated
    return int.from_bytes(value.to_bytes(4, "big"), "little")


def checksum_ok(packet: bytes) -> bool:
    """Whether an SCTP packet's CRC32c checksum is right."""
    return len(packet) >= 12 and packet[8:12] == struct.pack("<I", crc32c(packet[:8] + bytes(4) + packet[12:]))


def data_chunk(
    payload: bytes | Packet,
    *,
    ppid: int,
    tsn: int,
    stream_id: int = 0,
    stream_seq: int = 0,
    unordered: bool = False,
    beginning: bool = True,
    ending: bool = True,
) -> SCTPChunkData:
    """A DATA chunk (RFC 9260 §3.3.1); a whole message unless beginning/ending say otherwise."""
    data = payload if isinstance(payload, Packet) else Raw(bytes(payload))
    return SCTPChunkData(
        reserved=0,
        unordered=int(unordered),
        beginning=int(beginning),
        ending=int(ending),
        tsn=tsn,
        stream_id=stream_id,
        stream_seq=stream_seq,
        proto_id=ppid,
        data=data,
    )


def init_chunk(
    init_tag: int, *, a_rwnd: int = 131072, streams: int = 1024, init_tsn: int = 0, params: list[Packet] | None = None
) -> SCTPChunkInit:
    """An INIT chunk with `streams` outbound and inbound streams."""
    return SCTPChunkInit(
        flags=0, init_tag=init_tag, a_rwnd=a_rwnd, n_out_streams=streams, n_in_streams=streams,
        init_tsn=init_tsn, params=params or [],
    )


def sack_chunk(cumulative_tsn: int, *, a_rwnd: int = 131072) -> SCTPChunkSACK:
    """A SACK with no gap reports or duplicates."""
    return SCTPChunkSACK(flags=0, cumul_tsn_ack=cumulative_tsn, a_rwnd=a_rwnd)


def sctp_packet(
    *chunks: Packet,
    src_port: int = WEBRTC_SCTP_PORT,
    dst_port: int = WEBRTC_SCTP_PORT,
    verification_tag: int = 0,
    checksum: int | None = None,
) -> SCTP:
    """An SCTP packet of `chunks`, in order; `checksum=None` computes the CRC32c at build."""
    packet: Packet = SCTP(sport=src_port, dport=dst_port, tag=verification_tag, chksum=checksum)
    for chunk in chunks:
        packet = packet / chunk
    return cast(SCTP, packet)  # `/` returns (a copy of) its left side, the SCTP layer, with the chunk below it

