"""Receiver statistics for one inbound RTP stream (RFC 3550 §6.4.1, Appendix A.3 and A.8)."""
from __future__ import annotations

from .rtp import ReportBlock

SEQUENCE_MOD = 1 << 16
MAX_DROPOUT = 3000


class ReceptionStats:
    def __init__(self, clock_rate: int = 48000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.received = 0
        self._base_sequence = 0
        self._max_sequence = 0
        self._cycles = 0
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self.last_sr_middle = 0  # middle 32 bits of the last SR's NTP timestamp
        self.last_sr_at: float | None = None

    def update(self, ssrc: int, sequence: int, timestamp: int, now: float) -> None:
        if self.ssrc != ssrc:
            self.ssrc = ssrc
            self.received = 0
            self._base_sequence = self._max_sequence = sequence
            self._cycles = 0
            self._last_transit = None
            self._expected_prior = self._received_prior = 0
        else:
            delta = (sequence - self._max_sequence) % SEQUENCE_MOD
            if 0 < delta < MAX_DROPOUT:
                if sequence < self._max_sequence:
                    self._cycles += SEQUENCE_MOD
                self._max_sequence = sequence
        self.received += 1
        transit = now * self.clock_rate - timestamp
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self._jitter += (d - self._jitter) / 16
        self._last_transit = transit

    def on_sender_report(self, ntp_timestamp: int, now: float) -> None:
        self.last_sr_middle = (ntp_timestamp >> 16) & 0xFFFFFFFF
        self.last_sr_at = now

    def report_block(self, now: float) -> ReportBlock | None:
        if self.ssrc is None:
            return None
        extended_max = self._cycles + self._max_sequence
        expected = extended_max - self._base_sequence + 1
        lost = expected - self.received
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if expected_interval > 0 and lost_interval > 0 else 0
        delay = int((now - self.last_sr_at) * 65536) if self.last_sr_at is not None else 0
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=max(min(lost, 0x7FFFFF), -0x800000),
            highest_sequence=extended_max & 0xFFFFFFFF,
            jitter=int(self._jitter),
            last_sr=self.last_sr_middle,
            delay_since_last_sr=delay & 0xFFFFFFFF,
        )
