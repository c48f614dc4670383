"""Parse a WebRTC SDP offer and build the ICE-lite answer to it (DTLS passive, or active on request).

RFC 8866 (SDP), RFC 8829 (JSEP), RFC 8839 (ICE in SDP), RFC 8842 (DTLS setup), RFC 8841
(data channels), RFC 8843 (BUNDLE), RFC 8840 (trickle-ice-sdpfrag), RFC 7587 (Opus).
SdpError messages go to HTTP clients verbatim in 400 responses, so each names exactly what
is wrong with the offer. The parser takes arbitrary text and raises nothing but SdpError.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from itertools import compress, filterfalse, repeat, starmap
from operator import add, attrgetter, getitem, itemgetter, methodcaller

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

_ICE_UFRAG = re.compile(r"[A-Za-z0-9+/]{4,256}")  # RFC 8839 §5.4
_ICE_PWD = re.compile(r"[A-Za-z0-9+/]{22,256}")
_TOKEN_CHARS = r"!#$%&'*+\-.^_`{|}~0-9A-Za-z"  # RFC 8866 token
_TOKEN = re.compile(f"[{_TOKEN_CHARS}]+")
# Whole-text patterns over "\n" + text (each line follows a \n), so the per-line work runs in
# the regex engine rather than in Python, which keeps parsing fast under fuzzer instrumentation.
# The first two consume lines while they are well formed: blank or <letter>=<value>, and then
# with a token as each attribute's name (possessively: what they match is never given back).
_WELL_FORMED = re.compile(r"(?:\n(?:[a-z]=[^\n]*+)?+)*+")
_WELL_NAMED = re.compile(f"(?:\\n(?:a=[{_TOKEN_CHARS}]++(?::[^\\n]*+)?+|[b-z]=[^\\n]*+)?+)*+")
_ATTRIBUTE = re.compile(r"\na=([^:\n]*)(?::([^\n]*))?")  # name, value (None without a colon)
_MEDIA_LINE = re.compile(r"\nm=([^\n]*)")
_SDPFRAG_ATTRIBUTE = re.compile(r"\na=(ice-ufrag|ice-pwd|candidate)(?::([^\n]*))?(?![^\n])")
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
    extra_addresses: tuple[str, ...] = ()  # more host candidates on the same port (a dual-stack server)
    setup: str = "passive"  # the server's DTLS role: passive (DTLS server) or active (DTLS client)


# --- lines -------------------------------------------------------------------------------


def _checked(text: str, what: str) -> tuple[str, int]:
    """"\\n" + the text with \\r\\n line ends as \\n, once every line is blank or <letter>=<value>;
    and the offset of the first line whose attribute name is not a token (its length if none).
    Offsets of lines are those of the \\n that starts them."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SDP_SIZE:
        raise SdpError(f"{what} is {size} bytes; the limit is {MAX_SDP_SIZE}")
    lines = "\n" + text.replace("\r\n", "\n")
    if lines.endswith("\r"):  # the last line's \r, which no \n follows
        lines = lines[:-1]
    clean = "\r" not in lines and "\0" not in lines
    named = _matched_length(_WELL_NAMED, lines)
    if clean and named == len(lines):
        return lines, named
    formed = _matched_length(_WELL_FORMED, lines)  # where the first malformed line's value starts, else the end
    if not clean:  # a CR or NUL in a line before the first malformed one, or in it, is the error
        bad_character = min(position for position in (lines.find("\r"), lines.find("\0")) if position >= 0)
        if lines.rfind("\n", 0, bad_character) < formed:
            raise SdpError(f"line {_line_number(lines, bad_character)} contains a CR or NUL character")
    if formed != len(lines):
        line = lines[formed:].partition("\n")[0]
        raise SdpError(f"line {_line_number(lines, formed)} is not of the form <letter>=<value>: {line[:40]!r}")
    return lines, lines.rfind("\n", 0, named)


