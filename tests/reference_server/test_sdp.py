from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_server.sdp import (
    AnswerParams,
    MediaSection,
    SdpError,
    build_answer,
    build_ice_sdpfrag,
    host_candidate,
    host_candidates,
    parse_ice_sdpfrag,
    parse_offer,
)

CHROME_FINGERPRINT = ":".join(f"{b:02X}" for b in range(0x10, 0x30))
FIREFOX_FINGERPRINT = ":".join(f"{b:02X}" for b in range(0xA0, 0xC0))
SERVER_FINGERPRINT = "sha-256 " + ":".join(f"{b:02X}" for b in range(0x60, 0x80))
MDNS = "3f1b7c2e-8d4a-4b6f-9e0c-5a7d2b8f1c63.local"

# Chromium repeats the transport (its candidate, ICE credentials, fingerprint and role) in each
# bundled m-section.
CHROMIUM_TRANSPORT = f"""a=candidate:2999745851 1 udp 2122260223 {MDNS} 54400 typ host generation 0 network-id 1
a=ice-ufrag:Yx3q
a=ice-pwd:Q9x0Vh3kF2mN7pR1sT4uW6zA
a=ice-options:trickle
a=fingerprint:sha-256 {CHROME_FINGERPRINT}
a=setup:actpass"""

# Chromium 12x, audio transceiver + data channel, after gathering (as a WHIP client sends it).
CHROMIUM_OFFER = f"""v=0
o=- 4215775240449105457 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS 5f3b2a1e-9c4d-4e8f-a1b2-c3d4e5f60718
m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
{CHROMIUM_TRANSPORT}
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:5f3b2a1e-9c4d-4e8f-a1b2-c3d4e5f60718 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3735928559 cname:k3J9sd8F2lQpZx1B
a=ssrc:3735928559 msid:5f3b2a1e-9c4d-4e8f-a1b2-c3d4e5f60718 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
m=application 54400 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
{CHROMIUM_TRANSPORT}
a=mid:1
a=sctp-port:5000
a=max-message-size:262144
""".replace("\n", "\r\n")

# Firefox ESR: session-level fingerprint and ice-options, media-level credentials, opus/109.
FIREFOX_OFFER = f"""v=0
o=mozilla...THIS_IS_SDPARTA-128.5.0 6284627340893421866 0 IN IP4 0.0.0.0
s=-
t=0 0
a=fingerprint:sha-256 {FIREFOX_FINGERPRINT}
a=group:BUNDLE 0 1
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 0.0.0.0
a=sendrecv
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:101 0-15
a=ice-pwd:8a4e0b2c1f6d3e9a7b5c4d2e1f0a9b8c
a=ice-ufrag:5d2f9a1c
a=mid:0
a=msid:{{e1d6a5c4-3b2a-4f19-8e7d-6c5b4a392817}} {{0f1e2d3c-4b5a-4697-8877-665544332211}}
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000/1
a=setup:actpass
a=ssrc:2871532601 cname:{{7c3b9e21-4d5f-4a8b-9c6e-1f2a3b4c5d6e}}
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=sendrecv
a=ice-pwd:8a4e0b2c1f6d3e9a7b5c4d2e1f0a9b8c
a=ice-ufrag:5d2f9a1c
a=mid:1
a=setup:actpass
a=sctp-port:5000
a=max-message-size:1073741823
""".replace("\n", "\r\n")

PARAMS = AnswerParams(ice_ufrag="srv1abcdefgh", ice_pwd="pwd4567890123456789012345", fingerprint=SERVER_FINGERPRINT,
                      address="192.0.2.10", port=3478, session_id=1234567890)
SERVER_TRANSPORT = (
    "a=ice-ufrag:srv1abcdefgh\r\na=ice-pwd:pwd4567890123456789012345\r\n"
    f"a=fingerprint:{SERVER_FINGERPRINT}\r\na=setup:passive\r\n"
)
SERVER_CANDIDATE = "a=candidate:1 1 udp 2130706431 192.0.2.10 3478 typ host\r\na=end-of-candidates\r\n"


def accepted(**changes: object) -> AnswerParams:
    values = {name: getattr(PARAMS, name) for name in PARAMS.__slots__}
    values.update(changes)
    return AnswerParams(**values)


