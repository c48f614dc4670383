"""Parse a WebRTC SDP offer and build the ICE-lite, DTLS-passive answer to it.

RFC 8866 (SDP), RFC 8829 (JSEP), RFC 8839 (ICE in SDP), RFC 8842 (DTLS setup), RFC 8841
(data channels), RFC 8843 (BUNDLE), RFC 8840 (trickle-ice-sdpfrag), RFC 7587 (Opus).
SdpError messages go to HTTP clients verbatim in 400 responses, so each names exactly what
is wrong with the offer. The parser takes arbitrary text and raises nothing but SdpError.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_SDP_SIZE = 65536  # bytes, for offers and sdpfrags alike

DTLS_SRTP_PROTOS = ("UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP")
DATACHANNEL_PROTO = "UDP/DTLS/SCTP"
DATACHANNEL_FORMAT = "webrtc-datachannel"
DEFAULT_SCTP_PORT = 5000  # RFC 8841 §5.2.1: the port when a=sctp-port is absent

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
OPUS_ANSWER_FMTP = (("minptime", "10"), ("useinbandfec", "1"))

HOST_TYPE_PREFERENCE = 126  # RFC 8445 §5.1.2.2
HOST_LOCAL_PREFERENCE = 65535  # RFC 8445 §5.1.2.1: a single address

_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+")  # RFC 8866 token
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+")
_PORT = re.compile(r"([0-9]{1,5})(?:/[0-9]{1,5})?")
_NUMBER = re.compile(r"[0-9]{1,19}")
_PAYLOAD_TYPE = re.compile(r"[0-9]{1,3}")


class SdpError(Exception):
    """An offer or sdpfrag cannot be parsed or answered; the message says why."""


@dataclass(slots=True)
class MediaSection:
    kind: str
    port: int
    proto: str
    formats: list[str]
    mid: str | None
    direction: str
    attributes: list[tuple[str, str | None]]  # the section's a= lines, in order


@dataclass(slots=True)
class Offer:
    ice_ufrag: str
    ice_pwd: str
    ice_options: list[str]
    fingerprints: list[tuple[str, str]]  # (algorithm lowercased, hex value as given)
    setup: str  # actpass or active
    audio_mid: str | None
    opus_payload_type: int
    opus_fmtp: str | None
    audio_direction: str
    datachannel_mid: str | None
    sctp_port: int | None
    max_message_size: int | None
    bundle: list[str]
    media: list[MediaSection]
    candidates: list[str]  # raw a=candidate values


@dataclass(slots=True)
class AnswerParams:
    ice_ufrag: str
    ice_pwd: str
    fingerprint: str  # "sha-256 AB:CD:..."
    address: str
    port: int
    session_id: int
    accept_datachannel: bool = False
    sctp_port: int = 5000
    max_message_size: int = 262144
    audio_ssrc: int | None = None  # the server's outbound stream, signalled so SSRC-routing clients (werift) accept it
    cname: str = "rtcgate"


# --- lines -------------------------------------------------------------------------------


def _lines(text: str, what: str) -> list[tuple[int, str, str]]:
    """Split SDP text into (line number, type letter, value); \\r\\n or \\n, blank lines skipped."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SDP_SIZE:
        raise SdpError(f"{what} is {size} bytes; the limit is {MAX_SDP_SIZE}")
    lines = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if "\r" in line or "\0" in line:
            raise SdpError(f"line {number} contains a CR or NUL character")
        if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
            raise SdpError(f"line {number} is not of the form <letter>=<value>: {line[:40]!r}")
        lines.append((number, line[0], line[2:]))
    return lines


def _attribute(number: int, value: str) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not _TOKEN.fullmatch(name):
        raise SdpError(f"line {number}: attribute name {name[:40]!r} is not a token")
    return name, (rest if colon else None)


def _values(attributes: list[tuple[str, str | None]], name: str) -> list[str]:
    return [value or "" for key, value in attributes if key == name]


def _has(attributes: list[tuple[str, str | None]], name: str) -> bool:
    return any(key == name for key, _ in attributes)


# --- offer -------------------------------------------------------------------------------


