from __future__ import annotations

import json

import pytest

from toolkit.load.accounting import (
    LatencySummary,
    LoadError,
    Probe,
    StreamStats,
    aggregate,
    cdf_points,
    decode_probe,
    encode_probe,
    summarize,
)

MS = 1_000_000
TIMEOUT = 100 * MS


def sent_at(seq: int) -> int:
    """The synthetic sender: one probe every 20 ms."""
    return seq * 20 * MS


def synthetic_stream() -> StreamStats:
    """20 probes sent; 4, 11 and 12 never come back; 6 and 9 arrive after a higher seq; 9 twice;
    15 after 110 ms (late); 16–20 were sent within the loss timeout of closing."""
    stats = StreamStats(loss_timeout_ns=TIMEOUT)
    for seq in range(1, 21):
        stats.on_sent(seq, sent_at(seq))
    arrivals = [(1, 5), (2, 5), (3, 6), (5, 5), (7, 8), (6, 9), (8, 5), (10, 5), (9, 7), (9, 30),
                (13, 5), (14, 5), (15, 110)]
    for seq, rtt_ms in arrivals:
        stats.on_received(seq, sent_at(seq), sent_at(seq) + rtt_ms * MS)
    stats.close(420 * MS)
    return stats


def test_synthetic_stream_counts():
    stats = synthetic_stream()
    assert (stats.sent, stats.received, stats.lost, stats.in_flight_at_close) == (20, 12, 3, 5)
    assert (stats.reordered, stats.duplicates, stats.late, stats.unexpected) == (2, 1, 1, 0)
    assert stats.loss_ratio == pytest.approx(3 / 15)


def test_rtts_are_unique_arrivals_in_arrival_order():
    stats = synthetic_stream()
    assert list(stats.rtts_ns) == [r * MS for r in (5, 5, 6, 5, 8, 9, 5, 5, 7, 5, 5, 110)]


def test_loss_timeout_boundary_at_close():
    stats = StreamStats(loss_timeout_ns=TIMEOUT)
    stats.on_sent(1, 0)
    stats.on_sent(2, 1)
    stats.close(TIMEOUT + 1)  # probe 1 is older than the timeout, probe 2 exactly as old
    assert (stats.lost, stats.in_flight_at_close) == (1, 1)


def test_late_is_strictly_past_the_timeout():
    stats = StreamStats(loss_timeout_ns=TIMEOUT)
    stats.on_sent(1, 0)
    stats.on_sent(2, 0)
    stats.on_received(1, 0, TIMEOUT)
    stats.on_received(2, 0, TIMEOUT + 1)
    stats.close(TIMEOUT + 1)
    assert (stats.received, stats.late, stats.lost) == (2, 1, 0)


def test_sends_older_than_the_timeout_before_a_long_stream_ends_are_lost():
    stats = StreamStats(loss_timeout_ns=200 * MS)
    for seq in range(1000):
        stats.on_sent(seq, sent_at(seq))
        if seq % 10:
            stats.on_received(seq, sent_at(seq), sent_at(seq) + 3 * MS)
    stats.close(sent_at(999) + 1)
    # every tenth probe is unanswered; 990 is the only one of them within 200 ms of closing
    assert (stats.lost, stats.in_flight_at_close, stats.received) == (99, 1, 900)


def test_echoes_matching_no_probe_are_unexpected():
    stats = StreamStats(loss_timeout_ns=TIMEOUT)
    stats.on_sent(10, 0)
    stats.on_sent(12, 40 * MS)  # 11 was never sent
    stats.on_received(9, 0, MS)
    stats.on_received(11, 20 * MS, 21 * MS)
    stats.on_received(13, 60 * MS, 61 * MS)
    stats.on_received(12, 40 * MS, 39 * MS)  # sent after it arrived
    assert (stats.unexpected, stats.received, stats.duplicates) == (4, 0, 0)
    stats.on_received(12, 40 * MS, 41 * MS)
    assert (stats.received, list(stats.rtts_ns)) == (1, [MS])


def test_echoes_after_close_are_ignored():
    stats = StreamStats(loss_timeout_ns=TIMEOUT)
    stats.on_sent(1, 0)
    stats.close(10 * MS)
    stats.on_received(1, 0, 11 * MS)
    assert (stats.received, stats.in_flight_at_close, stats.unexpected) == (0, 1, 0)


def test_jitter_follows_rfc3550_estimator():
    stats = StreamStats()
    rtts_ms = [10, 14, 12, 12, 20, 20]  # |D| = 4, 2, 0, 8, 0
    for seq, rtt in enumerate(rtts_ms):
        stats.on_sent(seq, seq * 20 * MS)
        stats.on_received(seq, seq * 20 * MS, seq * 20 * MS + rtt * MS)
    stats.on_received(3, 60 * MS, 60 * MS + 500 * MS)  # a duplicate moves nothing
    # J: 0.25, 0.359375, 0.3369140625, 0.81585693359375, then 15/16 of that
    assert stats.jitter_max_ns == pytest.approx(0.81585693359375 * MS)
    assert stats.jitter_ns == pytest.approx(0.81585693359375 * 15 / 16 * MS)


def test_one_rtt_has_no_jitter():
    stats = StreamStats()
    stats.on_sent(1, 0)
    stats.on_received(1, 0, 7 * MS)
    assert (stats.jitter_ns, stats.jitter_max_ns) == (0.0, 0.0)