def lines_of(sdp: str) -> list[str]:
    assert sdp.endswith("\r\n")
    assert "\n" not in sdp.replace("\r\n", "")
    return sdp[:-2].split("\r\n")


def sections(sdp: str) -> list[list[str]]:
    """The answer split at m-lines: [session, media 1, media 2, ...]."""
    result: list[list[str]] = [[]]
    for line in lines_of(sdp):
        if line.startswith("m="):
            result.append([])
        result[-1].append(line)
    return result


# --- parsing real offers -------------------------------------------------------------------


def test_parse_chromium_offer() -> None:
    offer = parse_offer(CHROMIUM_OFFER)
    assert (offer.ice_ufrag, offer.ice_pwd, offer.ice_options) == ("Yx3q", "Q9x0Vh3kF2mN7pR1sT4uW6zA", ["trickle"])
    assert offer.fingerprints == [("sha-256", CHROME_FINGERPRINT)]
    assert offer.setup == "actpass"
    assert (offer.audio_mid, offer.opus_payload_type, offer.opus_fmtp) == ("0", 111, "minptime=10;useinbandfec=1")
    assert offer.audio_direction == "sendrecv"
    assert (offer.datachannel_mid, offer.sctp_port, offer.max_message_size) == ("1", 5000, 262144)
    assert offer.bundle == ["0", "1"]
    assert offer.candidates == [f"2999745851 1 udp 2122260223 {MDNS} 54400 typ host generation 0 network-id 1"] * 2
    audio, application = offer.media
    assert audio.kind == "audio" and audio.port == 54400 and audio.proto == "UDP/TLS/RTP/SAVPF"
    assert audio.formats == ["111", "63", "9", "0", "8", "13", "110", "126"]
    assert audio.attributes[:2] == [("rtcp", "9 IN IP4 0.0.0.0"), ("candidate", offer.candidates[0])]
    assert ("rtcp-mux", None) in audio.attributes
    assert application == MediaSection(
        kind="application", port=54400, proto="UDP/DTLS/SCTP", formats=["webrtc-datachannel"], mid="1",
        direction="sendrecv", attributes=application.attributes,
    )
    assert application.attributes[-2:] == [("sctp-port", "5000"), ("max-message-size", "262144")]


def test_parse_firefox_offer() -> None:
    offer = parse_offer(FIREFOX_OFFER)
    assert (offer.ice_ufrag, offer.ice_pwd) == ("5d2f9a1c", "8a4e0b2c1f6d3e9a7b5c4d2e1f0a9b8c")
    assert offer.ice_options == ["trickle"]
    assert offer.fingerprints == [("sha-256", FIREFOX_FINGERPRINT)]
    assert offer.setup == "actpass"
    assert (offer.audio_mid, offer.opus_payload_type) == ("0", 109)
    assert offer.opus_fmtp == "maxplaybackrate=48000;stereo=1;useinbandfec=1"
    assert (offer.datachannel_mid, offer.sctp_port, offer.max_message_size) == ("1", 5000, 1073741823)
    assert offer.bundle == ["0", "1"]
    assert offer.candidates == []


def test_bare_newlines_parse_the_same_as_crlf() -> None:
    assert parse_offer(CHROMIUM_OFFER.replace("\r\n", "\n")) == parse_offer(CHROMIUM_OFFER)


# --- answers -------------------------------------------------------------------------------


def test_answer_to_chromium_offer_exactly() -> None:
    answer = build_answer(parse_offer(CHROMIUM_OFFER), accepted(accept_datachannel=True))
    assert answer == (
        "v=0\r\no=- 1234567890 2 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n"
        "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS *\r\n"
        "m=audio 3478 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 192.0.2.10\r\n" + SERVER_TRANSPORT
        + "a=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n" + SERVER_CANDIDATE
        + "m=application 3478 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 192.0.2.10\r\n" + SERVER_TRANSPORT
        + "a=mid:1\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
    )


