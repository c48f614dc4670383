"""Server CPU per datagram on each attack kind's drop path, against legit SRTP echo.

The reference server's sans-IO core is driven in-process on a fake clock: --sessions sessions
created through signaling, --connected of them taken through ICE and DTLS by probe peers (so
bad-tag SRTP hits bound tuples with live SRTP contexts). Each attack kind's datagrams are built
by toolkit.load.attacks' own factories; each timed call is `core.receive_datagram(datagram,
source, now)` plus draining `datagrams_to_send()`: what the UDP shell does per datagram, minus
the socket. The clock advances 1/--rate seconds per datagram, so per-source or per-session
limits see the flood rate they would see live. Legit SRTP is fresh packets from the connected
peers (each is accepted once: replay protection), echoed back as in `--media echo`.

Prints µs per datagram per kind (best of --rounds) and the drops each kind was counted under,
and writes them as JSON to reports/bench/drop_paths.json with machine facts.

Usage: python -m bench.drop_paths [--sessions 100] [--connected 8] [--datagrams 20000]
                                  [--rounds 5] [--rate 33700] [--json PATH]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter

from bench.common import BenchError, benchmark_parser, machine_facts, machine_line, run_benchmark, write_results
from reference_server.certificate import Certificate
from reference_server.core import CoreConfig, ServerCore
from reference_server.shell.server import UdpShell
from toolkit.commands.arguments import positive_number, whole
from toolkit.load.attacks import ATTACK_KINDS, AttackContext, BoundTuple
from toolkit.peer.core import ProbePeer

SERVER = ("127.0.0.1", 3478)
POOL_BASE_PORT = 20000
POOL_PORTS = 64  # as many source ports as the load generator's attack pool
LEGIT = "legit-srtp"
PAYLOAD = bytes(160)  # a 20 ms Opus frame is ~60-160 bytes


class Bench:
    """A core with sessions set up through its sans-IO API, and the peers that connected."""

    def __init__(self, sessions: int, connected: int) -> None:
        self.now = 1000.0
        self.core = ServerCore(CoreConfig(advertise_address=SERVER[0], port=SERVER[1]), Certificate.generate(),
                               random_bytes=random.Random(7).randbytes)
        self.peers: list[tuple[ProbePeer, tuple[str, int]]] = []
        for index in range(sessions):
            peer = ProbePeer(consent_interval=None, rng=random.Random(index), rtp_sequence_start=1000)
            _, answer = self.core.create_session(peer.create_offer(), self.now)
            peer.set_answer(answer)
            address = ("127.0.0.1", 40000 + index)
            if index < connected:
                peer.start(self.now)
                self._pump(peer, address)
                if peer.state != "connected":
                    raise BenchError(f"probe peer {index} did not connect: state {peer.state}")
            self.peers.append((peer, address))
        self._drain()

    def _pump(self, peer: ProbePeer, address: tuple[str, int]) -> None:
        for _ in range(50):
            moved = False
            for data, _ in peer.datagrams_to_send():
                self.core.receive_datagram(data, address, self.now)
                moved = True
            for data, to in self.core.datagrams_to_send():
                if to == address:
                    peer.receive_datagram(data, SERVER, self.now)
                    moved = True
            if not moved:
                return

    def _drain(self) -> None:
        self.core.datagrams_to_send()
        while self.core.next_event() is not None:
            pass

    def connected_peers(self) -> list[tuple[ProbePeer, tuple[str, int]]]:
        return [(peer, address) for peer, address in self.peers if peer.state == "connected"]

    def attack_datagrams(self, kind: str, count: int, rng: random.Random) -> list[tuple[bytes, tuple[str, int]]]:
        """`count` datagrams of `kind` as the load generator would send them, with their sources."""
        context = AttackContext(target=SERVER)
        source_of_ssrc = {}
        for peer, _address in self.peers:
            context.server_ufrags.append((peer.answer.ice_ufrag, peer.local_ufrag))
        for peer, address in self.connected_peers():
            # The attack only reads ssrc and the sequence number; these packets are never sent.
            context.bound.append(BoundTuple(send=lambda data: None, ssrc=peer.ssrc, next_sequence=lambda: 1000))
            source_of_ssrc[peer.ssrc] = address
        prepared = ATTACK_KINDS[kind].factory(context, rng, count)
        if ATTACK_KINDS[kind].source == "bound":
            return [(packet.wire(), source_of_ssrc[packet.bound.ssrc]) for packet in prepared]
        return [(data, ("127.0.0.1", POOL_BASE_PORT + index % POOL_PORTS)) for index, data in enumerate(prepared)]

    def legit_datagrams(self, count: int, first_timestamp: int) -> list[tuple[bytes, tuple[str, int]]]:
        """Fresh SRTP from the connected peers, round-robin, each accepted once."""
        peers = self.connected_peers()
        datagrams = []
        for index in range(count):
            peer, address = peers[index % len(peers)]
            peer.send_rtp(PAYLOAD, timestamp=first_timestamp + 960 * (index // len(peers)))
            datagrams.append((peer.datagrams_to_send()[0][0], address))
        return datagrams

    def time_datagrams(self, datagrams: list[tuple[bytes, tuple[str, int]]], rate: float) -> float:
        """Seconds of receive_datagram + datagrams_to_send per datagram, the clock at `rate`."""
        core = self.core
        receive = core.receive_datagram
        drain = core.datagrams_to_send
        step = 1.0 / rate
        now = self.now
        start = time.perf_counter()
        for data, source in datagrams:
            receive(data, source, now)
            drain()
            now += step
        elapsed = time.perf_counter() - start
        self.now = now
        while core.next_event() is not None:
            pass
        return elapsed / len(datagrams)


class NullTransport:
    """Takes the shell's replies and throws them away: the socket is not what is measured."""

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        pass


