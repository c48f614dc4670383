"""What the load generator measures per session, and the words its report uses for it.

Sans-IO: no clock, no sockets. Times are integer nanoseconds from one monotonic clock, passed
in by the caller. Each probe's payload carries its session, sequence number and send time
(`encode_probe`), so the echo alone tells which probe came back and its round-trip time.

Definitions, per session stream (`StreamStats`); a scenario's figures are their sums:
- sent: probes handed to the network.
- received: distinct probes whose echo came back; a second copy is a duplicate, not received again.
- duplicates: echoes of a probe already received.
- reordered: received probes whose seq is lower than the highest seq already received.
- late: received probes whose RTT exceeded the loss timeout; they count as received too, not lost.
- lost: sent, never received, and sent more than the loss timeout before the stream closed.
- in flight at close: sent, never received, and sent at most the loss timeout before the stream
  closed: their fate is unknown, so they count neither as lost nor as received.
- unexpected: echoes that match no probe sent on this stream (a seq it never sent, or a send
  time after the arrival); counted nowhere else.
- RTT: arrival time minus the send time carried in the payload, once per received probe.
- jitter: RFC 3550 §6.4.1's estimator with the RTT as the transit time: J += (|D| − J) / 16, D the
  difference of consecutive RTTs in arrival order; a stream reports J after its last probe and
  the largest J it reached.
- loss ratio: lost / (received + lost); probes in flight at close are left out.
- percentiles: nearest rank (the smallest sample with at least p % of the samples at or below it;
  `toolkit.percentiles`, numpy's method="inverted_cdf").
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import chain

from toolkit.percentiles import nearest_rank

PROBE_MAGIC = b"RTCL"
PROBE_HEADER = struct.Struct("!4sIQQ")
"""Magic, session (u32), seq (u64), send time in ns (u64): 24 bytes, then filler."""
DEFAULT_PAYLOAD_BYTES = 160
DEFAULT_LOSS_TIMEOUT_NS = 1_000_000_000
NS_PER_MS = 1_000_000
MAX_SEQ_GAP = 1 << 20
"""Largest jump between consecutive sent seqs: the stream keeps one bit per seq in between."""
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999))

_fillers: dict[int, bytes] = {}


class LoadError(Exception):
    """Anything the load generator refuses: bad arguments, misuse of a stream, a target it cannot load."""


@dataclass(slots=True)
class Probe:
    session: int
    seq: int
    sent_ns: int


def encode_probe(session: int, seq: int, sent_ns: int, size: int = DEFAULT_PAYLOAD_BYTES) -> bytes:
    """A probe payload of exactly `size` bytes (an Opus frame is ~160)."""
    filler = _fillers.get(size)
    if filler is None:
        if size < PROBE_HEADER.size:
            raise LoadError(f"probe size {size} is below the {PROBE_HEADER.size}-byte probe header")
        filler = _fillers[size] = bytes(size - PROBE_HEADER.size)
    try:
        return PROBE_HEADER.pack(PROBE_MAGIC, session, seq, sent_ns) + filler
    except struct.error:
        raise LoadError(f"probe fields out of range: session {session} (u32), seq {seq} (u64), "
                        f"sent_ns {sent_ns} (u64)") from None


def decode_probe(payload: bytes) -> Probe | None:
    """The probe in an echoed payload, or None when the payload is not one of ours."""
    if len(payload) < PROBE_HEADER.size or not payload.startswith(PROBE_MAGIC):
        return None
    _, session, seq, sent_ns = PROBE_HEADER.unpack_from(payload)
    return Probe(session, seq, sent_ns)


class StreamStats:
    """One session's probe stream, counted by the definitions in this module's docstring.

    The sender numbers its own probes, so sends must come in increasing seq (gaps allowed) and
    non-decreasing time; echoes may come in any order and any number of times. Memory: two bits
    per seq (sent, received), 8 bytes per RTT, and the sends of the last loss timeout. `close`
    settles lost against in flight; echoes after it are ignored, as the counts are final.
    """

    __slots__ = ("loss_timeout_ns", "sent", "received", "duplicates", "reordered", "late", "unexpected",
                 "lost", "in_flight_at_close", "rtts_ns", "jitter_ns", "jitter_max_ns", "closed",
                 "_first_seq", "_last_seq", "_last_sent_ns", "_sent_bits", "_received_bits", "_recent",
                 "_highest_received", "_last_rtt")

    def __init__(self, loss_timeout_ns: int = DEFAULT_LOSS_TIMEOUT_NS) -> None:
        if loss_timeout_ns <= 0:
            raise LoadError(f"loss timeout must be a positive number of ns, not {loss_timeout_ns}")
        self.loss_timeout_ns = loss_timeout_ns
        self.sent = 0
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.unexpected = 0
        self.lost = 0
        self.in_flight_at_close = 0
        self.rtts_ns = array("q")
        """RTT of each received probe, in arrival order."""
        self.jitter_ns = 0.0
        self.jitter_max_ns = 0.0
        self.closed = False
        self._first_seq = 0
        self._last_seq: int | None = None
        self._last_sent_ns = 0
        self._sent_bits = bytearray()
        self._received_bits = bytearray()
        self._recent: deque[tuple[int, int]] = deque()
        """(seq, sent_ns) of the sends within the loss timeout of the latest one."""
        self._highest_received = -1
        self._last_rtt: int | None = None

    @property
    def loss_ratio(self) -> float:
        settled = self.received + self.lost
        return self.lost / settled if settled else 0.0

    def on_sent(self, seq: int, sent_ns: int) -> None:
        if self.closed:
            raise LoadError(f"probe {seq} sent on a closed stream")
        last = self._last_seq
        if last is None:
            self._first_seq = seq
        elif seq <= last:
            raise LoadError(f"probe {seq} sent after probe {last}: seqs must increase")
        elif seq - last > MAX_SEQ_GAP:
            raise LoadError(f"probe {seq} jumps {seq - last} past probe {last}; at most {MAX_SEQ_GAP} allowed")
        elif sent_ns < self._last_sent_ns:
            raise LoadError(f"probe {seq} sent at {sent_ns} ns, before probe {last} at {self._last_sent_ns} ns")
        index = seq - self._first_seq
        byte = index >> 3
        if byte >= len(self._sent_bits):
            grow = bytes(max(byte + 1 - len(self._sent_bits), len(self._sent_bits)))
            self._sent_bits += grow
            self._received_bits += grow
        self._sent_bits[byte] |= 1 << (index & 7)
        self._last_seq = seq
        self._last_sent_ns = sent_ns
        self.sent += 1
        recent = self._recent
        recent.append((seq, sent_ns))
        horizon = sent_ns - self.loss_timeout_ns
        while recent[0][1] < horizon:
            recent.popleft()

    def on_received(self, seq: int, sent_ns: int, received_ns: int) -> None:
        if self.closed:
            return
        rtt = received_ns - sent_ns
        last = self._last_seq
        if last is None or not self._first_seq <= seq <= last or rtt < 0:
            self.unexpected += 1
            return
        index = seq - self._first_seq
        byte, bit = index >> 3, 1 << (index & 7)
        if not self._sent_bits[byte] & bit:
            self.unexpected += 1
            return
        if self._received_bits[byte] & bit:
            self.duplicates += 1
            return
        self._received_bits[byte] |= bit
        self.received += 1
        if seq < self._highest_received:
            self.reordered += 1
        else:
            self._highest_received = seq
        if rtt > self.loss_timeout_ns:
            self.late += 1
        self.rtts_ns.append(rtt)
        if self._last_rtt is not None:
            self.jitter_ns += (abs(rtt - self._last_rtt) - self.jitter_ns) / 16
            if self.jitter_ns > self.jitter_max_ns:
                self.jitter_max_ns = self.jitter_ns
        self._last_rtt = rtt

    def close(self, now_ns: int) -> None:
        """Settle the unanswered probes: lost when older than the loss timeout, else in flight."""
        if self.closed:
            raise LoadError("stream closed twice")
        if self._last_seq is not None and now_ns < self._last_sent_ns:
            raise LoadError(f"stream closed at {now_ns} ns, before its last send at {self._last_sent_ns} ns")
        horizon = now_ns - self.loss_timeout_ns
        in_flight = 0
        for seq, sent_ns in self._recent:
            index = seq - self._first_seq
            if sent_ns >= horizon and not self._received_bits[index >> 3] & (1 << (index & 7)):
                in_flight += 1
        self.in_flight_at_close = in_flight
        self.lost = self.sent - self.received - in_flight
        self.closed = True
        self._sent_bits = bytearray()
        self._received_bits = bytearray()
        self._recent.clear()


@dataclass(slots=True)
class LatencySummary:
    """Milliseconds; every field but count is None when there were no samples."""

    count: int
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(values_ns: Iterable[float]) -> LatencySummary:
    """Count, mean, nearest-rank percentiles and max of nanosecond samples, in milliseconds."""
    values = list(values_ns)
    count = len(values)
    if not count:
        return LatencySummary(count=0)
    ranks = nearest_rank(values, *(fraction for _, fraction in PERCENTILES))
    return LatencySummary(count=count, mean=sum(values) / count / NS_PER_MS, max=max(values) / NS_PER_MS,
                          **{name: rank / NS_PER_MS for (name, _), rank in zip(PERCENTILES, ranks)})


def cdf_points(values_ns: Iterable[float], max_points: int = 200) -> list[tuple[float, float]]:
    """(ms, fraction of samples ≤ ms) at up to `max_points` evenly ranked samples, always the
    smallest and the largest; one point per distinct value. Empty for no samples."""
    if max_points < 2:
        raise LoadError(f"a CDF needs at least 2 points, not {max_points}")
    ordered = sorted(values_ns)
    count = len(ordered)
    last = count - 1
    if count <= max_points:
        picks: Iterable[int] = range(count)
    else:
        steps = max_points - 1
        picks = ((k * last + steps // 2) // steps for k in range(max_points))
    points: list[tuple[float, float]] = []
    previous = None
    for index in picks:
        value = ordered[index]
        if value != previous:
            points.append((value / NS_PER_MS, bisect_right(ordered, value) / count))
            previous = value
    return points


@dataclass(slots=True)
class MediaSummary:
    """A scenario's streams together; `jitter` summarizes each session's final jitter."""

    sessions: int
    sent: int
    received: int
    lost: int
    loss_ratio: float
    reordered: int
    duplicates: int
    late: int
    in_flight_at_close: int
    unexpected: int
    rtt: LatencySummary
    jitter: LatencySummary
    worst_session_loss: float
    """The highest loss ratio of any one session."""

    def to_dict(self) -> dict:
        return asdict(self)


def aggregate(streams: Iterable[StreamStats]) -> MediaSummary:
    """Sum closed streams; jitter counts only sessions with two RTTs or more (one has none)."""
    streams = list(streams)
    if not all(stream.closed for stream in streams):
        raise LoadError("aggregate needs closed streams: close(now_ns) each one first")
    received = sum(s.received for s in streams)
    lost = sum(s.lost for s in streams)
    return MediaSummary(
        sessions=len(streams),
        sent=sum(s.sent for s in streams),
        received=received,
        lost=lost,
        loss_ratio=lost / (received + lost) if received + lost else 0.0,
        reordered=sum(s.reordered for s in streams),
        duplicates=sum(s.duplicates for s in streams),
        late=sum(s.late for s in streams),
        in_flight_at_close=sum(s.in_flight_at_close for s in streams),
        unexpected=sum(s.unexpected for s in streams),
        rtt=summarize(chain.from_iterable(s.rtts_ns for s in streams)),
        jitter=summarize(s.jitter_ns for s in streams if s.received >= 2),
        worst_session_loss=max((s.loss_ratio for s in streams), default=0.0),
    )
