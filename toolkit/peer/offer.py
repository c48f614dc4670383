"""The probe peer's SDP: a Chromium-shaped offer writer and a minimal answer reader.

The toolkit reads answers with its own parser rather than the reference server's, so a bug
in the server's SDP code cannot be hidden by the same bug here (docs/architecture.md, principle 3).
Only what an offerer needs to connect is read; everything else in the answer is kept in
`Answer.raw` for checks that want to look closer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SETUP_ROLES = ("active", "passive", "actpass")
FINGERPRINT_PREFERENCE = ("sha-512", "sha-384", "sha-256", "sha-224", "sha-1")
"""Strongest first: with several a=fingerprint lines, RFC 8122 §5 verifies against the set of the
most preferred hash function the peer used."""


class PeerError(Exception):
    """The probe peer cannot go on: bad answer, bad signaling reply, wrong call order.

    `status` and `body` are set when an HTTP signaling reply caused it.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class DtlsRoleError(PeerError):
    """The answer's a=setup contradicts the DTLS role the offer forced: a choice of the caller's,
    so a check meeting it is skipped, not failed."""


_ANSWER_SETUPS = {"actpass": ("active", "passive"), "active": ("passive",), "passive": ("active",)}
"""What an answer may say to each offered a=setup (RFC 8842 §5.3, RFC 4145 §4.1)."""


def answer_role(offered: str, answered: str) -> str:
    """The offerer's DTLS role, "client" or "server", from the offer's and the answer's a=setup.

    An answer says active (it is the DTLS client) or passive (it is the server), never actpass
    (RFC 8842 §5.3, RFC 5763 §5), and never the role the offer already took.
    """
    if answered == "actpass":
        raise PeerError("answer has a=setup:actpass: an answer must choose a=setup:active or a=setup:passive "
                        "(RFC 8842 §5.3, RFC 5763 §5)")
    if answered not in _ANSWER_SETUPS[offered]:
        ours = "client" if offered == "active" else "server"
        raise DtlsRoleError(f"answer has a=setup:{answered} to an offer of a=setup:{offered}: both sides would be "
                            f"the DTLS {ours} (RFC 8842 §5.3 allows only a=setup:{_ANSWER_SETUPS[offered][0]})")
    return "client" if answered == "passive" else "server"


@dataclass(slots=True)
class Answer:
    """What the offerer needs from an answer to run ICE, DTLS and SRTP against it."""

    ice_ufrag: str
    ice_pwd: str
    fingerprint_algorithm: str
    fingerprint: str
    """The first fingerprint of the most preferred hash function the answer uses (RFC 8122 §5)."""
    candidates: list[tuple[str, int]]
    ice_lite: bool
    setup: str
    audio_payload_type: int | None
    sctp_port: int | None
    raw: str = field(repr=False)
    fingerprints: tuple[str, ...]
    """Every fingerprint the answer gives with `fingerprint_algorithm`: the certificate must match one."""


def build_offer(
    *,
    ice_ufrag: str,
    ice_pwd: str,
    fingerprint: str,
    fingerprint_algorithm: str = "sha-256",
    audio_pt: int = 111,
    datachannel: bool = False,
    setup: str = "actpass",
    ssrc: int | None = None,
    session_id: int = 1,
) -> str:
    """Write an audio (+ optional data channel) offer shaped like Chromium's.

    BUNDLE, rtcp-mux, Opus/48000/2 and no candidates: a lite server learns the offerer's
    address from its checks. Values are written as given, unvalidated, so adversarial tests
    can offer wrong ones on purpose.
    """
    mids = ["0", "1"] if datachannel else ["0"]
    transport = [
        "c=IN IP4 0.0.0.0",
        f"a=ice-ufrag:{ice_ufrag}",
        f"a=ice-pwd:{ice_pwd}",
        "a=ice-options:trickle",
        f"a=fingerprint:{fingerprint_algorithm} {fingerprint}",
        f"a=setup:{setup}",
    ]
    lines = [
        "v=0",
        f"o=- {session_id} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {' '.join(mids)}",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        f"m=audio 9 UDP/TLS/RTP/SAVPF {audio_pt}",
        *transport,
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        f"a=rtpmap:{audio_pt} opus/48000/2",
        f"a=fmtp:{audio_pt} minptime=10;useinbandfec=1",
    ]
    if ssrc is not None:
        lines.append(f"a=ssrc:{ssrc} cname:rtcgate-probe")
    if datachannel:
        lines += [
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            *transport,
            "a=mid:1",
            "a=sctp-port:5000",
            "a=max-message-size:262144",
        ]
    return "\r\n".join(lines) + "\r\n"


