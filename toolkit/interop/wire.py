"""What the wire says about each client's sessions: a loopback capture, read back here.

Clients tell their own story through their APIs, and some tell little (Firefox has no transport
stats, GStreamer no cipher). The capture tells the same story for all of them: which checks the
server answered and with which credentials (so an ICE restart is proven by a success response to
the new username, not by a state that never changed), the DTLS version, cipher suite and SRTP
profile from the ServerHello, and when each step happened on the wire.

`Capture` runs `dumpcap` on the loopback interface (everything here stays on the machine: the
machine's own non-loopback address is routed over `lo` too) and is stopped by its own process
group. `read_pcap` reads classic pcap (through scapy's reader); `session_evidence` picks one session's datagrams out by
the ICE usernames of its offer and answer.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

from scapy.error import Scapy_Exception
from scapy.utils import RawPcapNgReader, RawPcapReader

from toolkit.crafters.dtls import SRTP_PROTECTION_PROFILES

CAPTURE_START_TIMEOUT = 10.0
STUN_COOKIE = 0x2112A442
BINDING_REQUEST, BINDING_SUCCESS, BINDING_ERROR = 0x0001, 0x0101, 0x0111
USERNAME = 0x0006

CIPHER_SUITES = {
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
}
DTLS_VERSIONS = {0xFEFF: "DTLS 1.0", 0xFEFD: "DTLS 1.2", 0xFEFC: "DTLS 1.3"}


class CaptureError(RuntimeError):
    """dumpcap is missing, cannot capture here (not root), or wrote no readable file."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram seen on the wire; `t` in epoch seconds."""

    t: float
    src: tuple[str, int]
    dst: tuple[str, int]
    data: bytes


class Capture:
    """`dumpcap -i lo` into `path`, filtered to UDP (to the given ports when known)."""

    def __init__(self, path: Path, ports: list[int] | None = None, interface: str = "lo") -> None:
        self.path = path
        self.ports = ports
        self.interface = interface
        self.process: asyncio.subprocess.Process | None = None
        self.log = path.with_suffix(".dumpcap.log")

    @staticmethod
    def available() -> str | None:
        """None when a capture can run; otherwise why not."""
        if shutil.which("dumpcap") is None:
            return "dumpcap is not installed (scripts/install-clients.sh installs tshark)"
        if os.geteuid() != 0:
            return "capturing on lo needs root"
        return None

    async def start(self) -> None:
        reason = self.available()
        if reason:
            raise CaptureError(reason)
        bpf = " or ".join(f"udp port {port}" for port in self.ports) if self.ports else "udp"
        log = self.log.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            "dumpcap", "-q", "-P", "-i", self.interface, "-f", bpf, "-w", str(self.path),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = asyncio.get_running_loop().time() + CAPTURE_START_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            if self.process.returncode is not None:
                raise CaptureError(f"dumpcap exited with {self.process.returncode}: {self._log_tail()}")
            if self.path.exists() and self.path.stat().st_size >= 24:
                return  # the pcap header is written once the interface is open
            await asyncio.sleep(0.05)
        await self.stop()
        raise CaptureError(f"dumpcap did not start capturing within {CAPTURE_START_TIMEOUT:g} s: {self._log_tail()}")

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        await asyncio.sleep(0.3)  # the last datagrams reach the file
        os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5.0)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace").strip()[-400:]
        except OSError:
            return "(no log)"


def _ip(family: int, packed: bytes) -> str:
    return socket.inet_ntop(family, packed)


def _udp_of_ip(frame: bytes) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
    if not frame:
        return None
    version = frame[0] >> 4
    if version == 4:
        header = (frame[0] & 0x0F) * 4
        if len(frame) < header + 8 or frame[9] != 17:
            return None
        src, dst = _ip(socket.AF_INET, frame[12:16]), _ip(socket.AF_INET, frame[16:20])
        udp = frame[header:]
    elif version == 6:
        if len(frame) < 48 or frame[6] != 17:
            return None
        src, dst = _ip(socket.AF_INET6, frame[8:24]), _ip(socket.AF_INET6, frame[24:40])
        udp = frame[40:]
    else:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    return (src, sport), (dst, dport), udp[8:length]


LINK_HEADER_BYTES = {1: 14, 113: 16, 276: 20, 101: 0, 228: 0, 229: 0}
"""Bytes before the IP header, by link type: Ethernet, Linux cooked v1/v2, raw IP (v4, v6)."""