def test_answer_parses_in_aiortc_as_lite_passive_with_one_candidate() -> None:
    answer = build_answer(parse_offer(CHROMIUM_OFFER), accepted(accept_datachannel=True))
    description = aiortc_sdp.SessionDescription.parse(answer)
    audio, application = description.media
    assert audio.ice.iceLite and audio.dtls.role == "server"
    assert [c.ip for c in audio.ice_candidates] == ["192.0.2.10"] and audio.ice_candidates_complete
    assert [codec.mimeType for codec in audio.rtp.codecs] == ["audio/opus"]
    assert application.sctp_port == 5000 and application.sctpCapabilities.maxMessageSize == 262144


def test_answer_to_firefox_offer_keeps_its_opus_parameters() -> None:
    answer = build_answer(parse_offer(FIREFOX_OFFER), accepted(accept_datachannel=True))
    audio = sections(answer)[1]
    assert audio[0] == "m=audio 3478 UDP/TLS/RTP/SAVPF 109"
    assert "a=rtpmap:109 opus/48000/2" in audio
    assert "a=fmtp:109 minptime=10;useinbandfec=1;maxplaybackrate=48000;stereo=1" in audio
    assert "a=max-message-size:262144" in sections(answer)[2]


def test_datachannel_rejected_unless_accepted() -> None:
    answer = build_answer(parse_offer(CHROMIUM_OFFER), PARAMS)
    session, audio, application = sections(answer)
    assert "a=group:BUNDLE 0" in session
    assert application[0] == "m=application 0 UDP/DTLS/SCTP webrtc-datachannel"
    assert "a=mid:1" in application
    assert not any(line.startswith(("a=sctp-port", "a=candidate", "a=max-message-size")) for line in application)


def test_datachannel_uses_the_configured_sctp_port_and_message_size() -> None:
    answer = build_answer(parse_offer(CHROMIUM_OFFER),
                          accepted(accept_datachannel=True, sctp_port=5001, max_message_size=65536))
    assert sections(answer)[2][-2:] == ["a=sctp-port:5001", "a=max-message-size:65536"]