def _matched_length(pattern: re.Pattern[str], text: str) -> int:
    """How much of the start of `text` `pattern` matches (it matches the empty string, if nothing more)."""
    match = pattern.match(text)
    return match.end() if match is not None else 0


def _line_number(lines: str, position: int) -> int:
    """The number of the line at `position` (its \\n, or after it) of checked text."""
    return lines.count("\n", 0, position + 1)


def _attribute_name_error(lines: str, start: int) -> SdpError:
    name = lines[start + 3:].partition("\n")[0].partition(":")[0]
    return SdpError(f"line {_line_number(lines, start)}: attribute name {name[:40]!r} is not a token")


def _attributes(lines: str, start: int, end: int) -> list[tuple[str, str | None]]:
    """The a= lines between two offsets of checked text, whose names are known to be tokens."""
    return list(map(_GROUPS, _ATTRIBUTE.finditer(lines, start, end)))


# C-level building blocks: parse_offer maps them over all sections at once, since per-section
# Python is what fuzzed offers with many m-lines spend their time in.
_NAME = itemgetter(0)
_KIND = attrgetter("kind")
_MID = attrgetter("mid")
_START = methodcaller("start")
_GROUP = methodcaller("group", 1)
_GROUPS = methodcaller("groups")
_MATCH_GROUPS = repeat(re.Match.groups)
_PORT_FIELD = itemgetter(1)
_PROTO_FIELD = itemgetter(2)
_FORMAT_FIELDS = itemgetter(slice(3, None))
_SPLIT_AT_SLASH = methodcaller("partition", "/")
_SPLIT_AT_SPACE = methodcaller("partition", " ")
_IS_DIRECTION = frozenset(DIRECTIONS).__contains__
_MEDIA_PORT = re.compile(  # what _PORT matches, with a number up to 65535
    r"(?:[0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])(?:/[0-9]{1,5})?")
_DIRECTIONS = re.compile(r"\na=(sendrecv|sendonly|recvonly|inactive)(?::[^\n]*)?(?![^\n])")


def _values_pattern(name: str) -> re.Pattern[str]:
    return re.compile(f"\\na={re.escape(name)}(?::([^\\n]*))?(?![^\\n])")


# The attributes looked up by name. Over a span of checked text, each one's findall gives the
# values of that attribute in order, "" for one without a value.
_VALUES = {name: _values_pattern(name) for name in (
    "ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "fingerprint", "setup", "group", "mid", "candidate",
    "rtpmap", "fmtp", "sctp-port", "max-message-size",
)}


def _has(attributes: list[tuple[str, str | None]], name: str) -> bool:
    return name in map(_NAME, attributes)


# --- offer -------------------------------------------------------------------------------


