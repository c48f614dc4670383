from __future__ import annotations

import asyncio
import random
import socket
import string

import pytest
from aioice import stun as aioice_stun

from toolkit.crafters.dtls import (
    CLIENT_HELLO,
    DTLS_1_2,
    HANDSHAKE,
    DtlsClientHello,
    DtlsExtUseSrtp,
    DtlsHandshake,
    parse_records,
)
from toolkit.load.accounting import LoadError
from toolkit.load.attacks import (
    ATTACK_KINDS,
    SRTP_TAG_LENGTH,
    AttackContext,
    AttackSender,
    AttackSpec,
    BoundPacket,
    BoundTuple,
    parse_attack,
)

KNOWN = "garbage, stun-unknown-ufrag, stun-bad-credentials, clienthello-unbound, srtp-bad-tag, mix"
SESSIONS = [("srvA", "cliA"), ("srvB", "cliB")]
ICE_CHARS = set(string.ascii_letters + string.digits + "+/")


class FakeBound:
    """A legit session's socket as the attack sees it: records what it is asked to send."""

    def __init__(self, ssrc: int, sequence: int) -> None:
        self.sent: list[bytes] = []
        self.sequence = sequence
        self.tuple = BoundTuple(send=self.sent.append, ssrc=ssrc, next_sequence=lambda: self.sequence)


def context(target: tuple[str, int] = ("127.0.0.1", 9), bound: list[FakeBound] = ()) -> AttackContext:
    return AttackContext(target=target, server_ufrags=list(SESSIONS), bound=[b.tuple for b in bound])


def build(kind: str, ctx: AttackContext | None = None, count: int = 16, seed: int = 1) -> list:
    return ATTACK_KINDS[kind].factory(ctx or context(bound=[FakeBound(0x1234, 100)]), random.Random(seed), count)


# parse_attack


@pytest.mark.parametrize(
    ("text", "kinds", "pps"),
    [
        ("garbage@500", ("garbage",), 500.0),
        ("stun-unknown-ufrag@0.5", ("stun-unknown-ufrag",), 0.5),
        ("garbage+srtp-bad-tag@2k", ("garbage", "srtp-bad-tag"), 2000.0),
        ("clienthello-unbound+stun-bad-credentials@1.5K", ("clienthello-unbound", "stun-bad-credentials"), 1500.0),
        ("mix@10k", tuple(ATTACK_KINDS), 10000.0),
    ],
)
def test_parse_attack_accepts(text: str, kinds: tuple[str, ...], pps: float) -> None:
    assert parse_attack(text) == AttackSpec(kinds, pps)


def test_mix_is_all_five_kinds_and_prints_back() -> None:
    spec = parse_attack("mix@2k")
    assert set(spec.kinds) == {"garbage", "stun-unknown-ufrag", "stun-bad-credentials", "clienthello-unbound",
                               "srtp-bad-tag"}
    assert str(parse_attack("garbage+srtp-bad-tag@2k")) == "garbage+srtp-bad-tag@2000"
    assert str(spec) == "mix@2000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("garbage", f"attack 'garbage' is not KIND@PPS (e.g. garbage@2k, mix@500); known kinds: {KNOWN}"),
        ("flood@1k", f"attack 'flood@1k' has unknown kind 'flood'; known kinds: {KNOWN}"),
        ("@1k", f"attack '@1k' has unknown kind ''; known kinds: {KNOWN}"),
        ("garbage+@1k", f"attack 'garbage+@1k' has unknown kind ''; known kinds: {KNOWN}"),
        ("garbage+mix@1k", "attack 'garbage+mix@1k' combines mix with other kinds; mix already names every kind"),
        ("garbage+garbage@1k", "attack 'garbage+garbage@1k' names garbage twice"),
        *((f"garbage@{rate}", f"attack 'garbage@{rate}' has rate '{rate}': not a positive number of packets per "
           "second (e.g. 500, 2k, 1.5k)") for rate in ("0", "-5", "fast", "", "2kk", "infk", "nan")),
    ],
)
def test_parse_attack_rejects(text: str, message: str) -> None:
    with pytest.raises(LoadError) as raised:
        parse_attack(text)
    assert str(raised.value) == message


# What each kind puts on the wire


def test_garbage_is_random_bytes_of_20_to_1200() -> None:
    datagrams = build("garbage", count=200)
    assert len(datagrams) == 200
    assert all(20 <= len(d) <= 1200 for d in datagrams)
    assert len(set(datagrams)) == 200
    assert len({d[0] for d in datagrams}) > 50  # the first byte is not steered into one demux class