def chrome_offer_with_video_and_second_audio() -> str:
    video = (
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Yx3q\r\n"
        "a=ice-pwd:Q9x0Vh3kF2mN7pR1sT4uW6zA\r\na=setup:actpass\r\na=mid:2\r\na=recvonly\r\na=rtcp-mux\r\n"
        "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    )
    audio = (
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:3\r\na=sendrecv\r\na=rtcp-mux\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
    )
    return CHROMIUM_OFFER.replace("BUNDLE 0 1", "BUNDLE 0 1 2 3") + video + audio


def test_other_media_sections_are_rejected_in_place() -> None:
    offer = parse_offer(chrome_offer_with_video_and_second_audio())
    answer = build_answer(offer, accepted(accept_datachannel=True))
    session, audio, application, video, second_audio = sections(answer)
    assert "a=group:BUNDLE 0 1" in session
    assert audio[0].startswith("m=audio 3478 ") and application[0].startswith("m=application 3478 ")
    assert video[0] == "m=video 0 UDP/TLS/RTP/SAVPF 96 97"
    assert second_audio[0] == "m=audio 0 UDP/TLS/RTP/SAVPF 111"
    for rejected, mid in ((video, "a=mid:2"), (second_audio, "a=mid:3")):
        assert mid in rejected and "a=inactive" in rejected
        assert not any(line.startswith(("a=candidate", "a=rtpmap", "a=fmtp")) for line in rejected)
    description = aiortc_sdp.SessionDescription.parse(answer)
    assert [(m.kind, m.port, m.rtp.muxId) for m in description.media] == [
        ("audio", 3478, "0"), ("application", 3478, "1"), ("video", 0, "2"), ("audio", 0, "3")]


def test_without_bundle_every_accepted_section_gets_credentials_and_candidate() -> None:
    offer = parse_offer(CHROMIUM_OFFER.replace("a=group:BUNDLE 0 1\r\n", ""))
    assert offer.bundle == []
    answer = build_answer(offer, accepted(accept_datachannel=True))
    session, audio, application = sections(answer)
    assert not any(line.startswith("a=group") for line in session)
    for section in (audio, application):
        assert "a=ice-ufrag:srv1abcdefgh" in section and "a=setup:passive" in section
        assert section[-2:] == SERVER_CANDIDATE[:-2].split("\r\n")


def test_with_bundle_only_the_tagged_section_carries_the_candidate() -> None:
    answer = build_answer(parse_offer(CHROMIUM_OFFER), accepted(accept_datachannel=True))
    _, audio, application = sections(answer)
    assert any(line.startswith("a=candidate:") for line in audio)
    assert not any(line.startswith("a=candidate:") for line in application)


def test_bundle_order_follows_the_offer_group() -> None:
    offer = parse_offer(CHROMIUM_OFFER.replace("BUNDLE 0 1", "BUNDLE 1 0"))
    answer = build_answer(offer, accepted(accept_datachannel=True))
    session, audio, application = sections(answer)
    assert "a=group:BUNDLE 1 0" in session
    assert any(line.startswith("a=candidate:") for line in application)
    assert not any(line.startswith("a=candidate:") for line in audio)


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("sendrecv", "sendrecv"), ("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
def test_direction_is_answered(offered: str, answered: str) -> None:
    offer = parse_offer(CHROMIUM_OFFER.replace("a=sendrecv", f"a={offered}"))
    assert offer.audio_direction == offered
    audio = sections(build_answer(offer, PARAMS))[1]
    assert f"a={answered}" in audio
    assert sum(line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive") for line in audio) == 1


def test_session_level_direction_applies_when_the_section_has_none() -> None:
    text = CHROMIUM_OFFER.replace("a=sendrecv\r\n", "").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    assert parse_offer(text).audio_direction == "sendonly"


def test_media_level_credentials_win_over_session_level() -> None:
    text = FIREFOX_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=ice-ufrag:sess\r\na=ice-pwd:sessionpasswordsessionpw\r\n")
    offer = parse_offer(text)
    assert (offer.ice_ufrag, offer.ice_pwd) == ("5d2f9a1c", "8a4e0b2c1f6d3e9a7b5c4d2e1f0a9b8c")
    text = FIREFOX_OFFER.replace(f"a=fingerprint:sha-256 {FIREFOX_FINGERPRINT}\r\n", "")
    text = text.replace("a=setup:actpass\r\na=ssrc", "a=setup:actpass\r\na=fingerprint:SHA-1 AA:BB\r\na=ssrc")
    assert parse_offer(text).fingerprints == [("sha-1", "AA:BB")]


def test_session_level_credentials_are_used_when_media_has_none() -> None:
    text = "".join(line for line in FIREFOX_OFFER.splitlines(True) if not line.startswith(("a=ice-ufrag", "a=ice-pwd")))
    text = text.replace("t=0 0\r\n", "t=0 0\r\na=ice-ufrag:sess\r\na=ice-pwd:sessionpasswordsessionpw\r\n")
    offer = parse_offer(text)
    assert (offer.ice_ufrag, offer.ice_pwd) == ("sess", "sessionpasswordsessionpw")


def test_setup_active_is_accepted_and_absent_setup_means_active() -> None:
    assert parse_offer(CHROMIUM_OFFER.replace("a=setup:actpass", "a=setup:active")).setup == "active"
    assert parse_offer(CHROMIUM_OFFER.replace("a=setup:actpass\r\n", "")).setup == "active"


def test_bundle_only_audio_is_accepted() -> None:
    text = CHROMIUM_OFFER.replace("m=audio 54400", "m=audio 0").replace("a=mid:0\r\n", "a=mid:0\r\na=bundle-only\r\n")
    answer = build_answer(parse_offer(text), PARAMS)
    assert sections(answer)[1][0] == "m=audio 3478 UDP/TLS/RTP/SAVPF 111"


def test_ipv6_answer() -> None:
    answer = build_answer(parse_offer(CHROMIUM_OFFER), accepted(address="2001:db8::1"))
    lines = lines_of(answer)
    assert "o=- 1234567890 2 IN IP6 2001:db8::1" in lines
    assert "c=IN IP6 2001:db8::1" in lines
    assert "a=candidate:1 1 udp 2130706431 2001:db8::1 3478 typ host" in lines


def test_answer_address_must_be_an_ip_address() -> None:
    with pytest.raises(SdpError, match="^'example.org' is not an IP address$"):
        build_answer(parse_offer(CHROMIUM_OFFER), accepted(address="example.org"))


def test_host_candidate_priority() -> None:
    # RFC 8445 §5.1.2.1: (2^24)*126 + (2^8)*65535 + (256 - component)
    assert host_candidate("192.0.2.1", 3478) == "1 1 udp 2130706431 192.0.2.1 3478 typ host"
    assert host_candidate("2001:db8::7", 9, foundation="2", component=2) == "2 2 udp 2130706430 2001:db8::7 9 typ host"


def test_host_candidates_of_a_dual_stack_server_prefer_the_first_address() -> None:
    # Local preferences 65535 then 65534: priorities differ by 2^8; one foundation per base.
    assert host_candidates(("192.0.2.1", "2001:db8::7"), 3478) == [
        "1 1 udp 2130706431 192.0.2.1 3478 typ host",
        "2 1 udp 2130706175 2001:db8::7 3478 typ host",
    ]


def test_answer_lists_every_address_in_the_tagged_section_only() -> None:
    answer = build_answer(parse_offer(CHROMIUM_OFFER), accepted(extra_addresses=("2001:db8::10",), accept_datachannel=True))
    candidates = [line for line in lines_of(answer) if line.startswith("a=candidate:")]
    assert candidates == ["a=candidate:1 1 udp 2130706431 192.0.2.10 3478 typ host",
                          "a=candidate:2 1 udp 2130706175 2001:db8::10 3478 typ host"]
    assert answer.count("a=end-of-candidates") == 1
    assert answer.index("a=candidate:2 ") < answer.index("a=end-of-candidates") < answer.index("m=application")
    assert "c=IN IP4 192.0.2.10" in answer and "IP6" not in answer


# --- aiortc as the offerer ----------------------------------------------------------------


async def aiortc_round(accept_datachannel: bool, direction: str) -> tuple[str, str | None, list[str]]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction=direction)
        pc.createDataChannel("oai-events")
        await pc.setLocalDescription(await pc.createOffer())
        offer = parse_offer(pc.localDescription.sdp)
        answer = build_answer(offer, accepted(address="127.0.0.1", port=9, accept_datachannel=accept_datachannel))
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        remote = aiortc_sdp.SessionDescription.parse(pc.remoteDescription.sdp)
        return pc.signalingState, pc.getTransceivers()[0].currentDirection, [m.kind for m in remote.media]
    finally:
        await pc.close()


@pytest.mark.parametrize("accept_datachannel", [True, False])
@pytest.mark.parametrize("direction", ["sendrecv", "sendonly", "recvonly"])
def test_aiortc_accepts_the_answer(accept_datachannel: bool, direction: str) -> None:
    state, current_direction, kinds = asyncio.run(aiortc_round(accept_datachannel, direction))
    assert state == "stable"
    assert current_direction == direction
    assert kinds == ["audio", "application"]


# --- errors --------------------------------------------------------------------------------


def drop(prefix: str) -> str:
    return "".join(line for line in CHROMIUM_OFFER.splitlines(True) if not line.startswith(prefix))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an SDP offer: first line must be v=0"),
        ("hello\r\n", "line 1 is not of the form <letter>=<value>: 'hello'"),
        ("\r\nv=0\r\n", "not an SDP offer: first line must be v=0"),
        ("v=1\r\n", "not an SDP offer: first line must be v=0"),
        ("o=- 1 2 IN IP4 0.0.0.0\r\nv=0\r\n", "not an SDP offer: first line must be v=0"),
        ("v=0\r\nX=1\r\n", "line 2 is not of the form <letter>=<value>: 'X=1'"),
        ("v=0\r\ns = -\r\n", "line 2 is not of the form <letter>=<value>: 's = -'"),
        ("v=0\r\ns=a\rb\r\n", "line 2 contains a CR or NUL character"),
        ("v=0\r\na=\r\n", "line 2: attribute name '' is not a token"),
        ("v=0\r\na=foo bar\r\n", "line 2: attribute name 'foo bar' is not a token"),
        ("v=0\r\n" + "a=x\r\n" * 20000, "offer is 100005 bytes; the limit is 65536"),
        ("v=0\r\nm=audio 9 RTP/AVP\r\n", "line 2: m-line 'audio 9 RTP/AVP' needs <media> <port> <proto> <format>..."),
        ("v=0\r\nm=audio x UDP/TLS/RTP/SAVPF 111\r\n", "line 2: m-line port 'x' is not a number from 0 to 65535"),
        ("v=0\r\nm=audio 65536 UDP/TLS/RTP/SAVPF 111\r\n",
         "line 2: m-line port '65536' is not a number from 0 to 65535"),
        ("v=0\r\nm=audio -1 UDP/TLS/RTP/SAVPF 111\r\n", "line 2: m-line port '-1' is not a number from 0 to 65535"),
        ("v=0\r\nm=audio 9/x UDP/TLS/RTP/SAVPF 111\r\n", "line 2: m-line port '9/x' is not a number from 0 to 65535"),
        ("v=0\r\nm=audio ٩ UDP/TLS/RTP/SAVPF 111\r\n", "line 2: m-line port '٩' is not a number from 0 to 65535"),
        (CHROMIUM_OFFER.replace("m=audio", "m=video"), "offer has no audio m-line"),
        (CHROMIUM_OFFER.replace("m=audio 54400", "m=audio 0"), "offer's audio m-line is disabled (port 0)"),
        (
            CHROMIUM_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
            "offer's audio m-line uses RTP/AVP; DTLS-SRTP needs UDP/TLS/RTP/SAVPF",
        ),
        (
            CHROMIUM_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/SAVP").replace(
                "a=rtcp-mux\r\n",
                "a=rtcp-mux\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
            ),
            "offer's audio m-line uses RTP/SAVP with a=crypto (SDES keys); DTLS-SRTP needs UDP/TLS/RTP/SAVPF",
        ),
        (drop("a=rtcp-mux"), "offer's audio m-line has no a=rtcp-mux; RTP and RTCP share the one port (RFC 5761)"),
        (drop("a=fingerprint"), "offer has no a=fingerprint"),
        (drop("a=ice-ufrag"), "offer has no ICE credentials (a=ice-ufrag/a=ice-pwd)"),
        (drop("a=ice-pwd"), "offer has no ICE credentials (a=ice-ufrag/a=ice-pwd)"),
        (
            CHROMIUM_OFFER.replace("a=ice-ufrag:Yx3q", "a=ice-ufrag:Yx:q"),
            "a=ice-ufrag must be 4 to 256 characters from A-Z a-z 0-9 + / (RFC 8839)",
        ),
        (
            CHROMIUM_OFFER.replace("a=ice-ufrag:Yx3q", "a=ice-ufrag:Yx3"),
            "a=ice-ufrag must be 4 to 256 characters from A-Z a-z 0-9 + / (RFC 8839)",
        ),
        (
            CHROMIUM_OFFER.replace("a=ice-pwd:Q9x0Vh3kF2mN7pR1sT4uW6zA", "a=ice-pwd:short"),
            "a=ice-pwd must be 22 to 256 characters from A-Z a-z 0-9 + / (RFC 8839)",
        ),
        (
            CHROMIUM_OFFER.replace(f"sha-256 {CHROME_FINGERPRINT}", "sha-256"),
            "a=fingerprint 'sha-256' is not '<hash> <colon-separated hex>'",
        ),
        (
            CHROMIUM_OFFER.replace(f"sha-256 {CHROME_FINGERPRINT}", "sha-256 GG:00"),
            "a=fingerprint 'sha-256 GG:00' is not '<hash> <colon-separated hex>'",
        ),
        (
            CHROMIUM_OFFER.replace("a=setup:actpass", "a=setup:passive"),
            "offer has a=setup:passive; this server is the DTLS server (passive),"
            " so the offer must be actpass or active",
        ),
        (
            CHROMIUM_OFFER.replace("a=setup:actpass", "a=setup:holdconn"),
            "offer has a=setup:holdconn; expected actpass or active",
        ),
        (CHROMIUM_OFFER.replace("opus/48000/2", "ISAC/16000"), "offer has no Opus codec"),
        (CHROMIUM_OFFER.replace("opus/48000/2", "opus/48000"), "offer has no Opus codec"),
        (CHROMIUM_OFFER.replace(" 111 63 9", " 63 9"), "offer has no Opus codec"),
        (CHROMIUM_OFFER.replace("a=mid:1", "a=mid:0"), "two m-lines have a=mid:0"),
        (CHROMIUM_OFFER.replace("a=mid:1", "a=mid:a,b"), "a=mid value 'a,b' is not a token"),
        (CHROMIUM_OFFER.replace("BUNDLE 0 1", "BUNDLE 0 1 7"), "a=group:BUNDLE names mid '7', which no m-line has"),
        (CHROMIUM_OFFER.replace("a=sctp-port:5000", "a=sctp-port:0"), "a=sctp-port '0' is not a port number"),
        (CHROMIUM_OFFER.replace("a=sctp-port:5000", "a=sctp-port:70000"), "a=sctp-port '70000' is not a port number"),
        (
            CHROMIUM_OFFER.replace("a=max-message-size:262144", "a=max-message-size:-1"),
            "a=max-message-size '-1' is not a number",
        ),
        (
            CHROMIUM_OFFER.replace("a=extmap-allow-mixed", "a=ice-lite"),
            "offer has a=ice-lite; this ICE-lite server needs a full ICE agent on the other side",
        ),
    ],
)
def test_offer_errors_are_exact(text: str, message: str) -> None:
    with pytest.raises(SdpError) as error:
        parse_offer(text)
    assert str(error.value) == message