def parse_offer(text: str) -> Offer:
    lines = _lines(text, "offer")
    if not lines or lines[0][0] != 1 or lines[0][1:] != ("v", "0"):
        raise SdpError("not an SDP offer: first line must be v=0")
    session: list[tuple[str, str | None]] = []
    media: list[MediaSection] = []
    for number, kind, value in lines[1:]:
        if kind == "m":
            media.append(_media_line(number, value))
        elif kind == "a":
            name, attribute_value = _attribute(number, value)
            (media[-1].attributes if media else session).append((name, attribute_value))
    session_direction = _direction(session, "sendrecv")
    mids: set[str] = set()
    for section in media:
        section.direction = _direction(section.attributes, session_direction)
        section.mid = _mid(section, mids)
    if _has(session, "ice-lite"):
        raise SdpError("offer has a=ice-lite; this ICE-lite server needs a full ICE agent on the other side")

    bundle = _bundle(session, mids)
    audio = _audio_section(media)
    tagged = next((section for section in media if bundle and section.mid == bundle[0]), None)
    # Transport attributes: the audio section's own, else the BUNDLE-tagged section's, else session-level.
    levels = [section.attributes for section in (audio, tagged) if section is not None] + [session]

    def transport(name: str) -> list[str]:
        return next((values for level in levels if (values := _values(level, name))), [])

    ufrags, pwds = transport("ice-ufrag"), transport("ice-pwd")
    if not ufrags or not pwds:
        raise SdpError("offer has no ICE credentials (a=ice-ufrag/a=ice-pwd)")
    fingerprints = [_fingerprint(value) for value in transport("fingerprint")]
    if not fingerprints:
        raise SdpError("offer has no a=fingerprint")
    setups = transport("setup")
    setup = setups[0] if setups else "active"  # RFC 4145 §4: absent means active
    if setup == "passive":
        raise SdpError(
            "offer has a=setup:passive; this server is the DTLS server (passive),"
            " so the offer must be actpass or active"
        )
    if setup not in ("actpass", "active"):
        raise SdpError(f"offer has a=setup:{setup[:40]}; expected actpass or active")
    opus_payload_type, opus_fmtp = _opus(audio)
    datachannel = next((section for section in media if _is_datachannel(section)), None)
    return Offer(
        ice_ufrag=_ice_credential("a=ice-ufrag", ufrags[0], 4),
        ice_pwd=_ice_credential("a=ice-pwd", pwds[0], 22),
        ice_options=" ".join(transport("ice-options")).split(),
        fingerprints=fingerprints,
        setup=setup,
        audio_mid=audio.mid,
        opus_payload_type=opus_payload_type,
        opus_fmtp=opus_fmtp,
        audio_direction=audio.direction,
        datachannel_mid=datachannel.mid if datachannel else None,
        sctp_port=_sctp_port(datachannel) if datachannel else None,
        max_message_size=_max_message_size(datachannel) if datachannel else None,
        bundle=bundle,
        media=media,
        candidates=[value for section in media for value in _values(section.attributes, "candidate")],
    )


def _media_line(number: int, value: str) -> MediaSection:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"line {number}: m-line {value[:60]!r} needs <media> <port> <proto> <format>...")
    kind, port_text, proto, *formats = parts
    port = _PORT.fullmatch(port_text)
    if port is None or int(port.group(1)) > 65535:
        raise SdpError(f"line {number}: m-line port {port_text[:20]!r} is not a number from 0 to 65535")
    return MediaSection(
        kind=kind, port=int(port.group(1)), proto=proto, formats=formats, mid=None, direction="sendrecv", attributes=[]
    )


def _direction(attributes: list[tuple[str, str | None]], default: str) -> str:
    return next((name for name, _ in reversed(attributes) if name in DIRECTIONS), default)


def _mid(section: MediaSection, seen: set[str]) -> str | None:
    values = _values(section.attributes, "mid")
    if not values:
        return None
    mid = values[0]
    if not _TOKEN.fullmatch(mid):
        raise SdpError(f"a=mid value {mid[:40]!r} is not a token")
    if mid in seen:
        raise SdpError(f"two m-lines have a=mid:{mid}")
    seen.add(mid)
    return mid


def _bundle(session: list[tuple[str, str | None]], mids: set[str]) -> list[str]:
    for value in _values(session, "group"):
        semantics, *group = value.split() or [""]
        if semantics == "BUNDLE":
            for mid in group:
                if mid not in mids:
                    raise SdpError(f"a=group:BUNDLE names mid {mid[:40]!r}, which no m-line has")
            return group
    return []


def _is_active(section: MediaSection) -> bool:
    """Port 0 rejects a section unless a=bundle-only says it rides on the BUNDLE transport."""
    return section.port != 0 or _has(section.attributes, "bundle-only")