def parse_answer(text: str) -> Answer:
    """Read the transport parameters out of an SDP answer; raise PeerError saying what is wrong.

    Session- and media-level attributes are read alike (BUNDLE answers repeat them); two
    different values for one of them is an error, since the offerer could not tell which to use.
    """
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise PeerError("answer is empty")
    if lines[0] != "v=0":
        raise PeerError(f"answer starts with {lines[0][:40]!r}, not 'v=0'")
    single: dict[str, str] = {}
    fingerprints: list[tuple[str, str]] = []
    candidates: list[tuple[str, int]] = []
    ice_lite = False
    media_kind: str | None = None
    audio_payload_type: int | None = None
    for number, line in enumerate(lines, start=1):
        if line.startswith("m="):
            media_kind = line[2:].split(" ", 1)[0]
            continue
        if not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        if name in ("ice-ufrag", "ice-pwd", "setup", "sctp-port"):
            _remember(single, name, value.strip())
        elif name == "fingerprint":
            fingerprints.append(_parse_fingerprint(value.strip()))
        elif name == "ice-lite":
            ice_lite = True
        elif name == "candidate":
            candidate = _parse_candidate(value, number)
            if candidate is not None and candidate not in candidates:
                candidates.append(candidate)
        elif name == "rtpmap" and media_kind == "audio" and audio_payload_type is None:
            audio_payload_type = _opus_payload_type(value, number)
    if not any(line.startswith("m=") for line in lines):
        raise PeerError("answer has no m= section")
    for name in ("ice-ufrag", "ice-pwd", "fingerprint", "setup"):
        if not (fingerprints if name == "fingerprint" else single.get(name)):
            raise PeerError(f"answer has no a={name}")
    algorithms = [algorithm for algorithm, _ in fingerprints]
    algorithm = next((a for a in FINGERPRINT_PREFERENCE if a in algorithms), algorithms[0])
    chosen = tuple(dict.fromkeys(value for a, value in fingerprints if a == algorithm))
    setup = single["setup"]
    if setup not in SETUP_ROLES:
        raise PeerError(f"a=setup:{setup} is not active, passive or actpass")
    sctp_port = None
    if "sctp-port" in single:
        if not single["sctp-port"].isdigit():
            raise PeerError(f"a=sctp-port:{single['sctp-port']} is not a number")
        sctp_port = int(single["sctp-port"])
    return Answer(
        ice_ufrag=single["ice-ufrag"],
        ice_pwd=single["ice-pwd"],
        fingerprint_algorithm=algorithm,
        fingerprint=chosen[0],
        candidates=candidates,
        ice_lite=ice_lite,
        setup=setup,
        audio_payload_type=audio_payload_type,
        sctp_port=sctp_port,
        raw=text,
        fingerprints=chosen,
    )


def _parse_fingerprint(value: str) -> tuple[str, str]:
    """(lower-case hash name, upper-case hex pairs) of one a=fingerprint value."""
    algorithm, _, fingerprint = value.partition(" ")
    fingerprint = fingerprint.strip()
    if not algorithm or not _is_hex_pairs(fingerprint):
        raise PeerError(f"a=fingerprint value {value!r} is not '<hash> <hex:hex:...>'")
    return algorithm.lower(), fingerprint.upper()


def _remember(single: dict[str, str], name: str, value: str) -> None:
    known = single.setdefault(name, value)
    if known != value:
        raise PeerError(f"answer has two different a={name} values: {known!r} and {value!r}")


def _parse_candidate(value: str, number: int) -> tuple[str, int] | None:
    """(address, port) of a UDP RTP candidate; None for other components and transports."""
    fields = value.split()
    if len(fields) < 8 or fields[6] != "typ":
        raise PeerError(
            f"line {number}: a=candidate:{value} is not "
            "'<foundation> <component> <transport> <priority> <address> <port> typ <type>'"
        )
    component, transport, address, port = fields[1], fields[2], fields[4], fields[5]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise PeerError(f"line {number}: candidate port {port!r} is not a number in 1..65535")
    if component != "1" or transport.lower() != "udp":
        return None
    return address, int(port)


def _opus_payload_type(value: str, number: int) -> int | None:
    payload_type, _, encoding = value.partition(" ")
    if not encoding.lower().startswith("opus/48000"):
        return None
    if not payload_type.isdigit() or int(payload_type) > 127:
        raise PeerError(f"line {number}: a=rtpmap payload type {payload_type!r} is not 0..127")
    return int(payload_type)


def _is_hex_pairs(text: str) -> bool:
    pairs = text.split(":")
    return len(pairs) > 1 and all(
        len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair) for pair in pairs
    )