def test_offer_at_the_size_limit_is_accepted() -> None:
    padding = 65536 - len(CHROMIUM_OFFER.encode()) - len("a=\r\n")
    text = CHROMIUM_OFFER + "a=" + "x" * padding + "\r\n"
    assert len(text.encode()) == 65536
    assert parse_offer(text).opus_payload_type == 111
    with pytest.raises(SdpError, match="^offer is 65537 bytes; the limit is 65536$"):
        parse_offer(text + "\n")


SDP_FRAGMENTS = [
    "v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1", "a=group:", "a=group:BUNDLE",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 0 UDP/TLS/RTP/SAVPF 111",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0", "a=mid:1", "a=mid:", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2",
    "a=rtpmap:", "a=rtpmap:111", "a=fmtp:111 stereo=1", "a=fmtp:", "a=ice-ufrag:abcd", "a=ice-ufrag:",
    "a=ice-pwd:abcdefghijklmnopqrstuv", "a=fingerprint:sha-256 AB:CD", "a=fingerprint:", "a=setup:actpass",
    "a=setup:", "a=sctp-port:", "a=sctp-port:5000", "a=max-message-size:", "a=bundle-only", "a=sendonly",
    "a=candidate:", "a=ice-options:", "a=ice-lite", "", "x", "=", "a", "m=", "m=audio", "a=:",
]


