"""The sctp_dcep target's world (toolkit.fuzz.sctp), the real-client capture's filing
(toolkit.fuzz.capture), and what the stateful targets run with (campaign flags, world reuse)."""
from __future__ import annotations

import hashlib
import struct

import pytest
from aiortc import rtcsctptransport

import reference_server.shell.datachannel as datachannel
from toolkit.fuzz import builtin_targets, check
from toolkit.fuzz.campaign import Campaign, command, options_file, target_flags
from toolkit.fuzz.capture import pick, store
from toolkit.fuzz.framing import Steps, encode
from toolkit.fuzz.sctp import SctpWorld, dcep_open, packet_of, seal
from toolkit.fuzz.world import World, home, probe_peer

TARGET = builtin_targets()["sctp_dcep"]
DATA, SACK, COOKIE_ACK = 0, 3, 11


@pytest.fixture
def world():
    """The target's own world, reset before and after (replay does the same per input)."""
    from toolkit.fuzz.targets import _sctp

    _sctp.reset()
    yield _sctp
    _sctp.reset()


def chunk_types(packets: list[bytes]) -> list[int]:
    return [chunk.type for packet in packets for chunk in rtcsctptransport.parse_packet(packet)[3]]


def message(ppid_choice: int, stream: int, user_data: bytes) -> tuple[tuple[int], bytes]:
    """A kind-3 step: one DATA chunk at the next TSN."""
    return (3,), bytes([ppid_choice, 0]) + struct.pack("!HH", stream, 0) + user_data


def test_the_established_association_echoes_a_message_on_its_open_channel(world):
    assert [c.label for c in world.established.channels] == ["oai-events"]
    assert check(TARGET, encode(message(1, 0, b"hello"), prefix=b"\x01")).error is None
    assert DATA in chunk_types(world.sent) and SACK in chunk_types(world.sent)
    assert world.established.malformed_packets == 0


def test_a_fresh_association_takes_a_real_init_and_the_echoed_cookie_then_dcep(world):
    client_init = world.client_packets[0]
    data = encode(((0,), client_init), ((4,), b""), message(0, 2, dcep_open(b"chat")), message(1, 2, b"hi"),
                  prefix=b"\x00")
    assert check(TARGET, data).error is None
    sent = chunk_types(world.sent)
    assert COOKIE_ACK in sent and sent.count(DATA) >= 2  # the DCEP ACK and the echo
    assert world.association.state == "closed"  # each fresh association is closed after its input


def test_sack_amplification_is_a_finding_once_the_adapters_precheck_is_gone(world, monkeypatch):
    reproducer = encode(((6,), b"\x00\x10\x00\x00" + struct.pack("!HH", 1, 65535) * 2), prefix=b"\x01")
    assert check(TARGET, reproducer).error is None
    monkeypatch.setattr(datachannel, "_sack_overreaches", lambda packet, next_tsn: False)
    world.reset()
    outcome = check(TARGET, reproducer)
    assert outcome.error.endswith("InvariantViolation[sctp-sack-amplification]"), outcome
    assert "span 131070 TSNs" in outcome.message


def test_packets_are_sealed_as_aiortc_checks_them():
    chunk = struct.pack("!BBH", 4, 0, 8) + struct.pack("!HH", 1, 4)
    packet = packet_of(chunk, 0x01020304)
    assert rtcsctptransport.parse_packet(packet)[2:] and packet[4:8] == bytes([1, 2, 3, 4])
    assert seal(packet[:8] + b"\0\0\0\0" + packet[12:]) == packet


def test_worlds_are_rebuilt_after_their_lifetime():
    sctp = SctpWorld(lifetime=2)
    try:
        for _ in range(3):
            sctp.run(True, iter([(3, bytes([1, 0, 0, 0, 0, 0]) + b"x")]))
        assert sctp.inputs == 1  # rebuilt before the third input
    finally:
        sctp.close()


