"""Write the seed corpora and dictionaries: `python -m toolkit.fuzz.seeds [CORPORA_DIR] [--only TARGET]`.

Seeds are RFC test vectors (RFC 5769 STUN; the RFC 7714 §16.1 plaintext RTP packet) and
the datagrams of real sessions: a probe peer connects to an in-process core on a fake
clock, sends audio and RTCP, and every datagram either side sends is kept (plaintext RTP
and RTCP too, as the peer decrypts them). Offers come from the probe peer, from aiortc
(when installed) and from a Firefox-shaped template. Files are named by content hash, so
running this again adds nothing that is already there.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import struct
from collections.abc import Iterable
from pathlib import Path

from reference_server.certificate import Certificate
from reference_server.core import CoreConfig, ServerCore
from toolkit import resources
from toolkit.peer import ProbePeer, RtcpReceived, RtpReceived

from .framing import encode
from .sctp import SctpWorld, dcep_open
from .world import World, home

SERVER = ("127.0.0.1", 3478)

RFC5769 = [bytes.fromhex("".join(vector.split())) for vector in (
    # §2.1 sample request (short-term credentials)
    """000100582112a442b7e7a701bc34d686fa87dfae802200105354554e20746573742063
    6c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68
    367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf""",
    # §2.2 IPv4 response
    """0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220
    002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7
    80280004c07d4c96""",
    # §2.3 IPv6 response
    """010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220
    002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf1
    1784c97c8292c275bfe3ed4180280004c8fb0b4c""",
    # §2.4 request with long-term credentials
    """000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae383
    83e382afe382b90000001500 1c662f2f3439396b3935346436 4f4c33346f4c3946535476
    79363473410014000b6578616d706c652e6f726700000800 14f67024656dd64a3e02b8e0
    712e85c9a28ca89666""",
)]
RFC7714_RTP = bytes.fromhex(
    "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573")

FIREFOX_OFFER = "\r\n".join([
    "v=0", "o=mozilla...THIS_IS_SDPARTA-99.0 4563364346410361207 0 IN IP4 0.0.0.0", "s=-", "t=0 0",
    "a=fingerprint:sha-256 {fingerprint}", "a=group:BUNDLE 0 1", "a=ice-options:trickle",
    "a=msid-semantic:WMS *", "m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101", "c=IN IP4 0.0.0.0", "a=sendrecv",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1", "a=fmtp:101 0-15",
    "a=ice-pwd:{pwd}", "a=ice-ufrag:{ufrag}", "a=mid:0", "a=msid:{{a}} {{b}}", "a=rtcp-mux",
    "a=rtpmap:109 opus/48000/2", "a=rtpmap:9 G722/8000/1", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000", "a=setup:actpass", "a=ssrc:1234567 cname:{{c}}",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=sendrecv", "a=ice-pwd:{pwd}",
    "a=ice-ufrag:{ufrag}", "a=mid:1", "a=setup:actpass", "a=sctp-port:5000", "a=max-message-size:1073741823",
]) + "\r\n"


def capture() -> dict[str, list[bytes]]:
    """One real session, recorded: every datagram both ways, plus the decrypted RTP/RTCP."""
    core = ServerCore(CoreConfig(advertise_address=SERVER[0], port=SERVER[1]), Certificate.generate(),
                      random_bytes=random.Random(3).randbytes)
    peer = ProbePeer(consent_interval=None, rng=random.Random(3))
    offer = peer.create_offer()
    _, answer = core.create_session(offer, 0.0)
    peer.set_answer(answer)
    seen: dict[str, list[bytes]] = {"to_server": [], "from_server": [], "rtp": [], "rtcp": [], "offers": [offer.encode()]}
    now = 0.0

    def pump() -> None:
        for _ in range(20):
            moved = False
            for data, _ in peer.datagrams_to_send():
                seen["to_server"].append(data)
                core.receive_datagram(data, home(0), now)
                moved = True
            for data, _ in core.datagrams_to_send():
                seen["from_server"].append(data)
                peer.receive_datagram(data, SERVER, now)
                moved = True
            if not moved:
                return

    peer.start(now)
    pump()
    for index in range(6):
        peer.send_rtp(b"\xfc\xff\xfe" + bytes([index]) * 40, timestamp=960 * index, marker=index == 0)
    peer.send_rtcp(struct.pack("!BBHI", 0x81, 201, 7, peer.ssrc) + bytes(24))  # RR with one block
    pump()
    now = 6.0
    core.handle_timer(now)
    pump()
    peer.send_raw(peer.binding_request(use_candidate=False))
    peer.close(now)
    pump()
    while (event := peer.next_event()) is not None:
        if isinstance(event, RtpReceived):
            seen["rtp"].append(event.packet)
        elif isinstance(event, RtcpReceived):
            seen["rtcp"].append(event.packet)
    return seen


def _aiortc_offer() -> bytes | None:
    try:
        import asyncio

        from aiortc import RTCPeerConnection
    except ImportError:
        return None

    async def offer() -> str:
        connection = RTCPeerConnection()
        connection.addTransceiver("audio")
        connection.createDataChannel("oai-events")
        description = await connection.createOffer()
        await connection.close()
        return description.sdp

    return asyncio.run(offer()).encode()


def _rtp_samples() -> list[bytes]:
    header = struct.pack("!BBHII", 0x90, 111, 1, 960, 0x11223344)
    one_byte = header + struct.pack("!HH", 0xBEDE, 2) + bytes([0x10, 0xFF, 0x31, 0x00, 0x01, 0x00, 0x00, 0x00])
    two_byte = header + struct.pack("!HH", 0x1000, 1) + bytes([0x01, 0x02, 0xAA, 0xBB])
    csrc = struct.pack("!BBHII", 0x82, 0xEF, 2, 1920, 5) + struct.pack("!II", 6, 7) + b"payload"
    padded = struct.pack("!BBHII", 0xA0, 111, 3, 2880, 5) + b"opus" + bytes([0, 0, 0, 4])
    return [RFC7714_RTP, one_byte + b"\xfc" * 20, two_byte + b"\xfc", csrc, padded]


def _rtcp_samples() -> list[bytes]:
    block = struct.pack("!IIIIII", 0x55667788, (3 << 24) | 0xFFFFFE, 70000, 12, 0x12345678, 655)
    sender = struct.pack("!BBHIQIII", 0x81, 200, 12, 1, 0xE8F0_0000_8000_0000, 960, 10, 1600) + block
    receiver = struct.pack("!BBHI", 0x81, 201, 7, 2) + block
    sdes = struct.pack("!BBHI", 0x81, 202, 3, 1) + b"\x01\x04cnam\x00\x00"  # one chunk: CNAME "cnam", end
    bye = struct.pack("!BBHI", 0x81, 203, 1, 1)
    nack = struct.pack("!BBHIIHH", 0x81, 205, 3, 1, 2, 100, 0)
    pli = struct.pack("!BBHII", 0x81, 206, 2, 1, 2)
    padded = struct.pack("!BBHI", 0xA0, 201, 2, 9) + bytes([0, 0, 0, 4])
    return [sender, receiver, sender + sdes, receiver + bye, nack, pli, padded]


def _server_receive_seeds(world_peer_check: list[bytes], capture_data: dict[str, list[bytes]]) -> list[bytes]:
    """Steps: (source, time, kind, peer) choices and a payload (see fuzz_server_receive)."""
    rtp, rtcp = _rtp_samples(), _rtcp_samples()
    client_hello = next((d for d in capture_data["to_server"] if 20 <= d[0] <= 63), b"")
    seeds = [
        encode(((0, 0, 1, 0), rtp[1]), ((1, 0, 1, 1), rtp[0]), ((0, 150, 2, 0), rtcp[0])),
        encode(((2, 0, 3, 0), b"\x01"), ((2, 0, 1, 0), rtp[3]), ((0, 0, 3, 0), b"\x01")),
        encode(((4, 0, 3, 1), b"\x01"), ((1, 0, 2, 0), rtcp[1]), ((4, 245, 0, 0), b"")),
        encode(((3, 0, 3, 2), b"\x00"), ((3, 0, 0, 2), client_hello), ((3, 0, 4, 2), b"\x00\x00\x07\x01")),
        encode(((0, 0, 5, 0), b"data channel bytes"), ((1, 0, 6, 1), b""), ((1, 0, 3, 1), b"\x01")),
        encode(((4, 0, 7, 0), RFC5769[0]), ((4, 0, 1, 0), rtp[2]), ((4, 250, 0, 0), b"")),
        encode(*[((0, 0, 0, 0), datagram) for datagram in capture_data["to_server"][:6]]),
        encode(*[((2, 0, 0, 0), check) for check in world_peer_check]),
    ]
    return seeds


def _dtls_seeds(capture_data: dict[str, list[bytes]]) -> list[bytes]:
    """A mode byte (odd: connected), then steps of a kind byte and a payload."""
    flights = [d for d in capture_data["to_server"] if 20 <= d[0] <= 63]
    replies = [d for d in capture_data["from_server"] if 20 <= d[0] <= 63]
    seeds = [encode(*[((0,), flight) for flight in flights], prefix=b"\x00"),
             encode(((2,), b"hello over DTLS"), ((0,), flights[-1] if flights else b""), ((3,), b""), prefix=b"\x01"),
             encode(((1,), b"\x15\x00\x01" + b"\x00" * 6 + b"\x02\x28"), ((4,), b""), prefix=b"\x01"),
             encode(*[((0,), reply) for reply in replies[:3]], prefix=b"\x01")]
    return seeds


def _chunk(chunk_type: int, flags: int, value: bytes) -> bytes:
    chunk = struct.pack("!BBH", chunk_type, flags, 4 + len(value)) + value
    return chunk + bytes(-len(chunk) % 4)


def _sctp_seeds() -> list[bytes]:
    """A real association (aiortc's client against the server's adapter) and the chunks and
    DCEP messages around it. Prefix byte: 1 established, 0 fresh (see fuzz_sctp_dcep)."""
    world = SctpWorld(lifetime=1)
    world.reset()
    client = world.client_packets  # INIT, COOKIE ECHO, DATA (DCEP OPEN "oai-events"), SACK
    world.close()
    init, cookie_echo, dcep, sack = client[0], client[1], client[2], client[3]

    def data(ppid_choice: int, stream: int, user_data: bytes, flags: int = 0) -> tuple[tuple[int], bytes]:
        return (3,), bytes([ppid_choice, flags]) + struct.pack("!HH", stream, 0) + user_data

    heartbeat = _chunk(4, 0, struct.pack("!HH", 1, 12) + b"beatbeat")
    reset_stream_0 = _chunk(130, 0, struct.pack("!HHIII", 13, 18, 1, 0, 0) + struct.pack("!H", 0) + b"\0\0")
    forward_tsn = _chunk(192, 0, struct.pack("!IHH", 0, 0, 0))
    return [
        # fresh: the client's own INIT (valid as it is), the server's cookie back, then DCEP and messages
        encode(((0,), init), ((4,), b""), data(0, 2, dcep_open(b"chat", b"proto")), data(1, 2, b"hi"),
               data(2, 2, b"\x00\x01binary"), ((6,), b""), prefix=b"\x00"),
        encode(((2,), init[12:]), ((4,), b""), data(0, 4, dcep_open(b"lossy", channel_type=0x81, reliability=3)),
               data(3, 4, b""), ((5,), b"\x02"), prefix=b"\x00"),
        encode(((1,), init), ((0,), cookie_echo), ((0,), dcep), ((0,), sack), ((5,), b"\x05"), prefix=b"\x00"),
        # established: messages of every PPID on the open channel, fragments, DCEP on new streams
        encode(data(1, 0, b"hello"), data(2, 0, b"\xff\x00"), data(3, 0, b""), data(4, 0, b""), ((6,), b""),
               prefix=b"\x01"),
        encode(data(1, 0, b"first ", flags=1), data(1, 0, b"last", flags=2), data(5, 0, b"partial"),
               prefix=b"\x01"),
        encode(data(0, 6, dcep_open(b"timed", channel_type=0x02, reliability=500)), data(0, 6, b"\x02"),
               data(0, 0, dcep_open(b"again")), data(7, 0, b"unknown ppid"), prefix=b"\x01"),
        encode(((2,), heartbeat), ((2,), reset_stream_0), ((2,), forward_tsn), ((5,), b"\x01"), prefix=b"\x01"),
        encode(((2,), _chunk(7, 0, struct.pack("!I", 0))), ((5,), b"\x03"), ((2,), _chunk(14, 0, b"")),
               prefix=b"\x01"),
        encode(((6,), b"\x00\x01\x00\x00" + struct.pack("!HH", 2, 3)), ((2,), _chunk(6, 0, b"")), prefix=b"\x01"),
        encode(((0,), dcep), ((0,), b"\x13\x88\x13\x88" + bytes(8)), prefix=b"\x01"),
    ]


def dictionaries() -> dict[str, list[bytes]]:
    stun_tokens = [b"\x21\x12\xa4\x42", b"\x00\x01", b"\x01\x01", b"\x01\x11", b"\x00\x11",
                   b"\x00\x06", b"\x00\x08\x00\x14", b"\x80\x28\x00\x04", b"\x00\x24\x00\x04", b"\x00\x25\x00\x00",
                   b"\x80\x29\x00\x08", b"\x80\x2a\x00\x08", b"\x00\x20\x00\x08", b"\x00\x20\x00\x14", b"\x00\x1c\x00\x20",
                   b"\x00\x09", b"\x00\x0a", b"\x80\x22", b"\x00\x14", b"\x00\x15", b"\x00\x1d", b"\x80\x02"]
    rtp_tokens = [b"\x80", b"\x90", b"\xa0", b"\xbe\xde", b"\x10\x00", b"\x80\x6f", b"\x80\xef"]
    rtcp_tokens = [b"\x81\xc8", b"\x81\xc9", b"\x81\xca", b"\x81\xcb", b"\x81\xcc", b"\x81\xcd", b"\x81\xce",
                   b"\x81\xcf", b"\xa0\xc9", b"\x80\xc9\x00\x01"]
    dtls_tokens = [b"\x16\xfe\xfd", b"\x17\xfe\xfd", b"\x15\xfe\xfd", b"\x14\xfe\xfd", b"\x16\xfe\xff",
                   b"\x00\x01", b"\x01\x00", b"\x00\x0e", b"\xc0\x2b", b"\xc0\x2f", b"\x00\x17", b"\xff\x01"]
    sdp_tokens = [text.encode() for text in (
        "v=0\r\n", "o=- 1 2 IN IP4 127.0.0.1\r\n", "s=-\r\n", "t=0 0\r\n", "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
        "c=IN IP4 0.0.0.0\r\n", "c=IN IP6 ::\r\n", "a=ice-ufrag:", "a=ice-pwd:", "a=ice-options:trickle",
        "a=fingerprint:sha-256 ", "a=fingerprint:sha-1 ", "a=setup:actpass", "a=setup:active", "a=setup:passive",
        "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1", "a=mid:0", "a=mid:1",
        "a=group:BUNDLE 0 1", "a=sctp-port:5000", "a=max-message-size:262144", "a=candidate:", "a=ice-lite",
        "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive", "a=end-of-candidates", "RTP/SAVP", "RTP/AVP",
        "UDP/TLS/RTP/SAVP", "a=extmap-allow-mixed", "a=msid-semantic: WMS", "\r\n", "\n", ":", " ")]
    sctp_tokens = [b"\x13\x88\x13\x88", b"\x00\x03", b"\x00\x07", b"\x01\x00", b"\x03\x00", b"\x04\x00",
                   b"\x06\x00", b"\x07\x00", b"\x0a\x00", b"\x0e\x00", b"\x82\x00", b"\xc0\x00",
                   b"\x00\x07", b"\x80\x08", b"\xc0\x00\x00\x04", b"\x00\x0d", b"\x00\x10", b"\x00\x11",
                   b"\x00\x00\x00\x32", b"\x00\x00\x00\x33", b"\x00\x00\x00\x35", b"\x00\x00\x00\x38",
                   b"\x00\x00\x00\x39", b"\x03\x00", b"\x03\x80", b"\x03\x01", b"\x03\x02", b"\x03\x81",
                   b"\x03\x82", b"\x02", b"oai-events", b"\xff\xff"]
    return {
        "demux": stun_tokens[:2] + rtp_tokens + rtcp_tokens[:3] + dtls_tokens[:4],
        "stun_parse": stun_tokens,
        "ice_request": stun_tokens,
        "rtp_parse": rtp_tokens,
        "rtcp_parse": rtcp_tokens,
        "dtls_records": dtls_tokens,
        "sdp_offer": sdp_tokens,
        "sctp_dcep": sctp_tokens,
        "server_receive": stun_tokens + rtp_tokens + rtcp_tokens + dtls_tokens,
    }


def _dict_entry(token: bytes) -> str:
    text = "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\x{b:02x}" for b in token)
    return f'"{text}"'


def generate(corpora: Path, only: Iterable[str] | None = None) -> dict[str, int]:
    """Write every target's seeds and dictionary under `corpora` (or those of the targets
    named in `only`: DTLS keys differ each run, so the others would gain new files);
    return files written per target."""
    data = capture()
    ice = World(connected=0, pending=1, lifetime=1)
    ice.reset()
    ice_peer = ice.peers[0]
    checks = [ice_peer.binding_request(), ice_peer.binding_request(use_candidate=False),
              ice_peer.binding_request(controlling=False), ice_peer.binding_request(extra_attributes=[(0x0777, b"abcd")]),
              ice_peer.binding_request(fingerprint=False), ice_peer.binding_request(password="x" * 24)]
    stun_messages = RFC5769 + [d for d in data["to_server"] + data["from_server"] if d[0] < 4]
    srtp = [d for d in data["to_server"] + data["from_server"] if d[0] >= 128]
    dtls = [d for d in data["to_server"] + data["from_server"] if 20 <= d[0] <= 63]
    offers = data["offers"] + [FIREFOX_OFFER.format(fingerprint=":".join(["3C"] * 32), pwd="f" * 32, ufrag="ff01").encode()]
    offer = _aiortc_offer()
    if offer is not None:
        offers.append(offer)
    seeds = {
        "demux": stun_messages[:3] + srtp[:4] + dtls[:3] + _rtp_samples()[:2] + _rtcp_samples()[:2],
        "stun_parse": stun_messages,
        "ice_request": [bytes([0]) + check for check in checks] + [bytes([7]) + vector for vector in RFC5769]
                       + [bytes([3]) + checks[0]],
        "rtp_parse": _rtp_samples() + data["rtp"],
        "rtcp_parse": _rtcp_samples() + data["rtcp"],
        "dtls_records": _dtls_seeds(data),
        "sdp_offer": offers,
        "sctp_dcep": _sctp_seeds(),
        "server_receive": _server_receive_seeds(checks[:2], data),
    }
    chosen = set(seeds) if only is None else set(only)
    written = {}
    for name, items in seeds.items():
        if name not in chosen:
            continue
        folder = corpora / name
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            (folder / hashlib.sha1(item).hexdigest()).write_bytes(item)
        written[name] = len(items)
    for name, tokens in dictionaries().items():
        if name not in chosen:
            continue
        lines = [f"# libFuzzer dictionary for the {name} target (written by toolkit.fuzz.seeds)"]
        lines += [_dict_entry(token) for token in dict.fromkeys(tokens)]
        (corpora / f"{name}.dict").write_text("\n".join(lines) + "\n")
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="?", type=Path, default=resources.corpora())
    parser.add_argument("--only", action="append", metavar="TARGET", help="write only this target's seeds (repeatable)")
    args = parser.parse_args()
    for target, count in generate(args.corpora, args.only).items():
        print(f"{target}: {count} seeds")