@settings(max_examples=300)
@given(st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(SDP_FRAGMENTS), max_size=30).map("\r\n".join),
    st.lists(st.sampled_from(SDP_FRAGMENTS), max_size=30).map(lambda lines: "\n".join(["v=0", *lines])),
))
def test_parse_offer_raises_only_sdp_error(text: str) -> None:
    try:
        offer = parse_offer(text)
    except SdpError:
        return
    answer = build_answer(offer, PARAMS)
    assert answer.startswith("v=0\r\n")


@settings(max_examples=200)
@given(st.data())
def test_mutated_real_offers_raise_only_sdp_error(data: st.DataObject) -> None:
    lines = data.draw(st.sampled_from([CHROMIUM_OFFER, FIREFOX_OFFER])).split("\r\n")
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        cut = data.draw(st.integers(0, len(line)))
        action = data.draw(st.sampled_from(["delete", "truncate", "duplicate", "garble"]))
        if action == "delete":
            del lines[index]
        elif action == "truncate":
            lines[index] = line[:cut]
        elif action == "duplicate":
            lines.insert(index, line)
        else:
            lines[index] = line[:cut] + data.draw(st.text(max_size=8)) + line[cut:]
        if not lines:
            break
    try:
        offer = parse_offer("\r\n".join(lines))
    except SdpError:
        return
    assert build_answer(offer, accepted(accept_datachannel=True)).endswith("\r\n")


