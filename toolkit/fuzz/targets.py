"""The reference server's fuzz targets: every parser on the public port, and the core itself.

Each is a function of bytes whose contract is that only its layer's declared error escapes.
Where a parser has a serializer, the target also checks the round trip, and an
AssertionError (undeclared) marks a broken one. Import this module inside
atheris.instrument_imports so the reference server's code gets coverage.
"""
from __future__ import annotations

import re
import struct

import pylibsrtp
from OpenSSL import SSL

from reference_server import stun
from reference_server.certificate import Certificate
from reference_server.demux import DemuxError, Kind, classify
from reference_server.dtls import (
    ApplicationData,
    Closed,
    DtlsContext,
    DtlsEndpoint,
    HandshakeCompleted,
    HandshakeFailed,
)
from reference_server.rtp import (
    RtcpError,
    RtpError,
    parse_extension_elements,
    parse_rtcp,
    parse_rtp,
    rewrite_rtp,
    serialize_extension_elements,
    serialize_rtcp,
    serialize_rtp,
)
from reference_server.sdp import AnswerParams, SdpError, build_answer, parse_ice_sdpfrag, parse_offer
from toolkit.peer.offer import PeerError

from . import stunkit
from .framing import Steps
from .registry import BUILTIN_INSTRUMENT, as_text, fuzz_target, instrumentation
from .sctp import SctpWorld
from .world import World, home

NAMES = (
    "demux",
    "stun_parse",
    "ice_request",
    "dtls_records",
    "rtp_parse",
    "rtcp_parse",
    "sdp_offer",
    "sctp_dcep",
    "server_receive",
)

_ANSWER_FINGERPRINT = "sha-256 " + ":".join(["AB"] * 32)
_ANSWER_LINE = re.compile(r"[a-z]=[^\r\n\0]*")


def _broken(what: str, error: Exception) -> AssertionError:
    return AssertionError(f"{what} raised {type(error).__name__}: {error}")


# --- pure parsers ---------------------------------------------------------------------------------


@fuzz_target(expect=DemuxError, instrument=BUILTIN_INSTRUMENT)
def fuzz_demux(data: bytes) -> None:
    """demux.classify: a kind that agrees with RFC 7983's first-byte ranges, or DemuxError."""
    kind = classify(data)
    first = data[0]
    if kind is Kind.STUN:
        assert first < 4 and len(data) == 20 + int.from_bytes(data[2:4], "big"), "STUN framing not checked"
        assert data[4:8] == b"\x21\x12\xa4\x42", "STUN without the magic cookie"
    elif kind is Kind.DTLS:
        assert 20 <= first <= 63 and len(data) >= 13, "DTLS outside 20-63 or shorter than a record header"
    elif kind is Kind.RTCP:
        assert 128 <= first <= 191 and 192 <= data[1] <= 223 and len(data) >= 8, "RTCP misclassified"
    else:
        assert 128 <= first <= 191 and not 192 <= data[1] <= 223 and len(data) >= 12, "RTP misclassified"


@fuzz_target(expect=stun.StunError, instrument=BUILTIN_INSTRUMENT)
def fuzz_stun_parse(data: bytes) -> None:
    """stun.parse, the helpers that run on what it accepts, and parse → build → parse."""
    message = stun.parse(data)
    stun.fingerprint_ok(data, message)
    stun.integrity_ok(data, message, b"fuzz-password-0123456789")
    message.get(stun.USERNAME)
    message.unknown_comprehension_required()
    mapped = message.get(stun.XOR_MAPPED_ADDRESS)
    if mapped is not None:
        try:
            ip, port = stun.parse_xor_address(mapped, message.transaction_id)
        except stun.StunError:
            pass
        else:
            again = stun.xor_address(ip, port, message.transaction_id)
            assert again[1:] == mapped[1:], f"XOR address {mapped.hex()} -> {ip}:{port} -> {again.hex()}"
    try:
        rebuilt = stun.build(message.method, message.msg_class, message.transaction_id, message.attributes,
                             fingerprint=False)
        reparsed = stun.parse(rebuilt)
    except stun.StunError as exc:
        raise _broken("re-encoding a parsed message", exc) from exc
    assert rebuilt[:2] == data[:2], f"message type 0x{data[:2].hex()} re-encoded as 0x{rebuilt[:2].hex()}"
    assert reparsed == message, "parse(build(parse(data))) differs from parse(data)"