@pytest.mark.parametrize("calls, message", [
    ([("sent", 5, 0), ("sent", 5, 1)], "probe 5 sent after probe 5: seqs must increase"),
    ([("sent", 5, 10), ("sent", 6, 9)], "probe 6 sent at 9 ns, before probe 5 at 10 ns"),
    ([("sent", 0, 0), ("sent", 1 << 21, 1)], "probe 2097152 jumps 2097152 past probe 0; at most 1048576 allowed"),
    ([("close", 0), ("sent", 1, 1)], "probe 1 sent on a closed stream"),
    ([("close", 0), ("close", 0)], "stream closed twice"),
    ([("sent", 1, 50), ("close", 49)], "stream closed at 49 ns, before its last send at 50 ns"),
])
def test_misuse_is_refused(calls, message):
    stats = StreamStats()
    with pytest.raises(LoadError) as caught:
        for name, *args in calls:
            stats.on_sent(*args) if name == "sent" else stats.close(*args)
    assert str(caught.value) == message


def test_loss_timeout_must_be_positive():
    with pytest.raises(LoadError, match="^loss timeout must be a positive number of ns, not 0$"):
        StreamStats(loss_timeout_ns=0)


def test_probe_round_trip():
    payload = encode_probe(7, 2**40 + 3, 123_456_789_012)
    assert len(payload) == 160 and payload.startswith(b"RTCL")
    assert decode_probe(payload) == Probe(session=7, seq=2**40 + 3, sent_ns=123_456_789_012)
    assert encode_probe(7, 1, 2, size=24)[4:8] == (7).to_bytes(4, "big")
    assert len(encode_probe(0, 0, 0, size=1200)) == 1200


def test_probe_size_and_fields_are_checked():
    with pytest.raises(LoadError, match="^probe size 23 is below the 24-byte probe header$"):
        encode_probe(1, 1, 1, size=23)
    with pytest.raises(LoadError, match=r"^probe fields out of range: session 4294967296 \(u32\)"):
        encode_probe(2**32, 1, 1)


@pytest.mark.parametrize("payload", [b"", b"RTCL" + bytes(19), b"RTCX" + bytes(156), bytes(160)])
def test_decode_rejects_what_is_not_a_probe(payload):
    assert decode_probe(payload) is None


def test_summarize_uses_nearest_rank():
    summary = summarize([v * MS for v in range(100, 0, -1)])
    assert summary == LatencySummary(count=100, mean=50.5, p50=50.0, p90=90.0, p99=99.0, p999=100.0, max=100.0)
    # nearest rank of 10 samples: p50 the 5th, p90 the 9th, p99 and p99.9 the 10th (ceil(9.9), ceil(9.99))
    ten = summarize([v * MS for v in (7, 3, 9, 1, 5, 2, 10, 4, 8, 6)])
    assert (ten.p50, ten.p90, ten.p99, ten.p999) == (5.0, 9.0, 10.0, 10.0)


def test_summarize_edge_cases():
    assert summarize([]) == LatencySummary(count=0)
    assert summarize([]).to_dict() == {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None,
                                       "p999": None, "max": None}
    assert summarize([2_500_000]).to_dict() == {"count": 1, "mean": 2.5, "p50": 2.5, "p90": 2.5, "p99": 2.5,
                                                "p999": 2.5, "max": 2.5}


def test_cdf_points_small_and_with_ties():
    assert cdf_points([3 * MS, 1 * MS, 2 * MS, 2 * MS]) == [(1.0, 0.25), (2.0, 0.75), (3.0, 1.0)]
    assert cdf_points([5 * MS] * 500 + [7 * MS], max_points=3) == [(5.0, 500 / 501), (7.0, 1.0)]
    assert cdf_points([]) == []


def test_cdf_points_downsample_keeps_both_ends():
    points = cdf_points([v * MS for v in range(1000, 0, -1)], max_points=200)
    assert len(points) == 200
    assert points[0] == (1.0, 0.001) and points[-1] == (1000.0, 1.0)
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(points, points[1:]))


def test_cdf_needs_two_points():
    with pytest.raises(LoadError, match="^a CDF needs at least 2 points, not 1$"):
        cdf_points([1], max_points=1)


def test_aggregate_sums_closed_streams():
    quiet = StreamStats()
    for seq in range(4):
        quiet.on_sent(seq, seq * 20 * MS)
        quiet.on_received(seq, seq * 20 * MS, seq * 20 * MS + (2 + seq) * MS)
    quiet.close(2_000 * MS)
    lonely = StreamStats()
    lonely.on_sent(0, 0)
    lonely.on_received(0, 0, 9 * MS)
    lonely.close(2_000 * MS)
    summary = aggregate([synthetic_stream(), quiet, lonely])
    assert (summary.sessions, summary.sent, summary.received, summary.lost) == (3, 25, 17, 3)
    assert (summary.reordered, summary.duplicates, summary.late, summary.in_flight_at_close) == (2, 1, 1, 5)
    assert summary.loss_ratio == pytest.approx(3 / 20)
    assert summary.worst_session_loss == pytest.approx(3 / 15)
    assert summary.rtt.count == 17 and summary.rtt.max == 110.0 and summary.rtt.p50 == 5.0
    assert summary.jitter.count == 2  # the one-probe stream has no jitter
    assert summary.jitter.max == pytest.approx(max(quiet.jitter_ns, synthetic_stream().jitter_ns) / MS)
    document = json.loads(json.dumps(summary.to_dict()))
    assert document["rtt"]["count"] == 17 and document["unexpected"] == 0


def test_aggregate_of_nothing_and_of_open_streams():
    empty = aggregate([])
    assert (empty.sessions, empty.loss_ratio, empty.worst_session_loss, empty.rtt.count) == (0, 0.0, 0.0, 0)
    with pytest.raises(LoadError, match=r"^aggregate needs closed streams: close\(now_ns\) each one first$"):
        aggregate([StreamStats()])