def _audio_section(media: list[MediaSection]) -> MediaSection:
    audio = next((section for section in media if section.kind == "audio"), None)
    if audio is None:
        raise SdpError("offer has no audio m-line")
    if not _is_active(audio):
        raise SdpError("offer's audio m-line is disabled (port 0)")
    if audio.proto not in DTLS_SRTP_PROTOS:
        sdes = " with a=crypto (SDES keys)" if _has(audio.attributes, "crypto") else ""
        raise SdpError(f"offer's audio m-line uses {audio.proto[:40]}{sdes}; DTLS-SRTP needs UDP/TLS/RTP/SAVPF")
    if not _has(audio.attributes, "rtcp-mux"):
        raise SdpError("offer's audio m-line has no a=rtcp-mux; RTP and RTCP share the one port (RFC 5761)")
    return audio


def _is_datachannel(section: MediaSection) -> bool:
    return (
        section.kind == "application"
        and section.proto == DATACHANNEL_PROTO
        and DATACHANNEL_FORMAT in section.formats
        and _is_active(section)
    )


def _fingerprint(value: str) -> tuple[str, str]:
    parts = value.split()
    if len(parts) != 2 or not _HEX_PAIRS.fullmatch(parts[1]):
        raise SdpError(f"a=fingerprint {value[:120]!r} is not '<hash> <colon-separated hex>'")
    return parts[0].lower(), parts[1]


def _ice_credential(name: str, value: str, minimum: int) -> str:
    if not minimum <= len(value) <= 256 or not _ICE_CHARS.fullmatch(value):
        raise SdpError(f"{name} must be {minimum} to 256 characters from A-Z a-z 0-9 + / (RFC 8839)")
    return value


def _opus(audio: MediaSection) -> tuple[int, str | None]:
    rtpmaps: dict[str, str] = {}
    fmtps: dict[str, str] = {}
    for value in _values(audio.attributes, "rtpmap"):
        payload_type, _, encoding = value.partition(" ")
        rtpmaps.setdefault(payload_type, encoding.strip())
    for value in _values(audio.attributes, "fmtp"):
        payload_type, _, parameters = value.partition(" ")
        fmtps.setdefault(payload_type, parameters.strip())
    for payload_type in audio.formats:
        valid = _PAYLOAD_TYPE.fullmatch(payload_type) is not None and int(payload_type) <= 127
        if valid and rtpmaps.get(payload_type, "").lower() == "opus/48000/2":
            return int(payload_type), fmtps.get(payload_type) or None
    raise SdpError("offer has no Opus codec")


def _sctp_port(section: MediaSection) -> int:
    values = _values(section.attributes, "sctp-port")
    if not values:
        return DEFAULT_SCTP_PORT
    if not _NUMBER.fullmatch(values[0]) or not 1 <= int(values[0]) <= 65535:
        raise SdpError(f"a=sctp-port {values[0][:20]!r} is not a port number")
    return int(values[0])


def _max_message_size(section: MediaSection) -> int | None:
    values = _values(section.attributes, "max-message-size")
    if not values:
        return None
    if not _NUMBER.fullmatch(values[0]):
        raise SdpError(f"a=max-message-size {values[0][:20]!r} is not a number")
    return int(values[0])


# --- answer ------------------------------------------------------------------------------


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        raise SdpError(f"{address[:60]!r} is not an IP address") from None


def host_candidate(address: str, port: int, foundation: str = "1", component: int = 1) -> str:
    """The a=candidate value of a host candidate, priority per RFC 8445 §5.1.2.1."""
    ip = _ip(address)
    priority = (HOST_TYPE_PREFERENCE << 24) | (HOST_LOCAL_PREFERENCE << 8) | (256 - component)
    return f"{foundation} {component} udp {priority} {ip} {port} typ host"