_REWRITTEN_FIELDS = struct.pack("!HII", 7, 9, 0x01020304)


@fuzz_target(expect=RtpError, instrument=BUILTIN_INSTRUMENT)
def fuzz_rtp_parse(data: bytes) -> None:
    """rtp.parse_rtp with serialize/rewrite round trips and RFC 8285 extension elements."""
    packet = parse_rtp(data)
    try:
        serialized = serialize_rtp(packet)
        rewritten = rewrite_rtp(data, ssrc=0x01020304, sequence_number=7, timestamp=9)
    except RtpError as exc:
        raise _broken("re-encoding a parsed RTP packet", exc) from exc
    if not packet.padding:
        assert serialized == data, "serialize_rtp(parse_rtp(data)) != data"
    assert parse_rtp(serialized) == packet, "parse_rtp(serialize_rtp(packet)) != packet"
    assert rewritten == data[:2] + _REWRITTEN_FIELDS + data[12:], "rewrite_rtp changed more than SSRC, sequence and timestamp"
    if packet.extension_profile is not None:
        try:
            elements = parse_extension_elements(packet.extension_profile, packet.extension)
        except RtpError:
            return
        try:
            profile, encoded = serialize_extension_elements(elements)
        except RtpError as exc:
            raise _broken("re-encoding parsed extension elements", exc) from exc
        assert parse_extension_elements(profile, encoded) == elements, "extension elements do not round-trip"


@fuzz_target(expect=RtcpError, instrument=BUILTIN_INSTRUMENT)
def fuzz_rtcp_parse(data: bytes) -> None:
    """rtp.parse_rtcp (compound packets) and parse → serialize → parse."""
    packets = parse_rtcp(data)
    try:
        again = parse_rtcp(serialize_rtcp(packets))
    except RtpError as exc:
        raise _broken("re-encoding a parsed RTCP compound packet", exc) from exc
    assert again == packets, "parse_rtcp(serialize_rtcp(packets)) != packets"


@fuzz_target(expect=SdpError, instrument=BUILTIN_INSTRUMENT)
def fuzz_sdp_offer(data: bytes) -> None:
    """sdp.parse_offer and parse_ice_sdpfrag; build_answer must answer every offer that parses,
    with well-formed lines only (nothing from the offer may inject a line)."""
    text = as_text(data)
    try:
        parse_ice_sdpfrag(text)
    except SdpError:
        pass
    offer = parse_offer(text)
    odd = len(data) & 1  # one answer per input: IPv6 with the data channel, or IPv4 without
    params = AnswerParams(ice_ufrag="fuzzU", ice_pwd="fuzzpassword0123456789ab", fingerprint=_ANSWER_FINGERPRINT,
                          address="::1" if odd else "127.0.0.1", port=3478, session_id=1, accept_datachannel=bool(odd))
    try:
        answer = build_answer(offer, params)
    except Exception as exc:
        raise _broken("build_answer on an offer parse_offer accepted", exc) from exc
    assert answer.endswith("\r\n"), "answer does not end with CRLF"
    for line in answer[:-2].split("\r\n"):
        assert _ANSWER_LINE.fullmatch(line), f"answer line {line[:80]!r} is not <letter>=<value>"


# --- DTLS -----------------------------------------------------------------------------------------

_DTLS_SERVER_CERT = Certificate.generate(common_name="fuzz-server")
_DTLS_CLIENT_CERT = Certificate.generate(common_name="fuzz-client")
_DTLS_LIFETIME = 2000
_DTLS_STEPS = 16