def parse_offer(text: str, *, answer_setup: str = "passive") -> Offer:
    """Read an offer the server can answer with a=setup:`answer_setup` (passive or active)."""
    lines, bad_name = _checked(text, "offer")
    if lines[1:].partition("\n")[0] != "v=0":
        raise SdpError("not an SDP offer: first line must be v=0")
    media_lines = list(_MEDIA_LINE.finditer(lines))
    fields = list(map(str.split, map(_GROUP, media_lines)))
    if min(map(len, fields), default=4) < 4 or not all(map(_MEDIA_PORT.fullmatch, map(_PORT_FIELD, fields))):
        # The first bad line in text order wins: an m-line before the first bad attribute name, or that.
        _check_media_lines(lines, media_lines, bad_name)
    if bad_name != len(lines):
        raise _attribute_name_error(lines, bad_name)
    starts = list(map(_START, media_lines))
    bounds = [*starts, len(lines)]
    ends = bounds[1:]
    session_span = (0, bounds[0])
    spans = list(zip(starts, ends))  # the media sections' spans of `lines`, in order

    def values(name: str, span: tuple[int, int]) -> list[str]:
        return _VALUES[name].findall(lines, *span)

    def in_each_section(pattern: re.Pattern[str]) -> map[list[str]]:
        return map(pattern.findall, repeat(lines), starts, ends)

    session_direction = _direction(_attributes(lines, *session_span), "sendrecv")
    # Each section's last direction attribute, else the session's; its first a=mid, else None.
    directions = map(getitem, map(add, repeat([session_direction]), in_each_section(_DIRECTIONS)), repeat(-1))
    section_mids = list(map(getitem, map(add, in_each_section(_VALUES["mid"]), repeat([None])), repeat(0)))
    mids = _unique_mids(section_mids)
    attributes = map(list, map(map, _MATCH_GROUPS, map(_ATTRIBUTE.finditer, repeat(lines), starts, ends)))
    ports = map(int, map(_NAME, map(_SPLIT_AT_SLASH, map(_PORT_FIELD, fields))))
    media = list(starmap(MediaSection, zip(map(_NAME, fields), ports, map(_PROTO_FIELD, fields),
                                           map(_FORMAT_FIELDS, fields), section_mids, directions, attributes)))
    if values("ice-lite", session_span):
        raise SdpError("offer has a=ice-lite; this ICE-lite server needs a full ICE agent on the other side")

    bundle = _bundle(values("group", session_span), mids)
    kinds = list(map(_KIND, media))
    if "audio" not in kinds:
        raise SdpError("offer has no audio m-line")
    audio_index = kinds.index("audio")
    audio = _check_audio(media[audio_index])
    # Transport attributes: the audio section's own, else the BUNDLE-tagged section's, else session-level.
    levels = [spans[audio_index]]
    if bundle:
        levels.append(spans[section_mids.index(bundle[0])])
    levels.append(session_span)

    def transport(name: str) -> list[str]:
        return next((found for span in levels if (found := values(name, span))), [])

    ufrags, pwds = transport("ice-ufrag"), transport("ice-pwd")
    if not ufrags or not pwds:
        raise SdpError("offer has no ICE credentials (a=ice-ufrag/a=ice-pwd)")
    fingerprints = [_fingerprint(value) for value in transport("fingerprint")]
    if not fingerprints:
        raise SdpError("offer has no a=fingerprint")
    setups = transport("setup")
    setup = setups[0] if setups else "active"  # RFC 4145 §4: absent means active
    other = "active" if answer_setup == "passive" else "passive"
    if setup == answer_setup:
        role = "server" if setup == "passive" else "client"
        raise SdpError(
            f"offer has a=setup:{setup}; this server is the DTLS {role} ({setup}),"
            f" so the offer must be actpass or {other}"
        )
    if setup not in ("actpass", other):
        raise SdpError(f"offer has a=setup:{setup[:40]}; expected actpass or {other}")
    opus_payload_type, opus_fmtp = _opus(audio.formats, values("rtpmap", spans[audio_index]),
                                         values("fmtp", spans[audio_index]))
    datachannel_index = _datachannel_index(media, kinds)
    ice_ufrag = _ice_credential("a=ice-ufrag", ufrags[0], 4)
    ice_pwd = _ice_credential("a=ice-pwd", pwds[0], 22)
    datachannel_mid: str | None = None
    sctp_port: int | None = None
    max_message_size: int | None = None
    if datachannel_index is not None:
        datachannel_span = spans[datachannel_index]
        datachannel_mid = media[datachannel_index].mid
        sctp_port = _sctp_port(values("sctp-port", datachannel_span))
        max_message_size = _max_message_size(values("max-message-size", datachannel_span))
    return Offer(
        ice_ufrag=ice_ufrag,
        ice_pwd=ice_pwd,
        ice_options=" ".join(transport("ice-options")).split(),
        fingerprints=fingerprints,
        setup=setup,
        audio_mid=audio.mid,
        opus_payload_type=opus_payload_type,
        opus_fmtp=opus_fmtp,
        audio_direction=audio.direction,
        datachannel_mid=datachannel_mid,
        sctp_port=sctp_port,
        max_message_size=max_message_size,
        bundle=bundle,
        media=media,
        candidates=values("candidate", (bounds[0], len(lines))),  # the media sections' candidates
    )