# --- trickle-ice-sdpfrag -------------------------------------------------------------------

# RFC 9725 §4.3.1-style ICE restart fragment from a WHIP client.
WHIP_RESTART_FRAGMENT = """a=ice-options:trickle ice2
a=group:BUNDLE 0 1
m=audio 9 UDP/TLS/RTP/SAVPF 111
a=mid:0
a=ice-ufrag:ysXw
a=ice-pwd:vw5LmwG4y/e6dPP/zAP9Gp5k
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1
a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2
a=end-of-candidates
""".replace("\n", "\r\n")


def test_parse_whip_restart_fragment() -> None:
    ufrag, pwd, candidates = parse_ice_sdpfrag(WHIP_RESTART_FRAGMENT)
    assert (ufrag, pwd) == ("ysXw", "vw5LmwG4y/e6dPP/zAP9Gp5k")
    assert candidates == [
        "1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1",
        "3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2",
    ]


def test_trickle_only_fragment_has_no_credentials() -> None:
    text = "a=mid:0\na=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\n"
    assert parse_ice_sdpfrag(text) == (None, None, ["1 1 udp 2122260223 192.0.2.1 61764 typ host"])
    assert parse_ice_sdpfrag("") == (None, None, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("garbage", "line 1 is not of the form <letter>=<value>: 'garbage'"),
        ("a=ice-ufrag:ab", "a=ice-ufrag must be 4 to 256 characters from A-Z a-z 0-9 + / (RFC 8839)"),
        ("a=ice-pwd:tooshort", "a=ice-pwd must be 22 to 256 characters from A-Z a-z 0-9 + / (RFC 8839)"),
        ("a=ice-ufrag:abcd\na=ice-ufrag:efgh", "sdpfrag has conflicting a=ice-ufrag or a=ice-pwd values"),
        ("a=mid:0\na=candidate:", "line 2: a=candidate has no value"),
        ("a=" + "x" * 70000, "sdpfrag is 70002 bytes; the limit is 65536"),
    ],
)
def test_sdpfrag_errors_are_exact(text: str, message: str) -> None:
    with pytest.raises(SdpError) as error:
        parse_ice_sdpfrag(text)
    assert str(error.value) == message