def test_stun_unknown_ufrag_is_a_well_formed_check_for_a_ufrag_nobody_issued() -> None:
    datagrams = build("stun-unknown-ufrag")
    real = {server for server, _ in SESSIONS}
    for data in datagrams:
        message = aioice_stun.parse_message(data)  # raises if FINGERPRINT is wrong
        assert (message.message_method, message.message_class) == (aioice_stun.Method.BINDING,
                                                                     aioice_stun.Class.REQUEST)
        server, client = message.attributes["USERNAME"].split(":")
        assert server not in real and len(server) == 8 and set(server + client) <= ICE_CHARS
        assert len(message.attributes["MESSAGE-INTEGRITY"]) == 20
        assert "FINGERPRINT" in message.attributes
    assert len({aioice_stun.parse_message(d).transaction_id for d in datagrams}) == len(datagrams)


def test_stun_bad_credentials_names_real_ufrags_with_a_wrong_integrity() -> None:
    real_password = b"the-real-ice-password-"
    datagrams = build("stun-bad-credentials", count=4)
    messages = [aioice_stun.parse_message(d) for d in datagrams]  # FINGERPRINT checked here
    assert [m.attributes["USERNAME"] for m in messages] == ["srvA:cliA", "srvB:cliB", "srvA:cliA", "srvB:cliB"]
    for message in messages:
        assert "FINGERPRINT" in message.attributes
        assert len(message.attributes["MESSAGE-INTEGRITY"]) == 20
        assert not message.check_message_integrity(real_password)


def test_stun_bad_credentials_covers_every_session_even_past_the_variant_count() -> None:
    sessions = [(f"srv{i}", f"cli{i}") for i in range(10)]
    datagrams = ATTACK_KINDS["stun-bad-credentials"].factory(
        AttackContext(("127.0.0.1", 9), server_ufrags=sessions), random.Random(2), 4)
    names = {aioice_stun.parse_message(d).attributes["USERNAME"] for d in datagrams}
    assert names == {f"{s}:{c}" for s, c in sessions}


def test_clienthello_unbound_is_one_handshake_record_with_use_srtp() -> None:
    datagrams = build("clienthello-unbound", count=4)
    randoms = set()
    for data in datagrams:
        assert data[0] == HANDSHAKE == 22
        (record,) = parse_records(data)
        assert (record.version, record.epoch, record.length) == (DTLS_1_2, 0, len(data) - 13)
        assert record[DtlsHandshake].msg_type == CLIENT_HELLO
        hello = record[DtlsClientHello]
        (use_srtp,) = [e for e in hello.extensions if isinstance(e, DtlsExtUseSrtp)]
        assert use_srtp.profiles
        randoms.add(hello.random)
    assert len(randoms) == 4


def test_srtp_bad_tag_rides_the_bound_stream_just_ahead_of_its_sequence() -> None:
    first, second = FakeBound(0x11111111, 65530), FakeBound(0x22222222, 7)
    packets = build("srtp-bad-tag", context(bound=[first, second]), count=6)
    assert [p.bound for p in packets] == [first.tuple, second.tuple] * 3
    for packet in packets:
        data = packet.wire()
        assert data[0] == 0x80 and data[1] & 0x7F == 111
        assert int.from_bytes(data[8:12], "big") == packet.bound.ssrc
        owner = first if packet.bound is first.tuple else second
        ahead = (int.from_bytes(data[2:4], "big") - owner.sequence) & 0xFFFF
        assert 1 <= ahead <= 32
        assert len(data) >= 12 + 40 + SRTP_TAG_LENGTH
    first.sequence = 40  # the stream moved on: the next forgery follows it
    assert 1 <= (int.from_bytes(packets[0].wire()[2:4], "big") - 40) & 0xFFFF <= 32


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("stun-bad-credentials", "attack kind stun-bad-credentials needs at least one legit session "
                                 "(it names a real server ufrag), and there are none"),
        ("srtp-bad-tag", "attack kind srtp-bad-tag needs at least one legit session "
                         "(it sends on a bound 5-tuple), and there are none"),
    ],
)
def test_kinds_needing_legit_sessions_fail_when_built(kind: str, message: str) -> None:
    with pytest.raises(LoadError) as raised:
        AttackSender(parse_attack(f"garbage+{kind}@1k"), AttackContext(("127.0.0.1", 9)), variants=2)
    assert str(raised.value) == message


def test_sender_refuses_a_non_loopback_target() -> None:
    with pytest.raises(LoadError) as raised:
        AttackSender(parse_attack("garbage@1k"), AttackContext(("192.0.2.1", 9)))
    assert str(raised.value) == "attack target 192.0.2.1 is not a loopback address; attacks go to loopback only"