class FakeLoop:
    """What the UDP shell asks of its event loop, on the bench's clock."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def time(self) -> float:
        return self.bench.now

    def call_at(self, when: float, callback) -> FakeTimer:
        return FakeTimer()


class FakeTimer:
    def cancel(self) -> None:
        pass


def time_shell(bench: Bench, datagrams: list[tuple[bytes, tuple[str, int]]], rate: float) -> float:
    """Seconds of UdpShell.datagram_received per datagram (core plus the shell's flush: replies,
    events, timer), the clock at `rate`."""
    shell = UdpShell(bench.core, FakeLoop(bench))
    shell.connection_made(NullTransport())
    receive = shell.datagram_received
    step = 1.0 / rate
    start = time.perf_counter()
    for data, source in datagrams:
        receive(data, source)
        bench.now += step
    return (time.perf_counter() - start) / len(datagrams)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    parser.add_argument("--sessions", type=whole, default=100, help="sessions in the server's table")
    parser.add_argument("--connected", type=whole, default=8, help="of them, DTLS-connected ones")
    parser.add_argument("--datagrams", type=whole, default=20000, help="datagrams per kind per round")
    parser.add_argument("--variants", type=whole, default=1024,
                        help="distinct datagrams per attack kind (the load generator prepares 1024)")
    parser.add_argument("--rounds", type=whole, default=5, help="rounds; each kind keeps its best")
    parser.add_argument("--rate", type=positive_number, default=33_700.0,
                        help="packets per second the fake clock advances at (50 %% of the measured port capacity)")
    parser.add_argument("--kinds", nargs="+", choices=[*ATTACK_KINDS, LEGIT], default=[*ATTACK_KINDS, LEGIT],
                        help="datagram kinds")
    return parser


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    if args.connected > args.sessions:
        parser.error(f"--connected {args.connected} is more than --sessions {args.sessions}")

    bench = Bench(args.sessions, args.connected)
    rng = random.Random(1)
    prepared = {kind: bench.attack_datagrams(kind, args.variants, rng) for kind in args.kinds if kind != LEGIT}
    timers = {"core": bench.time_datagrams, "shell": lambda datagrams, rate: time_shell(bench, datagrams, rate)}
    best: dict[tuple[str, str], float] = {}
    drops: dict[str, Counter] = {kind: Counter() for kind in args.kinds}
    sent: dict[str, Counter] = {kind: Counter() for kind in args.kinds}
    legit_timestamp = 0
    for _ in range(args.rounds):
        for kind in args.kinds:  # interleaved, so load from other processes falls on every kind alike
            for path, timer in timers.items():
                if kind == LEGIT:
                    datagrams = bench.legit_datagrams(args.datagrams, legit_timestamp)
                    legit_timestamp += 960 * args.datagrams
                else:
                    variants = prepared[kind]
                    datagrams = [variants[index % len(variants)] for index in range(args.datagrams)]
                drops_before = Counter(bench.core.metrics.drops)
                sent_before = Counter(bench.core.metrics.packets_sent)
                seconds = timer(datagrams, args.rate)
                best[kind, path] = min(best.get((kind, path), seconds), seconds)
                drops[kind].update(bench.core.metrics.drops - drops_before)
                sent[kind].update(bench.core.metrics.packets_sent - sent_before)

    machine = machine_facts(None)
    profiles = sorted({bench.core.sessions.by_address[address].srtp.profile for _, address in bench.connected_peers()})
    print(machine_line(machine, "pylibsrtp", kernel=False))
    print(f"settings: {args.sessions} sessions ({args.connected} connected, SRTP {', '.join(profiles)}), "
          f"{args.datagrams} datagrams per kind per round and path, best of {args.rounds}, "
          f"clock at {args.rate:g} pps")
    print("core: receive_datagram + datagrams_to_send; shell: UdpShell.datagram_received (core + flush), "
          "no socket")
    print()
    print(f"{'kind':<22} {'core µs':>8} {'shell µs':>9} {'vs legit':>9} {'replies':>8}  drops")
    results = []
    total = 2 * args.datagrams * args.rounds
    for kind in args.kinds:
        core_us, shell_us = best[kind, "core"] * 1e6, best[kind, "shell"] * 1e6
        ratio = best[kind, "shell"] / best[LEGIT, "shell"] if LEGIT in args.kinds else None
        replies = sum(sent[kind].values())
        reasons = ", ".join(f"{reason} {n / total:.0%}" for reason, n in drops[kind].most_common())
        print(f"{kind:<22} {core_us:>8.2f} {shell_us:>9.2f} {'' if ratio is None else f'{ratio:>8.2f}x'} "
              f"{replies / total:>8.1%}  {reasons or '-'}")
        results.append({"kind": kind, "core_us_per_datagram": round(core_us, 3),
                        "shell_us_per_datagram": round(shell_us, 3),
                        "shell_vs_legit": None if ratio is None else round(ratio, 3),
                        "reply_fraction": round(replies / total, 4),
                        "replies_by_kind": dict(sent[kind]), "drops": dict(drops[kind])})
    print()
    write_results(args.json, {
        "machine": machine,
        "settings": {"sessions": args.sessions, "connected": args.connected, "srtp_profiles": profiles,
                     "datagrams": args.datagrams, "variants": args.variants, "rounds": args.rounds,
                     "rate_pps": args.rate},
        "results": results,
    })
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("drop_paths", main))