def test_build_ice_sdpfrag_round_trips() -> None:
    candidate = host_candidate("198.51.100.1", 39132)
    fragment = build_ice_sdpfrag("289b31b754eaa438", "0b66f472495ef0ccac7bda653ab6be49", [candidate], "0")
    assert fragment == (
        "a=ice-lite\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=ice-ufrag:289b31b754eaa438\r\n"
        "a=ice-pwd:0b66f472495ef0ccac7bda653ab6be49\r\na=candidate:1 1 udp 2130706431 198.51.100.1 39132 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    assert parse_ice_sdpfrag(fragment) == ("289b31b754eaa438", "0b66f472495ef0ccac7bda653ab6be49", [candidate])
    assert "a=mid" not in build_ice_sdpfrag("abcd", "x" * 22, [candidate], None)


@given(st.text(max_size=200))
def test_parse_ice_sdpfrag_raises_only_sdp_error(text: str) -> None:
    try:
        ufrag, pwd, candidates = parse_ice_sdpfrag(text)
    except SdpError:
        return
    assert all(candidate.strip() for candidate in candidates)
    assert ufrag is None or len(ufrag) >= 4


def test_answer_signals_the_servers_outbound_ssrc_when_it_sends():
    """Clients that route RTP only by signalled SSRC (werift) drop an unsignalled stream."""
    offer = parse_offer(CHROMIUM_OFFER)
    params = AnswerParams(ice_ufrag="abcd", ice_pwd="p" * 24, fingerprint="sha-256 " + "AB:" * 31 + "AB",
                          address="127.0.0.1", port=3478, session_id=1, audio_ssrc=0x1234ABCD)
    answer = build_answer(offer, params)
    assert "a=ssrc:305441741 cname:rtcgate" in answer and "a=msid:rtcgate audio" in answer
    recvonly = parse_offer(CHROMIUM_OFFER.replace("a=sendrecv", "a=sendonly"))
    assert "a=ssrc:" not in build_answer(recvonly, params)  # we only receive: nothing of ours to signal
