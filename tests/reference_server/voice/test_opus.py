from __future__ import annotations

import numpy as np
import pytest

from reference_server.voice.opus import FRAME_BYTES, OpusDecoder, OpusEncoder, OpusError
from reference_server.voice.tones import tone

from .signals import frame_tones, frames, speech_packets

LOOKAHEAD = 312  # libopus' encoder delay at 48 kHz, in samples


def test_round_trip_keeps_a_tone_one_packet_per_frame():
    encoder, decoder = OpusEncoder(), OpusDecoder()
    source = frames(tone(660.0, 400))
    packets = [encoder.encode(frame) for frame in source]
    decoded = [decoder.decode(packet) for packet in packets]
    assert all(len(pcm) == FRAME_BYTES for pcm in decoded)
    assert all(len(packet) < 200 for packet in packets)
    assert set(frame_tones(decoded[2:-2])) == {650}  # 660 Hz at 50 Hz resolution
    original = np.frombuffer(b"".join(source), dtype="<i2").astype(float)
    restored = np.frombuffer(b"".join(decoded), dtype="<i2").astype(float)[LOOKAHEAD:]
    n = len(restored) - 2000
    assert np.corrcoef(original[1000:n], restored[1000:n])[0, 1] > 0.9


def test_decodes_a_real_clients_packets():
    decoder = OpusDecoder()
    pcm = [decoder.decode(packet) for packet in speech_packets()]
    assert len(pcm) == len(speech_packets()) and all(len(p) == FRAME_BYTES for p in pcm[:-1])
    assert decoder.frames_decoded == len(pcm)


def test_the_webrtc_silence_frame_decodes_to_20_ms():
    assert OpusDecoder().decode(bytes.fromhex("f8fffe")) == bytes(FRAME_BYTES)


@pytest.mark.parametrize("payload, message", [
    (b"\x0b", "undecodable Opus payload of 1 bytes (TOC 0x0b): Invalid data found when processing input"),
    (b"\x03\x00", "undecodable Opus payload of 2 bytes (TOC 0x03): Invalid data found when processing input"),
    (b"", "empty Opus payload"),
])
def test_bad_payload_raises_one_error_and_the_decoder_goes_on(payload, message):
    decoder = OpusDecoder()
    with pytest.raises(OpusError) as info:
        decoder.decode(payload)
    assert str(info.value) == message
    assert decoder.decode(OpusEncoder().encode(tone(440.0, 20))) is not None
    assert decoder.frames_decoded == 1


def test_encoder_takes_only_20_ms_frames():
    with pytest.raises(OpusError, match="the encoder takes 20 ms frames of 1920 bytes, got 960 bytes"):
        OpusEncoder().encode(bytes(960))


def test_conceal_is_silence_of_the_asked_length():
    assert OpusDecoder.conceal(480) == bytes(960)