class _DtlsWorld:
    """A server endpoint to fuzz: fresh each input, or connected to an in-memory client and kept
    until the fuzzing closes it (a handshake costs about a millisecond)."""

    def __init__(self) -> None:
        self.server_context = DtlsContext(_DTLS_SERVER_CERT)
        self.client_context = DtlsContext(_DTLS_CLIENT_CERT)
        self.server: DtlsEndpoint | None = None
        self.client: DtlsEndpoint | None = None
        self.inputs = 0
        self.now = 0.0

    def reset(self) -> None:
        self.server = self.client = None

    def fresh(self) -> DtlsEndpoint:
        return DtlsEndpoint(self.server_context, [("sha-256", _DTLS_CLIENT_CERT.fingerprint())])

    def connected(self) -> tuple[DtlsEndpoint, DtlsEndpoint]:
        self.inputs += 1
        if (self.server is None or self.server.state != "connected" or self.client.state != "connected"
                or self.inputs > _DTLS_LIFETIME):
            self.inputs = 0
            server = self.fresh()
            client = DtlsEndpoint(self.client_context, [("sha-256", _DTLS_SERVER_CERT.fingerprint())],
                                  is_server=False)
            client.start(self.now)
            for _ in range(6):
                for datagram in client.datagrams_to_send():
                    server.receive_datagram(datagram, self.now)
                for datagram in server.datagrams_to_send():
                    client.receive_datagram(datagram, self.now)
            if server.state != "connected" or client.state != "connected":
                raise RuntimeError(f"fuzz DTLS pair did not connect ({server.state}/{client.state})")
            while server.next_event() is not None:
                pass
            self.server, self.client = server, client
        return self.server, self.client


_dtls = _DtlsWorld()
_DTLS_EVENTS = (HandshakeCompleted, ApplicationData, Closed, HandshakeFailed)
_DTLS_STATES = ("new", "handshaking", "connected", "closed", "failed")


def _check_dtls_output(server: DtlsEndpoint) -> None:
    for datagram in server.datagrams_to_send():
        offset, records = 0, 0
        while offset < len(datagram):
            assert offset + 13 <= len(datagram), "DTLS datagram ends inside a record header"
            assert 20 <= datagram[offset] <= 23 and datagram[offset + 1] == 0xFE, "DTLS output record header"
            offset += 13 + int.from_bytes(datagram[offset + 11:offset + 13], "big")
            records += 1
        assert offset == len(datagram), "DTLS output record runs past its datagram"
        assert len(datagram) <= server.mtu or records == 1, f"{len(datagram)}-byte datagram packs several records"
    while (event := server.next_event()) is not None:
        assert isinstance(event, _DTLS_EVENTS), f"unexpected DTLS event {event!r}"
    assert server.state in _DTLS_STATES, f"DTLS state {server.state!r}"


@fuzz_target(instrument=BUILTIN_INSTRUMENT, reset=_dtls.reset)
def fuzz_dtls_records(data: bytes) -> None:
    """DtlsEndpoint (server role) fed fuzzed datagrams, fresh or after a real handshake, with
    records sealed by the connected client mixed in; nothing may raise.

    Input (toolkit.fuzz.framing): one byte, odd = connected endpoint; then steps of a kind
    byte (0 raw datagram, 1 one record framed around the payload, 2 application data sealed
    by the client, 3 client close_notify, 4 timer) and a 2-byte-length payload."""
    steps = Steps(data)
    if steps.choice(2):
        server, client = _dtls.connected()
    else:
        server, client = _dtls.fresh(), None
    for _ in range(_DTLS_STEPS):
        if not steps:
            break
        kind = steps.choice(5)
        payload = steps.payload()
        _dtls.now += 0.01
        if kind == 1 and payload:
            # One well-framed record: content type and epoch from the input, so OpenSSL sees it.
            header = bytes([20 + payload[0] % 4, 0xFE, 0xFD]) + payload[1:3].ljust(2, b"\0") + payload[3:9].ljust(6, b"\0")
            body = payload[9:]
            payload = header + len(body).to_bytes(2, "big") + body
        elif kind == 2 and client is not None and client.state == "connected":
            client.send(payload[:1000])  # fits one record at the 1200-byte MTU
            for datagram in client.datagrams_to_send():
                server.receive_datagram(datagram, _dtls.now)
            _check_dtls_output(server)
            continue
        elif kind == 3 and client is not None and client.state == "connected":
            client.close(_dtls.now)
            for datagram in client.datagrams_to_send():
                server.receive_datagram(datagram, _dtls.now)
            _check_dtls_output(server)
            continue
        elif kind == 4:
            server.get_timer()
            server.handle_timer(_dtls.now + 60.0)
            _check_dtls_output(server)
            continue
        server.receive_datagram(payload, _dtls.now)
        _check_dtls_output(server)