def _check_media_lines(lines: str, media_lines: list[re.Match[str]], end: int) -> None:
    """Raise the error of the first malformed m-line before offset `end`, if there is one."""
    for line in media_lines:
        if line.start() >= end:
            return
        value = line.group(1)
        parts = value.split()
        if len(parts) < 4:
            raise SdpError(f"line {_line_number(lines, line.start())}: m-line {value[:60]!r} needs "
                           "<media> <port> <proto> <format>...")
        port = _PORT.fullmatch(parts[1])
        if port is None or int(port.group(1)) > 65535:
            raise SdpError(f"line {_line_number(lines, line.start())}: m-line port {parts[1][:20]!r} "
                           "is not a number from 0 to 65535")


def _direction(attributes: list[tuple[str, str | None]], default: str) -> str:
    return next(filter(_IS_DIRECTION, map(_NAME, reversed(attributes))), default)


def _unique_mids(section_mids: list[str | None]) -> set[str]:
    """The sections' a=mid values as a set, once each is known to be a token used by one section."""
    given = [mid for mid in section_mids if mid is not None]
    mids = set(given)
    if len(mids) != len(given) or not all(map(_TOKEN.fullmatch, given)):
        seen: set[str] = set()
        for mid in given:  # the first section's problem is the error
            if not _TOKEN.fullmatch(mid):
                raise SdpError(f"a=mid value {mid[:40]!r} is not a token")
            if mid in seen:
                raise SdpError(f"two m-lines have a=mid:{mid}")
            seen.add(mid)
    return mids


def _bundle(groups: list[str], mids: set[str]) -> list[str]:
    for value in groups:
        semantics, *group = value.split() or [""]
        if semantics == "BUNDLE":
            unknown = next(filterfalse(mids.__contains__, group), None)
            if unknown is not None:
                raise SdpError(f"a=group:BUNDLE names mid {unknown[:40]!r}, which no m-line has")
            return group
    return []


def _is_active(section: MediaSection) -> bool:
    """Port 0 rejects a section unless a=bundle-only says it rides on the BUNDLE transport."""
    return section.port != 0 or _has(section.attributes, "bundle-only")


def _check_audio(audio: MediaSection) -> MediaSection:
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


def _datachannel_index(media: list[MediaSection], kinds: list[str]) -> int | None:
    """Where the first section a data channel can use is (`kinds`: each section's kind)."""
    applications = compress(range(len(media)), map("application".__eq__, kinds))
    return next((index for index in applications if _is_datachannel(media[index])), None)


def _fingerprint(value: str) -> tuple[str, str]:
    parts = value.split()
    if len(parts) != 2 or not _HEX_PAIRS.fullmatch(parts[1]):
        raise SdpError(f"a=fingerprint {value[:120]!r} is not '<hash> <colon-separated hex>'")
    return parts[0].lower(), parts[1]


def _ice_credential(name: str, value: str, minimum: int) -> str:
    if not (_ICE_UFRAG if minimum == 4 else _ICE_PWD).fullmatch(value):
        raise SdpError(f"{name} must be {minimum} to 256 characters from A-Z a-z 0-9 + / (RFC 8839)")
    return value


def _opus(formats: list[str], rtpmap_values: list[str], fmtp_values: list[str]) -> tuple[int, str | None]:
    rtpmaps, fmtps = _by_payload_type(rtpmap_values), _by_payload_type(fmtp_values)
    for payload_type in formats:
        valid = _PAYLOAD_TYPE.fullmatch(payload_type) is not None and int(payload_type) <= 127
        if valid and rtpmaps.get(payload_type, "").lower() == "opus/48000/2":
            return int(payload_type), fmtps.get(payload_type) or None
    raise SdpError("offer has no Opus codec")


