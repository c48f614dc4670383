"""The Janus WHIP shim's SDP work for an ICE restart, without Janus: the renegotiation offer it
builds from a PATCH fragment, and the fragment it answers with."""

from __future__ import annotations

from tests.answerers.janus.whip_shim import answer_sdpfrag, restarted_offer

OFFER = "\r\n".join([
    "v=0", "o=- 42 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=ice-ufrag:oldU", "a=ice-pwd:oldpassword0123456789abcd",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", "a=setup:actpass", "a=mid:0",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=ice-ufrag:oldU", "a=ice-pwd:oldpassword0123456789abcd",
    "a=end-of-candidates", "a=mid:1", "",
])
RESTART = "a=ice-ufrag:newU\r\na=ice-pwd:newpassword0123456789abcd\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"


def test_a_restart_offer_carries_the_new_credentials_in_every_section_and_a_new_version():
    offer = restarted_offer(OFFER, RESTART)
    lines = offer.split("\r\n")
    assert "o=- 42 3 IN IP4 127.0.0.1" in lines
    assert lines.count("a=ice-ufrag:newU") == 2 and lines.count("a=ice-pwd:newpassword0123456789abcd") == 2
    assert not [line for line in lines if "oldU" in line or "oldpassword" in line or line.startswith("a=candidate:")]
    assert "a=end-of-candidates" not in lines
    assert [line for line in lines if line.startswith(("a=setup:", "a=mid:"))] == ["a=setup:actpass", "a=mid:0", "a=mid:1"]


def test_a_restart_offer_takes_the_fragments_candidates():
    offer = restarted_offer(OFFER, RESTART + "a=candidate:2 1 udp 1 127.0.0.1 6000 typ host\r\n")
    assert offer.count("a=candidate:2 1 udp 1 127.0.0.1 6000 typ host") == 2


def test_a_fragment_without_both_new_credentials_is_no_restart():
    assert restarted_offer(OFFER, "a=candidate:2 1 udp 1 127.0.0.1 6000 typ host\r\n") is None
    assert restarted_offer(OFFER, "a=ice-ufrag:newU\r\n") is None


def test_the_answer_fragment_keeps_the_ice_lines_per_media_section():
    answer = "\r\n".join([
        "v=0", "o=- 1 3 IN IP4 127.0.0.1", "a=ice-lite", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0",
        "a=ice-ufrag:jnus", "a=ice-pwd:janus-password-123456", "a=setup:active",
        "a=candidate:1 1 udp 2015363327 127.0.0.2 40000 typ host", "a=end-of-candidates", "",
    ])
    assert answer_sdpfrag(answer) == "\r\n".join([
        "a=ice-lite", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=ice-ufrag:jnus",
        "a=ice-pwd:janus-password-123456", "a=candidate:1 1 udp 2015363327 127.0.0.2 40000 typ host",
        "a=end-of-candidates", "",
    ])


def test_the_new_credentials_come_after_each_sections_connection_line():
    lines = restarted_offer(OFFER, RESTART).split("\r\n")
    audio = lines.index("m=audio 9 UDP/TLS/RTP/SAVPF 111")
    assert lines[audio + 1: audio + 4] == ["c=IN IP4 0.0.0.0", "a=ice-ufrag:newU", "a=ice-pwd:newpassword0123456789abcd"]
    application = lines.index("m=application 9 UDP/DTLS/SCTP webrtc-datachannel")
    assert lines[application + 1: application + 3] == ["a=ice-ufrag:newU", "a=ice-pwd:newpassword0123456789abcd"]
