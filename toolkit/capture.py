"""Evidence files for a conversation: a pcap Wireshark opens, the DTLS key log, the SRTP keys.

A conversation is a list of `CaptureRecord(timestamp, src, dst, data)` — UDP payloads with the
(host, port) they went from and to; hosts are IPv4 or IPv6 literals, both ends the same family.
Tuples of the same four items are accepted wherever records are.

- `write_pcap(path, records, linktype=LINKTYPE_ETHERNET)` — classic libpcap (microsecond
  timestamps), each payload wrapped in synthetic Ethernet (or none, with LINKTYPE_RAW) + IPv4/IPv6
  + UDP headers with correct checksums. scapy builds the frames and its `PcapWriter` writes the
  file (about a millisecond per datagram: fine for a check's conversation, hundreds of them).
- `write_key_log(path, lines)` — SSLKEYLOGFILE (NSS key log) format; takes the lines pyOpenSSL's
  `set_keylog_callback` hands over, or ones made with `key_log_line(client_random, master_secret)`.
- `write_srtp_keys(path, directions)` — per direction: sender, receiver, profile, master key and
  salt in hex, plus the base64 key||salt that SDES-style tools take, and a note how to use them.
- `write_decrypted_pcap(path, records, directions)` — the same conversation with SRTP/SRTCP
  replaced by the plain RTP/RTCP, so media is readable without SRTP support in the viewer.

Reading the pcap in Wireshark or tshark: everything of a WebRTC single-port flow shares one
UDP port, so tell Wireshark what is on it. STUN and DTLS are found by Wireshark's heuristics on
any port; RTP/RTCP are not: enable the `rtp_udp` heuristic (Analyze ▸ Enabled Protocols, or
`tshark --enable-heuristic rtp_udp`). "Decode As" works too: `tshark -r conv.pcap -d
udp.port==PORT,stun` (Wireshark: Analyze ▸ Decode As… ▸ UDP port PORT ▸ STUN). To decrypt
DTLS, point Edit ▸ Preferences ▸ Protocols ▸ TLS ▸ (Pre)-Master-Secret log filename at the key
log, or `tshark -o tls.keylog_file:keys.log`. See `decode_hint(port)` for the exact command line.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from toolkit.crafters.srtp import SrtpContext, SrtpCraftError, srtp_profile

Address = tuple[str, int]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
"""Raw IP: each frame starts with the IPv4 or IPv6 header."""

_MAX_UDP_PAYLOAD = 65535 - 8 - 40


class CaptureError(ValueError):
    """A record cannot be written: an address that is not an IP literal, mixed families, too big."""


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One UDP datagram of a conversation, `timestamp` in seconds (any clock: fake clocks are fine)."""

    timestamp: float
    src: Address
    dst: Address
    data: bytes


@dataclass(frozen=True, slots=True)
class SrtpDirection:
    """The SRTP keys one sender protects its media with, toward one receiver."""

    sender: Address
    receiver: Address
    profile: str
    master_key: bytes
    master_salt: bytes

    @classmethod
    def from_key_and_salt(cls, sender: Address, receiver: Address, profile: str, key_and_salt: bytes) -> SrtpDirection:
        """From master key || salt in one string, as the probe peer's `SrtpKeys.local/.remote` hold them."""
        p = srtp_profile(profile)
        return cls(sender, receiver, p.name, key_and_salt[: p.key_length], key_and_salt[p.key_length :])


def _record(item: CaptureRecord | Sequence) -> CaptureRecord:
    if isinstance(item, CaptureRecord):
        return item
    timestamp, src, dst, data = item
    return CaptureRecord(timestamp, tuple(src), tuple(dst), bytes(data))


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        raise CaptureError(f"capture address {host!r} is not an IPv4 or IPv6 literal") from None


def udp_frame(record: CaptureRecord, *, ip_id: int = 0, linktype: int = LINKTYPE_ETHERNET) -> Packet:
    """The record as a scapy packet: [Ethernet +] IPv4/IPv6 + UDP, checksums filled in when built."""
    src_ip, dst_ip = _ip(record.src[0]), _ip(record.dst[0])
    if src_ip.version != dst_ip.version:
        raise CaptureError(f"capture record goes from IPv{src_ip.version} {record.src[0]} "
                           f"to IPv{dst_ip.version} {record.dst[0]}")
    if len(record.data) > _MAX_UDP_PAYLOAD:
        raise CaptureError(f"a {len(record.data)}-byte datagram does not fit in one UDP packet")
    if src_ip.version == 4:
        ip = IP(src=str(src_ip), dst=str(dst_ip), id=ip_id & 0xFFFF, flags="DF", ttl=64)
    else:
        ip = IPv6(src=str(src_ip), dst=str(dst_ip), hlim=64)
    frame = ip / UDP(sport=record.src[1], dport=record.dst[1]) / Raw(record.data)
    if linktype == LINKTYPE_ETHERNET:
        frame = Ether(src=_mac(record.src[0]), dst=_mac(record.dst[0])) / frame
    frame.time = max(record.timestamp, 0.0)  # pcap has no time before 1970
    return frame


def _mac(host: str) -> str:
    """A stable, locally administered MAC per host, so each end keeps one."""
    return ":".join(f"{octet:02x}" for octet in b"\x02\x00" + hashlib.sha1(host.encode()).digest()[:4])