def _by_payload_type(values: list[str]) -> dict[str, str]:
    """rtpmap or fmtp values, "<payload type> <rest>", as {payload type: rest}; the first one wins."""
    split = list(map(_SPLIT_AT_SPACE, reversed(values)))
    return dict(zip(map(_NAME, split), map(str.strip, map(itemgetter(2), split))))


def _sctp_port(values: list[str]) -> int:
    if not values:
        return DEFAULT_SCTP_PORT
    if not _NUMBER.fullmatch(values[0]) or not 1 <= int(values[0]) <= 65535:
        raise SdpError(f"a=sctp-port {values[0][:20]!r} is not a port number")
    return int(values[0])


def _max_message_size(values: list[str]) -> int | None:
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


def host_candidate(address: str, port: int, foundation: str = "1", component: int = 1,
                   local_preference: int = HOST_LOCAL_PREFERENCE) -> str:
    """The a=candidate value of a host candidate, priority per RFC 8445 §5.1.2.1."""
    ip = _ip(address)
    priority = (HOST_TYPE_PREFERENCE << 24) | (local_preference << 8) | (256 - component)
    return f"{foundation} {component} udp {priority} {ip} {port} typ host"


def host_candidates(addresses: tuple[str, ...], port: int) -> list[str]:
    """One host candidate per address of a multihomed server: distinct foundations (different
    bases, RFC 8445 §5.1.1.3) and descending local preferences, so the first address is preferred."""
    return [host_candidate(address, port, foundation=str(index), local_preference=HOST_LOCAL_PREFERENCE + 1 - index)
            for index, address in enumerate(addresses, 1)]


_PROTO = attrgetter("proto")
_FORMATS = attrgetter("formats")
_REJECTED_SECTION = "m={} 0 {} {}\r\nc={}\r\n{}{}{}".format  # m-line, c-line, transport, mid, RTP lines
_MID_LINE = "a=mid:{}\r\n".format
_NO_MID_LINE = {None: ""}  # .get(mid, _MID_LINE(mid))
_REJECTED_RTP_LINES = ("", "a=inactive\r\na=rtcp-mux\r\n")  # [whether the proto is RTP]


