"""Network mutation fuzzing of a live target: mutated STUN, SRTP, SRTCP and DTLS inside real sessions.

Each batch opens a session over WHIP, builds valid datagrams of every layer inside it, mutates
each with the crafters' mutators (seeded per batch: `random.Random(seed + batch)`) and sends them
from the session's own socket, so they reach post-handshake state. Then a sanity conversation
from a fresh session (connect, one RTP packet, its echo within 2 s; one retry after 1 s) tells
whether the target is still alive. A target that stops answering is a finding: the batch that
killed it is written out as the reproducer, with its replay command, and the run stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.crafters import mutators
from toolkit.crafters.dtls import client_hello_flight
from toolkit.peer import RtpReceived
from toolkit.peer.offer import PeerError
from toolkit.peer.shell.udp import PeerConnection, connect_whip

LAYERS = ("stun", "srtp", "srtcp", "dtls")
SANITY_ECHO_TIMEOUT = 2.0
SANITY_RETRY_DELAY = 1.0
CONNECT_TIMEOUT = 5.0
_FAILURES = (PeerError, OSError, asyncio.TimeoutError)


@dataclass(slots=True)
class MutatedDatagram:
    """One mutation of one valid datagram: what was sent (hex), from which layer, and how."""

    layer: str
    description: str
    datagrams: list[str]


@dataclass(slots=True)
class NetworkFinding:
    """The batch after which the target stopped answering, with everything needed to replay it."""

    seed: int
    batch: int
    whip_url: str
    reason: str
    mutations: list[MutatedDatagram]
    replay: str
    report: Path | None = None


@dataclass(slots=True)
class NetworkFuzzResult:
    batches_run: int = 0
    datagrams_sent: int = 0
    sanity_checks: int = 0
    finding: NetworkFinding | None = None
    unreachable: str | None = None
    """Set when the target failed the sanity conversation before any mutation was sent."""


async def mutate_live(
    whip_url: str,
    *,
    batches: int = 20,
    batch_size: int = 50,
    seed: int = 0,
    only_batch: int | None = None,
    batch_timeout: float = 30.0,
    report_dir: Path = Path("reports/fuzz/network"),
    progress: Callable[[str], object] = print,
    after_send: Callable[[int], object] | None = None,
) -> NetworkFuzzResult:
    """Fuzz `batches` batches of `batch_size` mutations (or only batch `only_batch`), stop at the first finding.

    `after_send(batch)` runs after a batch's datagrams are sent and before its sanity
    conversation (tests use it to take a target down).
    """
    result = NetworkFuzzResult()
    reason = await _sanity(whip_url)
    result.sanity_checks += 1
    if reason is not None:
        result.unreachable = reason
        progress(f"target unreachable before fuzzing: {reason}")
        return result
    numbers = [only_batch] if only_batch is not None else range(batches)
    for number in numbers:
        rng = random.Random(seed + number)
        sent: list[MutatedDatagram] = []
        try:
            await asyncio.wait_for(_send_batch(whip_url, rng, batch_size, sent), batch_timeout)
            failure = None
        except _FAILURES as exc:
            failure = f"batch session failed: {exc or type(exc).__name__}"
        result.datagrams_sent += sum(len(m.datagrams) for m in sent)
        result.batches_run += 1
        if after_send is not None:
            after_send(number)
        reason = await _sanity(whip_url)
        result.sanity_checks += 1
        if reason is not None:
            reason = reason if failure is None else f"{failure}; then {reason}"
            finding = NetworkFinding(
                seed=seed, batch=number, whip_url=whip_url, reason=reason, mutations=sent,
                replay=f"rtcgate fuzz --whip {whip_url} --seed {seed} --only-batch {number} --batch-size {batch_size}",
            )
            finding.report = _write_finding(finding, report_dir)
            result.finding = finding
            progress(f"batch {number}: target stopped answering ({reason}); reproducer {finding.report}")
            return result
        progress(f"batch {number}: {len(sent)} mutations sent, target alive"
                 + (f" ({failure})" if failure else ""))
    return result


async def _send_batch(whip_url: str, rng: random.Random, batch_size: int, sent: list[MutatedDatagram]) -> None:
    """Connect, send `batch_size` mutations of valid in-session datagrams, close. `sent` fills as they go."""
    connection = await connect_whip(whip_url, timeout=CONNECT_TIMEOUT)
    try:
        for index in range(batch_size):
            layer = LAYERS[index % len(LAYERS)]
            mutation = mutators.mutate(_valid_datagram(connection, layer, index), rng)
            sent.append(MutatedDatagram(layer, mutation.description, [d.hex() for d in mutation.datagrams]))
            for datagram in mutation.datagrams:
                connection.send_raw(datagram)
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)  # let the target take in the batch before the session goes
    finally:
        with contextlib.suppress(*_FAILURES):
            await connection.close()


def _valid_datagram(connection: PeerConnection, layer: str, index: int) -> bytes:
    """A datagram the target would accept in this session, before mutation."""
    peer = connection.peer
    if layer == "stun":
        return peer.binding_request()
    if layer == "srtp":
        header = struct.pack("!BBHII", 0x80, peer.audio_pt, (1000 + index) & 0xFFFF, 160 * index, peer.ssrc)
        return peer.protect_rtp(header + bytes(range(40)))
    if layer == "srtcp":
        receiver_report = struct.pack("!BBHI", 0x80, 201, 1, peer.ssrc)  # RR with no report blocks
        return peer.protect_rtcp(receiver_report)
    return bytes(client_hello_flight()[0])


async def _sanity(whip_url: str) -> str | None:
    """None if a fresh session gets its RTP echoed; else why not (after one retry)."""
    reason = await _converse(whip_url)
    if reason is None:
        return None
    await asyncio.sleep(SANITY_RETRY_DELAY)
    return await _converse(whip_url)


async def _converse(whip_url: str) -> str | None:
    try:
        connection = await connect_whip(whip_url, timeout=CONNECT_TIMEOUT)
    except _FAILURES as exc:
        return f"sanity session did not connect: {exc or type(exc).__name__}"
    try:
        connection.send_rtp(b"rtcgate sanity", timestamp=0)
        await connection.wait_for(RtpReceived, SANITY_ECHO_TIMEOUT)
        return None
    except _FAILURES as exc:
        return f"sanity session got no RTP echo: {exc or type(exc).__name__}"
    finally:
        with contextlib.suppress(*_FAILURES):
            await connection.close()


def _write_finding(finding: NetworkFinding, report_dir: Path) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"finding-{finding.batch}.json"
    record = asdict(finding)
    record.pop("report")
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
