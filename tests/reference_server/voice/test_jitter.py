from __future__ import annotations

from reference_server.voice.jitter import JitterBuffer, Released


def slots(buffer: JitterBuffer) -> list[tuple[int, bytes | None]]:
    return [(r.sequence, r.payload) for r in buffer.pop()]


def test_in_order_packets_pass_straight_through():
    buffer = JitterBuffer()
    for seq in (10, 11, 12):
        buffer.push(seq, bytes([seq]), 0.0)
        assert buffer.pop() == [Released(seq, bytes([seq]))]
    assert buffer.get_timer() is None


def test_reorders_within_the_wait():
    buffer = JitterBuffer(max_wait=0.06)
    buffer.push(1, b"a", 0.00)
    buffer.push(3, b"c", 0.02)
    buffer.push(2, b"b", 0.03)
    assert slots(buffer) == [(1, b"a"), (2, b"b"), (3, b"c")]
    assert buffer.stats.lost == 0


def test_a_gap_is_given_up_as_lost_after_the_wait():
    buffer = JitterBuffer(max_wait=0.06)
    buffer.push(1, b"a", 0.00)
    buffer.push(4, b"d", 0.02)
    assert slots(buffer) == [(1, b"a")]
    assert buffer.get_timer() == 0.08
    buffer.handle_timer(0.079)
    assert buffer.pop() == []
    buffer.handle_timer(0.08)
    assert slots(buffer) == [(2, None), (3, None), (4, b"d")]
    assert buffer.stats.lost == 2
    buffer.push(3, b"c", 0.09)  # too late now
    assert buffer.pop() == [] and buffer.stats.late == 1


def test_duplicates_and_late_packets_are_dropped():
    buffer = JitterBuffer()
    buffer.push(5, b"e", 0.0)
    buffer.push(7, b"g", 0.0)
    buffer.push(7, b"g", 0.0)
    buffer.push(4, b"d", 0.0)
    buffer.push(5, b"e", 0.0)
    assert buffer.stats.duplicate == 1 and buffer.stats.late == 2
    assert slots(buffer) == [(5, b"e")]


def test_sequence_numbers_wrap():
    buffer = JitterBuffer()
    buffer.push(65534, b"x", 0.0)
    buffer.push(0, b"z", 0.0)
    buffer.push(65535, b"y", 0.0)
    assert slots(buffer) == [(65534, b"x"), (65535, b"y"), (0, b"z")]


def test_never_holds_more_than_capacity():
    buffer = JitterBuffer(capacity=4, max_wait=10.0)
    buffer.push(0, b"0", 0.0)
    for seq in (2, 4, 6, 8):
        buffer.push(seq, b"%d" % seq, 0.0)
    assert slots(buffer) == [(0, b"0")]
    buffer.push(10, b"10", 0.0)  # a fifth held packet: the oldest gap is given up
    assert slots(buffer) == [(1, None), (2, b"2")]
    assert len(buffer._held) == 4 and buffer.stats.lost == 1


def test_a_far_jump_restarts_the_stream_instead_of_reporting_losses():
    buffer = JitterBuffer(max_gap=50)
    buffer.push(100, b"a", 0.0)
    buffer.push(102, b"c", 0.0)
    buffer.push(1000, b"z", 0.0)
    assert slots(buffer) == [(100, b"a"), (101, None), (102, b"c"), (1000, b"z")]
    assert buffer.stats.resynced == 1 and buffer.stats.lost == 1