def build_answer(offer: Offer, params: AnswerParams) -> str:
    ip = _ip(params.address)
    connection = f"IN IP{ip.version} {ip}"
    media = offer.media
    kinds = list(map(_KIND, media))
    audio_index = kinds.index("audio")
    audio = media[audio_index]
    datachannel_index = _datachannel_index(media, kinds) if params.accept_datachannel else None
    accepted_mids = {media[index].mid for index in (audio_index, datachannel_index) if index is not None}
    bundle = [mid for mid in offer.bundle if mid in accepted_mids]
    transport = (f"a=ice-ufrag:{params.ice_ufrag}\r\na=ice-pwd:{params.ice_pwd}\r\n"
                 f"a=fingerprint:{params.fingerprint}\r\na=setup:{params.setup}\r\n")
    addresses = (params.address, *params.extra_addresses)
    candidates = "".join(f"a=candidate:{candidate}\r\n" for candidate in host_candidates(addresses, params.port))
    candidates += "a=end-of-candidates\r\n"
    mids = list(map(_MID, media))
    mid_lines = list(map(_NO_MID_LINE.get, mids, map(_MID_LINE, mids)))

    def candidates_in(index: int) -> str:
        """With BUNDLE, candidates go in the answerer-tagged section only (RFC 8843 §7.3.1)."""
        return candidates if mids[index] not in bundle or mids[index] == bundle[0] else ""

    # Every section rejected (mapped over all of them at once), then the accepted ones answered.
    # Rejected sections keep the transport attributes, as browsers write them, and because some
    # offerers (aiortc) check credentials and rtcp-mux on every answered section.
    protos = list(map(_PROTO, media))
    rtp_lines = map(getitem, repeat(_REJECTED_RTP_LINES), map(str.__contains__, protos, repeat("RTP")))
    sections = list(map(_REJECTED_SECTION, kinds, protos, map(" ".join, map(_FORMATS, media)), repeat(connection),
                        repeat(transport), mid_lines, rtp_lines))
    pt = offer.opus_payload_type
    direction = ANSWER_DIRECTION[audio.direction]
    ssrc_lines = ""
    if params.audio_ssrc is not None and direction in ("sendrecv", "sendonly"):
        ssrc_lines = (f"a=msid:{params.cname} audio\r\na=ssrc:{params.audio_ssrc} cname:{params.cname}\r\n"
                      f"a=ssrc:{params.audio_ssrc} msid:{params.cname} audio\r\n")
    sections[audio_index] = (
        f"m=audio {params.port} {audio.proto} {pt}\r\nc={connection}\r\n{transport}{mid_lines[audio_index]}"
        f"a={direction}\r\na=rtcp-mux\r\na=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} {_opus_fmtp(offer.opus_fmtp)}\r\n"
        f"{ssrc_lines}{candidates_in(audio_index)}"
    )
    if datachannel_index is not None:
        sections[datachannel_index] = (
            f"m=application {params.port} {DATACHANNEL_PROTO} {DATACHANNEL_FORMAT}\r\nc={connection}\r\n"
            f"{transport}{mid_lines[datachannel_index]}a=sctp-port:{params.sctp_port}\r\n"
            f"a=max-message-size:{params.max_message_size}\r\n{candidates_in(datachannel_index)}"
        )
    group = f"a=group:BUNDLE {' '.join(bundle)}\r\n" if bundle else ""
    header = f"v=0\r\no=- {params.session_id} 2 {connection}\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n{group}"
    return header + "a=msid-semantic: WMS *\r\n" + "".join(sections)


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
    lines, bad_name = _checked(text, "sdpfrag")
    # The lines before the first bad attribute name; their own errors come first, in line order.
    ufrags = _VALUES["ice-ufrag"].findall(lines, 0, bad_name)
    pwds = _VALUES["ice-pwd"].findall(lines, 0, bad_name)
    candidates = _VALUES["candidate"].findall(lines, 0, bad_name)
    if not (all(map(_ICE_UFRAG.fullmatch, ufrags)) and all(map(_ICE_PWD.fullmatch, pwds))
            and all(map(str.strip, candidates))):
        _check_sdpfrag_lines(lines, bad_name)  # raises the first bad line's error
    if bad_name != len(lines):
        raise _attribute_name_error(lines, bad_name)
    if len(set(ufrags)) > 1 or len(set(pwds)) > 1:
        raise SdpError("sdpfrag has conflicting a=ice-ufrag or a=ice-pwd values")
    return (ufrags[0] if ufrags else None), (pwds[0] if pwds else None), candidates


def _check_sdpfrag_lines(lines: str, end: int) -> None:
    """Check the a=ice-ufrag, a=ice-pwd and a=candidate lines before `end` one by one, in order."""
    for line in _SDPFRAG_ATTRIBUTE.finditer(lines, 0, end):
        name, value = line.groups()
        if name == "ice-ufrag":
            _ice_credential("a=ice-ufrag", value or "", 4)
        elif name == "ice-pwd":
            _ice_credential("a=ice-pwd", value or "", 22)
        elif not value or not value.strip():
            raise SdpError(f"line {_line_number(lines, line.start())}: a=candidate has no value")


def build_ice_sdpfrag(ice_ufrag: str, ice_pwd: str, candidates: list[str], mid: str | None) -> str:
    """The server's answer fragment to an ICE restart, laid out like RFC 9725's example."""
    lines = ["a=ice-lite", "m=audio 9 RTP/AVP 0"]
    if mid is not None:
        lines.append(f"a=mid:{mid}")
    lines += [f"a=ice-ufrag:{ice_ufrag}", f"a=ice-pwd:{ice_pwd}"]
    lines += [f"a=candidate:{candidate}" for candidate in candidates]
    lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"