# --- data channels ------------------------------------------------------------------------------

_SCTP_STEPS = 16
_sctp = SctpWorld(lifetime=2000)


@fuzz_target(instrument=instrumentation("sctp_dcep"), reset=_sctp.reset)
def fuzz_sctp_dcep(data: bytes) -> None:
    """DataChannelAssociation.receive, what the server runs on each SCTP packet a DTLS record
    carries: its pre-checks, then aiortc's SCTP and DCEP (RFC 8832) on the association's task,
    with the data-channel echo (`shell.datachannel_echo`) answering. Nothing may escape and the
    world's invariants hold after every step (see toolkit.fuzz.sctp).

    Input (toolkit.fuzz.framing): one byte, odd = the established association with the
    channel "oai-events" on stream 0, even = a fresh one that has sent its INIT; then steps
    of a kind byte and a 2-byte-length payload. Kinds: 0 the payload as the packet, 1 the
    same with its checksum fixed, 2 the payload as chunks behind a correct header, 3 one
    DATA chunk at the next TSN (payload: PPID choice, flags xor 3, stream id, sequence
    offset, user data), 4 COOKIE ECHO of the last INIT ACK's cookie then the payload's
    chunks, 5 time passes (first byte picks how long), 6 a SACK of all sent so far with the
    payload's a_rwnd and gap blocks."""
    steps = Steps(data)
    established = bool(steps.choice(2))

    def each_step():
        for _ in range(_SCTP_STEPS):
            if not steps:
                return
            kind = steps.choice(7)
            yield kind, steps.payload()

    _sctp.run(established, each_step())


# --- the core -----------------------------------------------------------------------------------------

ICE_SOURCE = ("192.0.2.7", 50000)
_ice_world = World(connected=0, pending=1, lifetime=5000)


@fuzz_target(instrument=BUILTIN_INSTRUMENT, reset=_ice_world.reset)
def fuzz_ice_request(data: bytes) -> None:
    """One STUN datagram from a fixed address to a core with one session (ICE-lite checks).

    The first byte picks fix-ups so fuzzing gets past authentication: bit 0 puts the
    session's ufrag in USERNAME, bit 1 re-signs MESSAGE-INTEGRITY with its password, bit 2
    recomputes FINGERPRINT. Nothing may raise and no internal error may be counted."""
    if not data:
        return
    _ice_world.begin_input()
    flags, message = data[0], data[1:]
    credentials = _ice_world.session_credentials(0)
    if credentials is not None:
        ufrag, pwd = credentials
        if flags & 1:
            message = stunkit.with_username(message, f"{ufrag}:{_ice_world.peers[0].local_ufrag}".encode())
        if flags & 2:
            message = stunkit.with_integrity(message, pwd.encode())
    if flags & 4:
        message = stunkit.with_fingerprint(message)
    if message:
        _ice_world.deliver(message, ICE_SOURCE)
    _ice_world.end_input()


SOURCES = (
    home(0),  # connected peer 0
    home(1),  # connected peer 1
    ("127.0.0.1", 40002),
    ("::1", 40003),
    ("127.0.0.1", 40004),
)
# Indexed by one input byte: mostly no time at all; 31 s (consent lapses, and reopening a
# session costs a handshake, ~3 ms) only for one value. Mutations fill inserted runs with
# 0x00 and 0xFF, so both ends of the table mean "no time".
TIME_STEPS = ((0.0,) * 128 + (0.001,) * 32 + (0.02,) * 32 + (0.5,) * 32 + (1.0,) * 16 + (5.0,) * 8
              + (12.0, 12.0, 31.0) + (0.0,) * 5)