def test_default_packet_bound_is_rate_times_seconds() -> None:
    sender = AttackSender(parse_attack("garbage@1.5k"), context(), max_seconds=2, variants=1)
    assert (sender.max_packets, sender.max_seconds) == (3000, 2)


# The sender against a local UDP receiver


class Receiver(asyncio.DatagramProtocol):
    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((data, addr))
        if self.reply:
            self.transport.sendto(self.reply, addr)


async def attack(text: str, bound: list[FakeBound] = (), reply: bytes = b"", stop_after: int | None = None,
                 **options) -> tuple[AttackSender, Receiver, list[list[int]]]:
    loop = asyncio.get_running_loop()
    transport, receiver = await loop.create_datagram_endpoint(lambda: Receiver(reply), local_addr=("127.0.0.1", 0))
    ports_seen: list[list[int]] = []

    def progress(stats) -> None:
        ports_seen.append(sender.local_ports)
        if stop_after is not None and stats.sent >= stop_after:
            sender.stop()

    try:
        sender = AttackSender(parse_attack(text), context(transport.get_extra_info("sockname"), bound),
                              rng=random.Random(7), variants=8, progress=progress, progress_interval=0.01,
                              reply_grace=0.05, **options)
        await sender.run()
        await asyncio.sleep(0.02)  # let the last datagrams reach the receiver
    finally:
        transport.close()
    return sender, receiver, ports_seen


def test_sender_sends_exactly_max_packets_in_kind_shares_and_closes_its_sockets() -> None:
    bound = FakeBound(0xABCDEF01, 500)
    sender, receiver, ports_seen = asyncio.run(attack("mix@50k", [bound], max_packets=503, source_ports=8))
    stats = sender.stats
    assert stats.sent == 503 and stats.socket_errors == 0
    assert stats.sent_by_kind == {"garbage": 101, "stun-unknown-ufrag": 101, "stun-bad-credentials": 101,
                                  "clienthello-unbound": 100, "srtp-bad-tag": 100}
    assert len(receiver.datagrams) == 403  # the pool's share; srtp-bad-tag went through the bound socket
    assert len(bound.sent) == 100
    assert all(int.from_bytes(d[8:12], "big") == 0xABCDEF01 for d in bound.sent)
    assert stats.sent_bytes == sum(len(d) for d, _ in receiver.datagrams) + sum(len(d) for d in bound.sent)
    ports = {addr[1] for _, addr in receiver.datagrams}
    assert ports == set(ports_seen[0]) and len(ports) == 8
    for port in ports:  # each pool port is free again: the sender closed its socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", port))
    assert sender.local_ports == []


def test_sender_interleaves_kinds_in_the_datagram_order() -> None:
    sender, receiver, _ = asyncio.run(attack("clienthello-unbound+stun-unknown-ufrag@50k", max_packets=60,
                                             source_ports=1))
    first_bytes = [data[0] for data, _ in receiver.datagrams]
    assert first_bytes == [22, 0] * 30


def test_sender_stops_at_max_seconds() -> None:
    sender, receiver, _ = asyncio.run(attack("garbage@2k", max_seconds=0.15, max_packets=10**6, source_ports=4))
    stats = sender.stats
    assert stats.elapsed_s >= 0.15
    assert 0 < stats.sent < 10**6
    assert stats.sent == stats.sent_by_kind["garbage"] == len(receiver.datagrams)
    assert stats.sent <= 2000 * stats.elapsed_s


def test_stop_ends_the_run_early() -> None:
    sender, receiver, _ = asyncio.run(attack("garbage@20k", stop_after=1, max_seconds=60, max_packets=10**9))
    assert 0 < sender.stats.sent < 10**9
    assert sender.stats.sent == len(receiver.datagrams)


def test_sender_counts_replies_to_the_pool() -> None:
    sender, receiver, _ = asyncio.run(attack("garbage+stun-unknown-ufrag@20k", reply=b"amplify", max_packets=200,
                                             source_ports=4))
    stats = sender.stats
    assert len(receiver.datagrams) == stats.sent == 200
    assert (stats.replies, stats.replies_bytes) == (200, 200 * len(b"amplify"))


def test_bound_only_attack_opens_no_pool() -> None:
    bound = FakeBound(0x42, 1)
    sender, receiver, ports_seen = asyncio.run(attack("srtp-bad-tag@20k", [bound], max_packets=50))
    assert sender.stats.sent == len(bound.sent) == 50
    assert receiver.datagrams == [] and all(ports == [] for ports in ports_seen)
    assert isinstance(build("srtp-bad-tag")[0], BoundPacket)