def read_pcap(path: Path) -> list[Datagram]:
    """The UDP datagrams of a classic pcap file (Ethernet, Linux cooked v1/v2 or raw IP).

    scapy's RawPcapReader reads the file (byte order, micro- or nanosecond stamps); the frames
    are sliced here rather than dissected, which is what keeps a long capture quick to read."""
    try:
        reader = RawPcapReader(str(path))
    except (OSError, Scapy_Exception) as exc:
        raise CaptureError(f"{path.name} is not a pcap file: {exc}") from None
    with reader:
        if isinstance(reader, RawPcapNgReader):
            raise CaptureError(f"{path.name} is pcapng; dumpcap -P writes classic pcap")
        skip = LINK_HEADER_BYTES.get(reader.linktype)
        if skip is None:
            raise CaptureError(f"{path.name} has link type {reader.linktype}; "
                               f"expected Ethernet, Linux cooked or raw IP")
        scale = 1e9 if reader.nano else 1e6
        out: list[Datagram] = []
        for frame, meta in reader:
            if reader.linktype == 1 and frame[12:14] == b"\x81\x00":
                frame = frame[4:]  # an 802.1Q tag
            udp = _udp_of_ip(frame[skip:])
            if udp is not None:
                out.append(Datagram(meta.sec + meta.usec / scale, udp[0], udp[1], udp[2]))
    return out


def stun_message(data: bytes) -> tuple[int, bytes, str | None] | None:
    """(type, transaction id, USERNAME) of a STUN message, or None."""
    if len(data) < 20 or data[0] > 3:
        return None
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != STUN_COOKIE or 20 + length > len(data):
        return None
    username = None
    position = 20
    while position + 4 <= 20 + length:
        attribute, size = struct.unpack("!HH", data[position:position + 4])
        if attribute == USERNAME:
            username = data[position + 4:position + 4 + size].decode("utf-8", "replace")
        position += 4 + (size + 3) // 4 * 4
    return kind, data[8:20], username


@dataclass(slots=True)
class ServerHello:
    version: str
    cipher: str
    srtp_profile: str | None


def dtls_records(data: bytes) -> list[tuple[int, int, bytes]]:
    """(content type, epoch, fragment) of each DTLS record in a datagram."""
    records = []
    position = 0
    while position + 13 <= len(data):
        content_type = data[position]
        if not 20 <= content_type <= 63:
            break
        epoch = struct.unpack("!H", data[position + 3:position + 5])[0]
        length = struct.unpack("!H", data[position + 11:position + 13])[0]
        records.append((content_type, epoch, data[position + 13:position + 13 + length]))
        position += 13 + length
    return records


def server_hello(fragment: bytes) -> ServerHello | None:
    """The ServerHello in a plaintext handshake record, when it is there whole."""
    position = 0
    while position + 12 <= len(fragment):
        msg_type = fragment[position]
        length = int.from_bytes(fragment[position + 1:position + 4], "big")
        offset = int.from_bytes(fragment[position + 6:position + 9], "big")
        frag_length = int.from_bytes(fragment[position + 9:position + 12], "big")
        body = fragment[position + 12:position + 12 + frag_length]
        position += 12 + frag_length
        if msg_type != 2 or offset != 0 or frag_length != length:
            continue
        version = struct.unpack("!H", body[:2])[0]
        cursor = 34
        cursor += 1 + body[cursor]
        cipher = struct.unpack("!H", body[cursor:cursor + 2])[0]
        cursor += 3
        profile = None
        if cursor + 2 <= len(body):
            end = cursor + 2 + struct.unpack("!H", body[cursor:cursor + 2])[0]
            cursor += 2
            while cursor + 4 <= end:
                ext_type, ext_length = struct.unpack("!HH", body[cursor:cursor + 4])
                ext = body[cursor + 4:cursor + 4 + ext_length]
                if ext_type == 14 and len(ext) >= 4:  # use_srtp
                    value = struct.unpack("!H", ext[2:4])[0]
                    profile = SRTP_PROTECTION_PROFILES.get(value, f"0x{value:04x}")
                elif ext_type == 43 and len(ext) == 2:  # supported_versions: DTLS 1.3 says so here
                    version = struct.unpack("!H", ext)[0]
                cursor += 4 + ext_length
        return ServerHello(DTLS_VERSIONS.get(version, f"0x{version:04x}"),
                           CIPHER_SUITES.get(cipher, f"0x{cipher:04x}"), profile)
    return None