# --- the capture's filing ---------------------------------------------------------------------------


def sctp_packet(*chunks: bytes, tag: int = 7) -> bytes:
    return packet_of(b"".join(chunks), tag)


def test_real_client_traffic_is_filed_in_each_targets_layout(tmp_path):
    init = sctp_packet(struct.pack("!BBHIIHHI", 1, 0, 20, 9, 65536, 16, 16, 100), tag=0)
    cookie_echo_and_data = sctp_packet(struct.pack("!BBH", 10, 0, 8) + b"cook",
                                       struct.pack("!BBHIHHI", 0, 3, 17, 100, 0, 0, 50) + b"\x02" + bytes(3))
    sack = sctp_packet(struct.pack("!BBHIIHH", 3, 0, 16, 99, 65536, 0, 0))
    check_request = bytes.fromhex("0001000c2112a442") + bytes(12) + bytes.fromhex("00250000") + bytes(4)
    seen = {"received": [check_request, bytes([22, 0xFE, 0xFD]) + bytes(10), bytes([0x80, 111]) + bytes(20)],
            "sent": [bytes.fromhex("0101000c2112a442") + bytes(24)], "rtp": [b"rtp"], "rtcp": [b"rtcp"],
            "sctp": [init, cookie_echo_and_data, sack], "offer": [b"v=0\r\n"]}
    picks = pick(seen)
    steps = Steps(picks["sctp_dcep"][0])
    assert steps.choice(2) == 0  # a fresh association
    assert [steps.choice(7), steps.payload()] == [0, init]  # the client's INIT as it came
    assert [steps.choice(7), steps.payload()] == [4, cookie_echo_and_data[20:]]  # what it bundled behind its cookie
    assert [steps.choice(7), steps.payload()] == [2, sack[12:]]  # re-addressed chunks
    assert picks["ice_request"][0] == b"\x07" + check_request
    assert picks["server_receive"][0] == encode(*[((2, 0, 0, 0), d) for d in seen["received"]])
    written = store(tmp_path, "chromium", picks)
    assert written["sctp_dcep"] == 1 and written["sdp_offer"] == 1
    offer = seen["offer"][0]
    assert (tmp_path / "sdp_offer" / f"chromium-{hashlib.sha1(offer).hexdigest()}").read_bytes() == offer
    for name, items in picks.items():
        for item in items:  # every filed input runs clean on its target
            assert check(builtin_targets()[name], item).error is None, name


# --- what the stateful targets run with -----------------------------------------------------------------


def test_stateful_targets_are_scheduled_by_execution_time():
    assert target_flags("server_receive") == ["-max_len=4096", "-entropic_scale_per_exec_time=1"]
    assert target_flags("sctp_dcep")[-1] == "-entropic_scale_per_exec_time=1"
    assert target_flags("demux") == []
    assert "-entropic_scale_per_exec_time=1" in command(Campaign(spec="server_receive"), "corpus", "out")
    assert options_file("server_receive") == "[libfuzzer]\nmax_len = 4096\nentropic_scale_per_exec_time = 1\n"


def test_probe_peers_keep_their_slots_certificate_and_credentials():
    first, again = probe_peer(0), probe_peer(0)
    assert first.fingerprint == again.fingerprint != probe_peer(1).fingerprint
    assert first.create_offer() == again.create_offer()


def test_a_session_the_input_closed_is_open_again_when_the_input_ends():
    world = World(connected=1, pending=0, lifetime=100)
    world.reset()
    world.begin_input()
    before = world.session_ids[0]
    world.peers[0].close(world.now)  # close_notify
    for data, _ in world.peers[0].datagrams_to_send():
        world.deliver(data, home(0))
    assert before not in world.core.sessions.by_id
    world.end_input()
    assert world.session_ids[0] != before and world.session_ids[0] in world.core.sessions.by_id
    assert world.peers[0].state == "connected"
