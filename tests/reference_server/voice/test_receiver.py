from __future__ import annotations

from reference_server.voice.opus import FRAME_BYTES, OpusEncoder
from reference_server.voice.receiver import AudioReceiver
from reference_server.voice.tones import tone

from .signals import frame_tones, frames


def test_reordered_lost_and_garbage_packets_still_give_continuous_audio():
    encoder = OpusEncoder()
    payloads = [encoder.encode(frame) for frame in frames(tone(440.0, 200))]
    receiver = AudioReceiver()
    order = [0, 2, 1, 3, 5, 6, 7, 8, 9]  # 4 lost, 1 and 2 swapped
    for i, seq in enumerate(order):
        receiver.receive(seq, payloads[seq], i * 0.02)
    receiver.receive(10, b"\x0b", 0.2)  # undecodable
    receiver.handle_timer(receiver.get_timer())
    pcm = receiver.pcm_ready()
    assert receiver.undecodable == 1 and receiver.last_error.startswith("undecodable Opus payload of 1 bytes")
    assert receiver.concealed == 1
    assert len(pcm) == 10 and all(len(p) == FRAME_BYTES for p in pcm)
    assert pcm[4] == bytes(FRAME_BYTES)  # the lost one, concealed as silence
    assert frame_tones(pcm[5:9]) == [450] * 4