def _ms(t: float | None) -> float | None:
    return None if t is None else round(t * 1000, 1)


@dataclass
class SessionWire:
    """One session's datagrams and what they show; times in epoch ms."""

    tuples: list[str] = field(default_factory=list)
    checks: int = 0
    successes: int = 0
    errors: int = 0
    first_check: float | None = None
    first_success: float | None = None
    client_hello: float | None = None
    server_hello: ServerHello | None = None
    handshake_done: float | None = None
    rtp_to_server: int = 0
    rtp_from_server: int = 0
    first_rtp_to_server: float | None = None
    first_rtp_from_server: float | None = None
    sctp_to_server: int = 0
    sctp_from_server: int = 0
    restart_checks: int = 0
    restart_successes: int = 0
    first_restart_success: float | None = None
    restart_tuples: list[str] = field(default_factory=list)

    def tally(self, count: str, first: str, t: float) -> None:
        """One more datagram of a kind: its counter field `count` goes up, and the time field
        `first` keeps the first one's `t`."""
        setattr(self, count, getattr(self, count) + 1)
        setattr(self, first, getattr(self, first) or t)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "server_hello"}
        for key in ("first_check", "first_success", "client_hello", "handshake_done", "first_rtp_to_server",
                    "first_rtp_from_server", "first_restart_success"):
            out[key] = _ms(out[key])
        out["server_hello"] = dataclasses.asdict(self.server_hello) if self.server_hello else None
        return out


def _tuple_name(client: tuple[str, int], server: tuple[str, int]) -> str:
    return f"{client[0]}:{client[1]} -> {server[0]}:{server[1]}"


def session_evidence(datagrams: list[Datagram], username: str, restart_username: str | None = None) -> SessionWire:
    """The session whose checks carry `username` ("serverUfrag:clientUfrag"), and its restart's.

    A 5-tuple belongs to the session once a check with its username (or the restart's) went over
    it; every datagram on such a tuple from then on is counted."""
    wire = SessionWire()
    owned: dict[tuple, tuple[str, int]] = {}  # (client, server) -> client
    pending: dict[bytes, bool] = {}  # transaction id -> is a restart check
    change_cipher: dict[str, float] = {}
    for datagram in datagrams:
        stun = stun_message(datagram.data)
        if stun is not None:
            kind, transaction, name = stun
            if kind == BINDING_REQUEST and name in (username, restart_username):
                restart = name == restart_username and restart_username is not None
                key = (datagram.src, datagram.dst)
                if key not in owned:
                    owned[key] = datagram.src
                    (wire.restart_tuples if restart else wire.tuples).append(_tuple_name(datagram.src, datagram.dst))
                pending[transaction] = restart
                if restart:
                    wire.restart_checks += 1
                else:
                    wire.tally("checks", "first_check", datagram.t)
            elif kind in (BINDING_SUCCESS, BINDING_ERROR) and transaction in pending:
                restart = pending.pop(transaction)
                if kind == BINDING_ERROR:
                    wire.errors += 1
                elif restart:
                    wire.tally("restart_successes", "first_restart_success", datagram.t)
                else:
                    wire.tally("successes", "first_success", datagram.t)
            continue
        to_server = (datagram.src, datagram.dst) in owned
        from_server = (datagram.dst, datagram.src) in owned
        if not (to_server or from_server) or not datagram.data:
            continue
        first = datagram.data[0]
        if 20 <= first <= 63:
            for content_type, epoch, fragment in dtls_records(datagram.data):
                side = "client" if to_server else "server"
                if content_type == 22 and epoch == 0:
                    if to_server and fragment[:1] == b"\x01" and wire.client_hello is None:
                        wire.client_hello = datagram.t
                    hello = server_hello(fragment) if from_server else None
                    if hello is not None and wire.server_hello is None:
                        wire.server_hello = hello
                elif content_type == 20:
                    change_cipher.setdefault(side, datagram.t)
                    if len(change_cipher) == 2 and wire.handshake_done is None:
                        wire.handshake_done = max(change_cipher.values())
                elif content_type == 23:
                    if to_server:
                        wire.sctp_to_server += 1
                    else:
                        wire.sctp_from_server += 1
        elif 128 <= first <= 191 and len(datagram.data) > 1 and not 192 <= datagram.data[1] <= 223:
            if to_server:
                wire.tally("rtp_to_server", "first_rtp_to_server", datagram.t)
            else:
                wire.tally("rtp_from_server", "first_rtp_from_server", datagram.t)
    return wire