def write_pcap(
    path: str | Path, records: Iterable[CaptureRecord | Sequence], *, linktype: int = LINKTYPE_ETHERNET
) -> Path:
    """The pcap file for `records`, in their order; nothing is left behind when a record is refused."""
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        raise CaptureError(f"linktype {linktype} is neither LINKTYPE_ETHERNET (1) nor LINKTYPE_RAW (101)")
    frames = [udp_frame(_record(item), ip_id=number, linktype=linktype) for number, item in enumerate(records)]
    path = Path(path)
    with PcapWriter(str(path), linktype=linktype, endianness="<") as writer:
        writer.write_header(None)
        for frame in frames:
            writer.write_packet(frame)  # not write(): it warns when scapy's own link type for IP differs
    return path


def decode_hint(port: int, *, key_log: str | None = None) -> str:
    """A tshark command line that shows STUN, DTLS and RTP of a capture whose server uses `port`."""
    parts = ["tshark -r CAPTURE.pcap", f"-d udp.port=={port},stun", "--enable-heuristic rtp_udp"]
    if key_log:
        parts.append(f"-o tls.keylog_file:{key_log}")
    return " ".join(parts)


def key_log_line(client_random: bytes, master_secret: bytes) -> str:
    """One SSLKEYLOGFILE line for a (D)TLS 1.2 session."""
    if len(client_random) != 32 or len(master_secret) != 48:
        raise CaptureError(
            f"a key log line needs a 32-byte client random and a 48-byte master secret, "
            f"got {len(client_random)} and {len(master_secret)}"
        )
    return f"CLIENT_RANDOM {client_random.hex()} {master_secret.hex()}"


def write_key_log(path: str | Path, lines: Iterable[bytes | str]) -> Path:
    """Write SSLKEYLOGFILE lines (bytes as pyOpenSSL's keylog callback gives them, or str)."""
    path = Path(path)
    text = [line.decode() if isinstance(line, bytes) else line for line in lines]
    path.write_text("".join(line.rstrip("\n") + "\n" for line in text))
    return path


def write_srtp_keys(path: str | Path, directions: Iterable[SrtpDirection]) -> Path:
    """A plain-text SRTP keys file: one block per direction, and how to use it."""
    blocks = [
        "# SRTP master keys of this conversation, one block per direction\n"
        "# (hex; master key and salt as RFC 5764 §4.2 exports them).\n"
        "# The *_decrypted.pcap next to the capture already holds the media as plain RTP/RTCP.\n"
        "# To decrypt the SRTP yourself, give a tool the profile and the key||salt of the sender, e.g. libsrtp's\n"
        "# rtp_decoder, or the base64 form where a tool takes SDES 'inline:' keys.\n"
    ]
    for direction in directions:
        key_and_salt = direction.master_key + direction.master_salt
        blocks.append(
            f"\n[{direction.sender[0]}:{direction.sender[1]} -> {direction.receiver[0]}:{direction.receiver[1]}]\n"
            f"profile = {direction.profile}\n"
            f"master_key = {direction.master_key.hex()}\n"
            f"master_salt = {direction.master_salt.hex()}\n"
            f"key_and_salt_hex = {key_and_salt.hex()}\n"
            f"key_and_salt_base64 = {base64.b64encode(key_and_salt).decode()}\n"
        )
    path = Path(path)
    path.write_text("".join(blocks))
    return path


def _is_rtp_or_rtcp(data: bytes) -> bool:
    """RFC 7983: first byte 128–191 is RTP/RTCP."""
    return len(data) >= 12 and 128 <= data[0] <= 191


def _is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: payload types 192–223 (RTCP packet types 200–204 among them) are RTCP."""
    return 192 <= data[1] <= 223


def decrypt_records(
    records: Iterable[CaptureRecord | Sequence], directions: Iterable[SrtpDirection]
) -> tuple[list[CaptureRecord], int]:
    """The records with each SRTP/SRTCP datagram of a keyed direction replaced by its plaintext.

    Returns (records, how many were decrypted). Datagrams that are not media, that go in a
    direction without keys, or that fail to unprotect (replays, tampered ones) stay as they were.
    Fresh libsrtp contexts are used, so this can run on any capture, any number of times.
    """
    contexts = {
        (d.sender, d.receiver): SrtpContext.from_keys(d.profile, d.master_key, d.master_salt) for d in directions
    }
    out: list[CaptureRecord] = []
    decrypted = 0
    for item in records:
        record = _record(item)
        context = contexts.get((record.src, record.dst))
        if context is not None and _is_rtp_or_rtcp(record.data):
            unprotect = context.unprotect_rtcp if _is_rtcp(record.data) else context.unprotect_rtp
            try:
                record = CaptureRecord(record.timestamp, record.src, record.dst, unprotect(record.data))
                decrypted += 1
            except SrtpCraftError:
                pass
        out.append(record)
    return out, decrypted


def write_decrypted_pcap(
    path: str | Path,
    records: Iterable[CaptureRecord | Sequence],
    directions: Iterable[SrtpDirection],
    *,
    linktype: int = LINKTYPE_ETHERNET,
) -> int:
    """Write the conversation with media in the clear; returns how many datagrams were decrypted."""
    plain, decrypted = decrypt_records(records, directions)
    write_pcap(path, plain, linktype=linktype)
    return decrypted
