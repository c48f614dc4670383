from reference_server.reception import ReceptionStats


def feed(stats, sequences, ssrc=0x1234, start=0.0):
    for i, seq in enumerate(sequences):
        stats.update(ssrc, seq & 0xFFFF, (i * 960) & 0xFFFFFFFF, start + i * 0.02)


def test_no_loss_no_jitter_on_a_perfect_stream():
    stats = ReceptionStats()
    feed(stats, range(100, 200))
    block = stats.report_block(now=2.0)
    assert block.packets_lost == 0 and block.fraction_lost == 0
    assert block.highest_sequence == 199
    assert block.jitter == 0


def test_loss_is_counted_and_fraction_is_per_interval():
    stats = ReceptionStats()
    feed(stats, [s for s in range(0, 100) if s % 10 != 0])  # 10 of 100 lost (0 is never seen: base is 1)
    block = stats.report_block(now=2.0)
    assert block.packets_lost == 9  # 2..99 expected after base 1, 9 missing
    assert block.fraction_lost == (9 << 8) // 99
    feed(stats, range(100, 150), start=3.0)
    assert stats.report_block(now=4.0).fraction_lost == 0


def test_sequence_wrap_extends_the_highest_sequence():
    stats = ReceptionStats()
    feed(stats, range(65530, 65546))
    block = stats.report_block(now=1.0)
    assert block.highest_sequence == (1 << 16) + 9
    assert block.packets_lost == 0


def test_reordering_is_not_loss_and_duplicates_count_negative():
    stats = ReceptionStats()
    feed(stats, [1, 3, 2, 4, 4])
    assert stats.report_block(now=1.0).packets_lost == -1


def test_jitter_grows_with_irregular_arrival():
    stats = ReceptionStats()
    for i in range(50):
        stats.update(1, i, i * 960, i * 0.02 + (0.01 if i % 2 else 0))
    assert stats.report_block(now=1.0).jitter > 100


def test_delay_since_last_sr_in_1_65536_seconds():
    stats = ReceptionStats()
    feed(stats, range(10))
    stats.on_sender_report(0x0001_2345_6789_0000, now=1.0)
    block = stats.report_block(now=1.5)
    assert block.last_sr == 0x2345_6789
    assert block.delay_since_last_sr == 32768