def build_answer(offer: Offer, params: AnswerParams) -> str:
    ip = _ip(params.address)
    connection = f"IN IP{ip.version} {ip}"
    audio = next(section for section in offer.media if section.kind == "audio")
    datachannel = None
    if params.accept_datachannel:
        datachannel = next((section for section in offer.media if _is_datachannel(section)), None)
    accepted = [section for section in (audio, datachannel) if section is not None]
    accepted_mids = {section.mid for section in accepted}
    bundle = [mid for mid in offer.bundle if mid in accepted_mids]
    transport = [
        f"a=ice-ufrag:{params.ice_ufrag}",
        f"a=ice-pwd:{params.ice_pwd}",
        f"a=fingerprint:{params.fingerprint}",
        "a=setup:passive",
    ]
    candidates = [f"a=candidate:{host_candidate(params.address, params.port)}", "a=end-of-candidates"]

    lines = ["v=0", f"o=- {params.session_id} 2 {connection}", "s=-", "t=0 0", "a=ice-lite"]
    if bundle:
        lines.append("a=group:BUNDLE " + " ".join(bundle))
    lines.append("a=msid-semantic: WMS *")
    for section in offer.media:
        mid = [f"a=mid:{section.mid}"] if section.mid is not None else []
        # With BUNDLE, candidates go in the answerer-tagged section only (RFC 8843 §7.3.1).
        section_candidates = candidates if section.mid not in bundle or section.mid == bundle[0] else []
        if section is audio:
            pt = offer.opus_payload_type
            lines += [f"m=audio {params.port} {section.proto} {pt}", f"c={connection}", *transport, *mid]
            lines += [f"a={ANSWER_DIRECTION[section.direction]}", "a=rtcp-mux"]
            lines += [f"a=rtpmap:{pt} opus/48000/2", f"a=fmtp:{pt} {_opus_fmtp(offer.opus_fmtp)}"]
            if params.audio_ssrc is not None and ANSWER_DIRECTION[section.direction] in ("sendrecv", "sendonly"):
                lines += [f"a=msid:{params.cname} audio", f"a=ssrc:{params.audio_ssrc} cname:{params.cname}",
                          f"a=ssrc:{params.audio_ssrc} msid:{params.cname} audio"]
            lines += section_candidates
        elif section is datachannel:
            lines += [f"m=application {params.port} {DATACHANNEL_PROTO} {DATACHANNEL_FORMAT}", f"c={connection}"]
            lines += [*transport, *mid, f"a=sctp-port:{params.sctp_port}"]
            lines += [f"a=max-message-size:{params.max_message_size}", *section_candidates]
        else:
            # Rejected. Transport attributes stay, as browsers write them, and because some
            # offerers (aiortc) check credentials and rtcp-mux on every answered section.
            lines += [f"m={section.kind} 0 {section.proto} {' '.join(section.formats)}", f"c={connection}"]
            lines += [*transport, *mid]
            if "RTP" in section.proto:
                lines += ["a=inactive", "a=rtcp-mux"]
    return "\r\n".join(lines) + "\r\n"


def _opus_fmtp(offered: str | None) -> str:
    """Our receive preferences first, then the offer's other parameters as it gave them."""
    parameters = [f"{key}={value}" for key, value in OPUS_ANSWER_FMTP]
    for item in (offered or "").split(";"):
        item = item.strip()
        key = item.partition("=")[0].strip()
        if item and key not in dict(OPUS_ANSWER_FMTP):
            parameters.append(item)
    return ";".join(parameters)


# --- trickle-ice-sdpfrag (RFC 8840) --------------------------------------------------------


def parse_ice_sdpfrag(text: str) -> tuple[str | None, str | None, list[str]]:
    """(ufrag, pwd, candidate values) of a WHIP PATCH body; new credentials mean ICE restart."""
    ufrags: list[str] = []
    pwds: list[str] = []
    candidates: list[str] = []
    for number, kind, value in _lines(text, "sdpfrag"):
        if kind != "a":
            continue
        name, attribute_value = _attribute(number, value)
        if name == "ice-ufrag":
            ufrags.append(_ice_credential("a=ice-ufrag", attribute_value or "", 4))
        elif name == "ice-pwd":
            pwds.append(_ice_credential("a=ice-pwd", attribute_value or "", 22))
        elif name == "candidate":
            if not attribute_value or not attribute_value.strip():
                raise SdpError(f"line {number}: a=candidate has no value")
            candidates.append(attribute_value)
    if len(set(ufrags)) > 1 or len(set(pwds)) > 1:
        raise SdpError("sdpfrag has conflicting a=ice-ufrag or a=ice-pwd values")
    return (ufrags[0] if ufrags else None), (pwds[0] if pwds else None), candidates


def build_ice_sdpfrag(ice_ufrag: str, ice_pwd: str, candidate: str, mid: str | None) -> str:
    """The server's answer fragment to an ICE restart, laid out like RFC 9725's example."""
    lines = ["a=ice-lite", "m=audio 9 RTP/AVP 0"]
    if mid is not None:
        lines.append(f"a=mid:{mid}")
    lines += [f"a=ice-ufrag:{ice_ufrag}", f"a=ice-pwd:{ice_pwd}", f"a=candidate:{candidate}", "a=end-of-candidates"]
    return "\r\n".join(lines) + "\r\n"