MAX_STEPS = 16
_server_world = World(connected=2, pending=1, lifetime=2000)


def _craft(world: World, kind: int, peer_index: int, payload: bytes) -> list[bytes]:
    """The datagrams one step sends: raw bytes, or something a peer builds around them."""
    peer = world.peers[peer_index]
    credentials = world.session_credentials(peer_index)
    try:
        if kind == 1:  # SRTP: fuzzed RTP header and payload, version 2, the peer's keys
            packet = bytearray(payload.ljust(12, b"\0"))
            packet[0] = 0x80 | (packet[0] & 0x3F)
            return [peer.protect_rtp(bytes(packet))]
        if kind == 2:  # SRTCP: fuzzed compound packet, version 2, an RTCP type byte
            packet = bytearray(payload.ljust(8, b"\0"))
            packet[0] = 0x80 | (packet[0] & 0x3F)
            packet[1] = 192 + packet[1] % 32
            return [peer.protect_rtcp(bytes(packet))]
        if kind in (3, 4) and credentials is not None:  # an authentic check, maybe with one byte flipped
            options = payload[0] if payload else 0
            extra = [(int.from_bytes(payload[1:3], "big"), payload[3:40])] if len(payload) >= 3 else []
            request = peer.binding_request(use_candidate=bool(options & 1), controlling=not options & 2,
                                           username=f"{credentials[0]}:{peer.local_ufrag}", password=credentials[1],
                                           extra_attributes=extra)
            if kind == 4 and len(payload) >= 2:
                flipped = bytearray(request)
                flipped[payload[-1] % len(flipped)] ^= payload[-2] | 1
                request = bytes(flipped)
            return [request]
        if kind == 5 and peer.state == "connected":  # DTLS application data sealed by the peer
            peer.send_dtls(payload[:1000])
            return [data for data, _ in peer.datagrams_to_send()]
        if kind == 6 and peer.state == "connected":  # close_notify
            peer.close(world.now)
            return [data for data, _ in peer.datagrams_to_send()]
        if kind == 7 and credentials is not None:  # fuzzed STUN re-signed with the session's credentials
            message = stunkit.with_username(payload, f"{credentials[0]}:{peer.local_ufrag}".encode())
            return [stunkit.with_fingerprint(stunkit.with_integrity(message, credentials[1].encode()))]
    except (PeerError, pylibsrtp.Error, SSL.Error, ValueError):
        pass  # the peer cannot build it (no keys yet, libsrtp refuses the header): send the bytes raw
    return [payload] if payload else []


@fuzz_target(instrument=BUILTIN_INSTRUMENT, reset=_server_world.reset)
def fuzz_server_receive(data: bytes) -> None:
    """The whole core on a fake clock: two connected sessions and one pending, datagrams of every
    kind from five addresses, time steps up to past consent expiry. The world's invariants hold
    after every step (see toolkit.fuzz.world).

    Input (toolkit.fuzz.framing): steps of four choice bytes (source address, time step,
    kind, peer) and a 2-byte-length payload. Kinds: 0 raw, 1 SRTP and 2 SRTCP of the
    payload under the peer's keys, 3 the peer's authentic check, 4 the same with one byte
    flipped, 5 DTLS application data sealed by the peer, 6 the peer's close_notify, 7 the
    payload as STUN re-signed with the peer's session credentials."""
    world = _server_world
    world.begin_input()
    steps = Steps(data)
    for _ in range(MAX_STEPS):
        if not steps:
            break
        source = SOURCES[steps.choice(len(SOURCES))]
        world.advance(TIME_STEPS[steps.choice(len(TIME_STEPS))])
        kind = steps.choice(8)
        peer_index = steps.choice(len(world.peers))
        for datagram in _craft(world, kind, peer_index, steps.payload()):
            world.deliver(datagram, source)
    world.end_input()
