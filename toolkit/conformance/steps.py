"""The steps a check's conversation is made of, and the alternatives an `Expect` accepts.

In tlsfuzzer's spirit a conversation is data: `Connect()`, `Send(payload)`,
`Expect(any_of=(StunError(401), Silence()))`, `Echo()`, `Alive()`... The runner plays the
steps in order; a step raises `CheckFailed` with what the target did wrong, or `CheckSkipped`
when the check does not apply.

Echo judgments (`Echo`, `send_media`, `echoes_of`, `expect_echo`) hold only against a target
that echoes media: against one the sanity conversation found does not (a realtime voice
service, `Target.echoes` False) they SKIP: a missing echo proves nothing there. `Alive` is the
"the session still works" step for both kinds: an echo, or what any media server shows.

Payloads are bytes or functions of the conversation (they usually need credentials the answer
only gives at run time).

A judgement several checks make is a named step here (`Wait()` for the silence window,
`Connected`, `BindsNothing`, `NoMediaTo`, `SrtpProfile`, `Renegotiate`), or, when only one
family makes it, in that family's module (`checks/ice.py`'s `IceRestart`...). `Do(callable)`
is the escape hatch for a judgement one check alone makes.

What counts as an answer to `Expect`: with `about="reply"` (default), only STUN messages
carrying the transaction ID of the last STUN request sent from that socket; with
`about="any"`, every datagram from the target except background traffic — answers to the
probe peer's own consent checks, checks the target sends (full ICE agents do; ICE-02 judges
those), and RTCP reports.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aioice import stun as aioice_stun

from toolkit.conformance.conversation import (
    Conversation,
    LocalSocket,
    Session,
    is_rtcp,
    is_stun_request,
    stun_transaction_id,
)
from toolkit.conformance.liveness import Sign, counts_sequence, signs_since, wait_for_sign
from toolkit.conformance.model import Address, CheckFailed, CheckSkipped
from toolkit.peer import PeerError, RtpReceived

Payload = bytes | Callable[[Conversation], "bytes | Sequence[bytes]"]


class Step:
    """One move of a conversation."""

    async def run(self, conversation: Conversation) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


# -- sessions and sockets ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Offer(Step):
    """Open a socket and get a session from the target through its signaling adapter (no ICE yet).

    `peer` holds ProbePeer options (srtp_profiles, datachannel, ssrc...); `prepare` may change
    the peer before its offer is written (e.g. advertise a wrong fingerprint).
    """

    session: str = "main"
    socket: str | None = None
    peer: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Any], None] | None = None

    async def run(self, conversation: Conversation) -> None:
        peer = conversation.new_peer(**self.peer)
        if self.prepare is not None:
            self.prepare(peer)
        await conversation.offer(self.session, self.socket or self.session, peer)

    def describe(self) -> str:
        return f"Offer(session={self.session})"


@dataclass(frozen=True, eq=False)
class Connect(Offer):
    """Offer (unless the session exists), then ICE and DTLS from the session's socket.

    With `must_fail`, the step passes only if the connection does NOT complete (`why` says
    why it must not); the peer's failure reason is noted.
    """

    until: str = "dtls"
    must_fail: bool = False
    why: str = ""
    within: float | None = None
    """How long to wait for completion (default: the run's connect timeout); with `must_fail`,
    not completing by then counts as refused."""
    after: str = ""
    """What came before, for the FAIL message ("after the malformed records")."""

    async def run(self, conversation: Conversation) -> None:
        if self.session not in conversation.sessions:
            await Offer.run(self, conversation)
        session = conversation.session(self.session)
        try:
            await conversation.start(session, until=self.until, timeout=self.within)
        except PeerError as exc:
            if self.must_fail:
                conversation.note(f"session {self.session} did not connect, as required: {exc}")
                return
            context = f" {self.after}" if self.after else ""
            raise CheckFailed(f"session {self.session} could not connect{context}: {exc}") from None
        if self.must_fail:
            raise CheckFailed(f"session {self.session}: the {self.until.upper()} handshake completed although {self.why}")

    def describe(self) -> str:
        return f"Connect(session={self.session}, until={self.until}{', must fail' if self.must_fail else ''})"


@dataclass(frozen=True, eq=False)
class Socket(Step):
    """A new local socket: another 5-tuple. Datagrams on it still reach `session`'s peer (to decrypt)."""

    name: str
    session: str | None = "main"

    async def run(self, conversation: Conversation) -> None:
        owner = conversation.sessions.get(self.session) if self.session else None
        await conversation.open_socket(self.name, owner)

    def describe(self) -> str:
        return f"Socket({self.name})"


@dataclass(frozen=True, eq=False)
class Rebind(Step):
    """NAT rebinding: from now on the session's own traffic leaves from another socket."""

    socket: str
    session: str = "main"

    async def run(self, conversation: Conversation) -> None:
        session = conversation.session(self.session)
        socket = await conversation.ensure_socket(self.socket, session)
        socket.owner = session
        session.socket = socket

    def describe(self) -> str:
        return f"Rebind(session={self.session}, socket={self.socket})"


@dataclass(frozen=True, eq=False)
class Close(Step):
    """End a session: `how="dtls"` sends close_notify, `how="signaling"` asks the adapter."""

    session: str = "main"
    how: str = "dtls"

    async def run(self, conversation: Conversation) -> None:
        session = conversation.session(self.session)
        if self.how == "dtls":
            session.peer.close(conversation.loop.time())
            session.flush()
            return
        handle, session.handle = session.handle, None
        try:
            await conversation.target.close(handle, timeout=conversation.settings.connect_timeout)
        except PeerError as exc:
            raise CheckFailed(f"closing session {self.session} through signaling failed: {exc}") from None

    def describe(self) -> str:
        return f"Close(session={self.session}, how={self.how})"


# -- sending ---------------------------------------------------------------------------------


def _resolve(payload: Payload, conversation: Conversation) -> list[bytes]:
    value = payload(conversation) if callable(payload) else payload
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value)]
    return [bytes(item) for item in value]


def default_remote(conversation: Conversation, socket: LocalSocket) -> Address:
    session = socket.owner or next(iter(conversation.sessions.values()), None)
    if session is None:
        raise ValueError("no session to take the target's address from: pass to=")
    return session.remote


@dataclass(frozen=True, eq=False)
class Send(Step):
    """Send crafted datagrams from a socket (to the target's address unless `to` says otherwise)."""

    payload: Payload
    via: str = "main"
    to: Address | None = None
    label: str = ""

    async def run(self, conversation: Conversation) -> None:
        socket = conversation.socket(self.via)
        remote = self.to or default_remote(conversation, socket)
        socket.mark = len(socket.inbox)
        for data in _resolve(self.payload, conversation):
            tid = stun_transaction_id(data)
            if tid is not None:
                socket.last_request_tid = tid
                socket.last_request_to = remote
            socket.send(data, remote)

    def describe(self) -> str:
        return f"Send({self.label or 'crafted'}, via={self.via})"


# -- expecting -------------------------------------------------------------------------------


class Alternative:
    """One acceptable (or, when judged wrong, unacceptable) answer to an `Expect`."""

    def judge(self, data: bytes, conversation: Conversation, socket: LocalSocket) -> tuple[bool, str] | None:
        """None: this datagram is not this alternative. (ok, what) otherwise."""
        raise NotImplementedError


def _stun_class(data: bytes) -> str | None:
    if len(data) < 20 or data[0] >= 4:
        return None
    bits = ((data[0] & 0x01) << 1) | ((data[1] & 0x10) >> 4)
    return ("request", "indication", "success", "error")[bits]


def _parse_stun(data: bytes) -> aioice_stun.Message | str:
    try:
        return aioice_stun.parse_message(data)
    except ValueError as exc:
        return str(exc)


@dataclass(frozen=True, eq=False)
class StunSuccess(Alternative):
    """A Binding success response that is right: XOR-MAPPED-ADDRESS = our socket, MI and FINGERPRINT valid."""

    session: str = "main"

    def judge(self, data: bytes, conversation: Conversation, socket: LocalSocket) -> tuple[bool, str] | None:
        if _stun_class(data) != "success":
            return None
        message = _parse_stun(data)
        if isinstance(message, str):
            return False, f"a success response that does not parse: {message}"
        problems = []
        mapped = message.attributes.get("XOR-MAPPED-ADDRESS")
        if mapped is None:
            problems.append("no XOR-MAPPED-ADDRESS")
        elif tuple(mapped) != tuple(socket.local):
            problems.append(f"XOR-MAPPED-ADDRESS {mapped[0]}:{mapped[1]} is not the request's source "
                            f"{socket.local[0]}:{socket.local[1]}")
        if "MESSAGE-INTEGRITY" not in message.attributes:
            problems.append("no MESSAGE-INTEGRITY")
        else:
            password = conversation.session(self.session).peer.answer.ice_pwd
            if not message.check_message_integrity(password.encode()):
                problems.append("MESSAGE-INTEGRITY does not verify with the answer's ice-pwd")
        if "FINGERPRINT" not in message.attributes:
            problems.append("no FINGERPRINT")
        if problems:
            return False, "a success response with " + "; ".join(problems)
        return True, "success response (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT right)"

    def __str__(self) -> str:
        return "a Binding success response"


class StunError(Alternative):
    """A Binding error response with one of `codes` (any code when none is given), listing
    `unknown_attributes` when given."""

    def __init__(self, *codes: int, unknown_attributes: Sequence[int] = ()) -> None:
        self.codes = codes
        self.unknown_attributes = tuple(unknown_attributes)

    def judge(self, data: bytes, conversation: Conversation, socket: LocalSocket) -> tuple[bool, str] | None:
        if _stun_class(data) != "error":
            return None
        message = _parse_stun(data)
        if isinstance(message, str):
            return False, f"an error response that does not parse: {message}"
        code = message.attributes.get("ERROR-CODE", (None, ""))[0]
        if self.codes and code not in self.codes:
            return None
        if self.unknown_attributes:
            listed = unknown_attributes_of(data)
            missing = [kind for kind in self.unknown_attributes if kind not in listed]
            if missing:
                return False, (f"error {code} whose UNKNOWN-ATTRIBUTES "
                               f"({', '.join(f'0x{k:04x}' for k in listed) or 'absent'}) "
                               f"lacks {', '.join(f'0x{k:04x}' for k in missing)}")
        return True, f"error {code}"

    def __str__(self) -> str:
        return f"a STUN error {'/'.join(map(str, self.codes))}" if self.codes else "a STUN error"


def unknown_attributes_of(data: bytes) -> list[int]:
    """Attribute types listed in a message's UNKNOWN-ATTRIBUTES (parsed with the STUN crafter)."""
    from toolkit.crafters.stun import StunMessage, StunUnknownAttributes

    return [kind for attribute in StunMessage(data).attributes
            if isinstance(attribute, StunUnknownAttributes) for kind in attribute.types]


@dataclass(frozen=True, eq=False)
class Silence(Alternative):
    """Nothing relevant arrives for `seconds` (default: the run's silence window)."""

    seconds: float | None = None

    def judge(self, data: bytes, conversation: Conversation, socket: LocalSocket) -> None:
        return None

    def __str__(self) -> str:
        return "silence"


@dataclass(frozen=True, eq=False)
class DtlsAlert(Alternative):
    """A DTLS alert record (content type 21)."""

    def judge(self, data: bytes, conversation: Conversation, socket: LocalSocket) -> tuple[bool, str] | None:
        return (True, "a DTLS alert") if data[:1] == b"\x15" else None

    def __str__(self) -> str:
        return "a DTLS alert"


def describe_datagram(data: bytes) -> str:
    """A short human description of what the target sent, for FAIL messages."""
    if not data:
        return "an empty datagram"
    first = data[0]
    if first < 4:
        kind = _stun_class(data) or "malformed"
        text = f"a STUN {kind} ({len(data)} bytes"
        message = _parse_stun(data)
        if not isinstance(message, str) and "ERROR-CODE" in message.attributes:
            code, reason = message.attributes["ERROR-CODE"]
            text += f", error {code} {reason}".rstrip()
        return text + ")"
    if 19 < first < 64:
        names = {20: "ChangeCipherSpec", 21: "alert", 22: "handshake", 23: "application data"}
        return f"a DTLS {names.get(first, f'record type {first}')} datagram ({len(data)} bytes)"
    if 127 < first < 192:
        return f"{'SRTCP' if is_rtcp(data) else 'SRTP'} ({len(data)} bytes)"
    return f"a datagram with first byte {first} ({len(data)} bytes)"


def is_background(data: bytes, socket: LocalSocket) -> bool:
    """Traffic that answers nothing a step sent: see the module docstring."""
    if is_stun_request(data) or is_rtcp(data):
        return True
    owner = socket.owner
    tid = stun_transaction_id(data)
    return owner is not None and tid is not None and tid in owner.own_tids


class Expect(Step):
    """Wait for one of `any_of` on socket `via`; anything else relevant is a FAIL."""

    def __init__(self, any_of: Sequence[Alternative] | Alternative, *, via: str = "main", about: str = "reply",
                 timeout: float | None = None) -> None:
        self.any_of = tuple(any_of) if isinstance(any_of, (list, tuple)) else (any_of,)
        if about not in ("reply", "any"):
            raise ValueError(f"about must be 'reply' or 'any', not {about!r}")
        self.via = via
        self.about = about
        self.timeout = timeout

    def describe(self) -> str:
        return f"Expect({' | '.join(map(str, self.any_of))}, via={self.via})"

    def _relevant(self, data: bytes, socket: LocalSocket) -> bool:
        if self.about == "reply":
            tid = stun_transaction_id(data)
            return tid is not None and tid == socket.last_request_tid and _stun_class(data) in ("success", "error")
        return not is_background(data, socket)

    async def run(self, conversation: Conversation) -> None:
        settings = conversation.settings
        socket = conversation.socket(self.via)
        silences = [alt for alt in self.any_of if isinstance(alt, Silence)]
        window = max((alt.seconds or settings.silence for alt in silences), default=0.0)
        wait = window if silences else (self.timeout or settings.reply_timeout)
        deadline = conversation.loop.time() + wait
        seen = socket.mark
        expected = " or ".join(map(str, self.any_of))
        while True:
            while seen < len(socket.inbox):
                received = socket.inbox[seen]
                data = received.data
                seen += 1
                if not self._relevant(data, socket):
                    continue
                if self.about == "reply" and received.addr != socket.last_request_to:
                    raise CheckFailed(
                        f"on {self.via}: the answer came from {received.addr[0]}:{received.addr[1]}, not from "
                        f"{socket.last_request_to[0]}:{socket.last_request_to[1]} where the request went"
                    )
                for alternative in self.any_of:
                    verdict = alternative.judge(data, conversation, socket)
                    if verdict is None:
                        continue
                    ok, what = verdict
                    if not ok:
                        raise CheckFailed(f"on {self.via}: expected {expected}; got {what}")
                    conversation.note(f"{self.via}: {what}")
                    return
                raise CheckFailed(f"on {self.via}: expected {expected}; got {describe_datagram(data)}")
            if not await socket.wait_arrival(seen, deadline):
                break
        if silences:
            conversation.note(f"{self.via}: silence for {window:g} s")
            return
        raise CheckFailed(f"on {self.via}: expected {expected}; nothing came back within {wait:g} s")


# -- media -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Echo(Step):
    """Send one SRTP packet with a unique payload and expect the target's echo of it.

    `via` is the socket it leaves from (default: the session's current one); `arrives_on`
    the socket the echo must reach (default: the session's current one). With
    `present=False`, no echo of it may reach any socket within the silence window.
    """

    session: str = "main"
    via: str | None = None
    arrives_on: str | None = None
    present: bool = True
    marker: bool = False

    async def run(self, conversation: Conversation) -> None:
        require_echo(conversation, "whether the target takes this media")
        session = conversation.session(self.session)
        if session.peer.state != "connected":
            raise CheckFailed(f"session {self.session} is {session.peer.state}, not connected: no media to echo")
        token = send_media(conversation, session, via=self.via, marker=self.marker)
        target = self.arrives_on or session.socket.name
        await expect_echo(conversation, session, token, arrives_on=target if self.present else None,
                          present=self.present)

    def describe(self) -> str:
        where = f", via={self.via}" if self.via else ""
        return f"Echo(session={self.session}{where}{'' if self.present else ', absent'})"


@dataclass(frozen=True, eq=False)
class Alive(Step):
    """The session still works, proven by whatever the target gives.

    Against an echo target (and one whose behaviour the run has not learned) this is `Echo()`:
    our media comes back. Against one that does not echo, a sign of life newer than this step
    (see `liveness`): it answers a consent check, or its own SRTP or SRTCP arrives. With `media`,
    the target must show it still takes our media on the session's socket: an RTCP report that
    counts the packets sent now (a target that does not report SKIPs: it cannot show it).

    With `learn` (the sanity conversation), the step learns, once per run, whether the target
    echoes, and if not, whether it reports on our stream; `Target.echoes` and `Target.reports`
    keep the answers and the notes say them. A target that does neither must at least show a
    sign of life within the run's `report_timeout`.
    """

    session: str = "main"
    media: bool = False
    learn: bool = False
    marker: bool = False
    """Our media carries the RTP marker bit (second byte 239 with payload type 111: still RTP)."""

    async def run(self, conversation: Conversation) -> None:
        session = conversation.session(self.session)
        if session.peer.state != "connected":
            raise CheckFailed(f"session {self.session} is {session.peer.state}, not connected")
        target = conversation.target
        if self.learn and target.echoes is None:
            await self._learn(conversation, session)
            return
        if self.learn:
            conversation.note(f"target echoes: {'yes' if target.echoes else 'no'} (known before this "
                              "conversation)")
        if target.echoes is not False:
            await Echo(self.session, marker=self.marker).run(conversation)
        elif self.media:
            await self._media_taken(conversation, session)
        else:
            wait = conversation.settings.reply_timeout + conversation.settings.consent_interval
            sign = await wait_for_sign(conversation, session, len(session.events), wait)
            if sign is None:
                raise CheckFailed(f"session {self.session}: no sign of life within {wait:g} s (no consent check "
                                  f"answered, no SRTP or SRTCP of the target's own)")
            conversation.note(f"session {self.session} is alive: {sign.text}")

    async def _media_taken(self, conversation: Conversation, session: Session) -> None:
        if not conversation.target.reports:
            raise CheckSkipped("the target neither echoes media nor reports on our stream in RTCP (learned in the "
                               "sanity conversation): whether it still takes the session's media is not observable")
        wait = conversation.settings.report_timeout
        since = len(session.events)
        sequence = send_silence(conversation, session, packets=5, marker=self.marker)
        sign = await wait_for_sign(conversation, session, since, wait, lambda sign: counts_sequence(sign, sequence))
        if sign is None:
            raise CheckFailed(f"session {self.session}: no RTCP report counting the media sent now (up to sequence "
                              f"{sequence}) within {wait:g} s: the target no longer takes the session's media")
        if sign.socket != session.socket.name:
            raise CheckFailed(f"session {self.session}: the target's report on our media arrived on socket "
                              f"{sign.socket}, not on {session.socket.name}: its media destination moved")
        conversation.note(f"session {self.session} still takes media: {sign.text}")

    async def _learn(self, conversation: Conversation, session: Session) -> None:
        settings = conversation.settings
        target = conversation.target
        token = send_media(conversation, session)
        try:
            await expect_echo(conversation, session, token, arrives_on=session.socket.name)
        except CheckFailed:
            if echoes_of(session, token):
                raise  # it echoes, but wrongly
        else:
            target.echoes = True
            conversation.note("target echoes: yes (our media came back)")
            return
        since = len(session.events)
        sequence = send_silence(conversation, session, packets=5)
        sign = await wait_for_sign(conversation, session, since, settings.report_timeout,
                                   lambda sign: counts_sequence(sign, sequence))
        if sign is not None:
            what = sign.text
        else:
            others = signs_since(session, since)
            if not others:
                raise CheckFailed(f"no echo of session {session.name}'s media within {settings.reply_timeout:g} s, "
                                  f"and no sign of life within {settings.report_timeout:g} s after it: no RTCP "
                                  f"report on our stream, no media of its own, no consent check answered")
            what = (f"it sent no RTCP report counting our packets within {settings.report_timeout:g} s, so checks "
                    f"that need to see it take media SKIP; it is alive: {others[0].text}")
        target.echoes, target.reports = False, sign is not None
        conversation.note(f"target echoes: no (our media did not come back within {settings.reply_timeout:g} s; "
                          f"{what}): checks that judge by echoes SKIP")

    def describe(self) -> str:
        what = ", learn whether it echoes" if self.learn else ", media taken" if self.media else ""
        return f"Alive(session={self.session}{what})"


async def dropped_by_report(conversation: Conversation, session: Session,
                            make: Callable[[int], Sequence[tuple[bytes, bytes | None]]], what: str) -> None:
    """Against a target that does not echo: it must drop the forged datagrams `make(genuine)`
    returns, each claiming a later sequence number of the session's stream than a genuine packet
    sent just before them, and then still take the genuine originals of those sequence numbers
    (when given): an authentication failure changes no state. Judged by its RTCP reports on our
    stream: the next one must count the genuine packet and no forged one (a report's highest
    sequence number reaches a packet it took), the one after that the originals, with no more
    loss. SKIPs against a target that does not report on our stream."""
    if not conversation.target.reports:
        raise CheckSkipped("the target neither echoes media nor reports on our stream in RTCP (learned in the "
                           f"sanity conversation): whether it takes {what} is not observable")
    genuine = send_silence(conversation, session, packets=1)
    pairs = list(make(genuine))
    for forged, _ in pairs:
        session.socket.send(forged, session.remote)
    sign = await next_report(conversation, session, genuine, f"the genuine packet sent before {what}")
    taken = [sequence_of(forged) for forged, _ in pairs
             if len(forged) >= 12 and counts_sequence(sign, sequence_of(forged))]  # a runt claims no number
    if taken:
        raise CheckFailed(f"{what} was taken: {sign.text}, which includes sequence {taken[0]} of {what}")
    conversation.note(f"{what} dropped: {sign.text}, the genuine packet before them")
    originals = [original for _, original in pairs if original is not None]
    if not originals:
        return
    for original in dict.fromkeys(originals):
        session.socket.send(original, session.remote)
    last = sequence_of(originals[-1])
    after = await next_report(conversation, session, last, f"the genuine packets with the sequence numbers of {what}")
    if after.lost != sign.lost:
        raise CheckFailed(f"the genuine packets with the sequence numbers of {what} were dropped: {after.text}, up "
                          f"from {sign.lost}: {what} changed the session's state")
    conversation.note(f"the genuine packets with their sequence numbers were then taken: {after.text}")


async def next_report(conversation: Conversation, session: Session, sequence: int, what: str) -> Sign:
    """The target's next RTCP report on our stream, which must count `sequence` (`what`)."""
    wait = conversation.settings.report_timeout
    since = len(session.events)
    sign = await wait_for_sign(conversation, session, since, wait, lambda sign: sign.kind == "report")
    if sign is None or not counts_sequence(sign, sequence):
        raise CheckFailed(f"no RTCP report counting {what} (sequence {sequence}) within {wait:g} s: the target "
                          "stopped taking the session's media")
    return sign


def sequence_of(datagram: bytes) -> int:
    """The RTP sequence number in an (S)RTP datagram's clear header."""
    return int.from_bytes(datagram[2:4], "big")


def send_silence(conversation: Conversation, session: Session, *, packets: int, marker: bool = False) -> int:
    """Send `packets` Opus silence frames of the session's stream (what any audio receiver takes),
    all with the marker bit if asked; return the RTP sequence number of the last one."""
    from toolkit.peer.audio import SILENCE_PACKET

    sequence = 0
    for _ in range(packets):
        session.peer.send_rtp(SILENCE_PACKET, timestamp=next_timestamp(conversation), marker=marker)
        for data, _ in session.take_output():
            sequence = sequence_of(data)
            session.socket.send(data, session.remote)
    return sequence


def require_echo(conversation: Conversation, what: str) -> None:
    """SKIP unless the target echoes media: against one that does not (a realtime voice service),
    no echo proves nothing, so a check that judges `what` by echoes cannot judge it. A target whose
    behaviour the run has not learned (a check played alone) is held to the echo contract."""
    if conversation.target.echoes is False:
        raise CheckSkipped(f"the target does not echo media (learned in the sanity conversation), and this "
                           f"check judges {what} by echoes")


def next_timestamp(conversation: Conversation) -> int:
    """The RTP timestamp of the conversation's next 20 ms packet (48 kHz)."""
    counter = conversation.scratch.get("rtp_timestamp", 0) + 960
    conversation.scratch["rtp_timestamp"] = counter
    return counter


def media_token(conversation: Conversation) -> bytes:
    return b"rtcgate-echo:" + conversation.rng.getrandbits(64).to_bytes(8, "big")


def protected_media(conversation: Conversation, session: Session, *, token: bytes | None = None,
                    marker: bool = False, payload_type: int | None = None) -> tuple[bytes, bytes]:
    """One SRTP packet of the session's stream carrying a unique token, not sent: (token, datagram).
    Only for echo judgments: SKIPs against a target that does not echo (see `require_echo`)."""
    require_echo(conversation, "what the target does with media")
    token = token or media_token(conversation)
    session.peer.send_rtp(token, timestamp=next_timestamp(conversation), marker=marker, payload_type=payload_type)
    (data, _), = session.take_output()
    return token, data


def send_media(conversation: Conversation, session: Session, *, via: str | None = None, marker: bool = False,
               token: bytes | None = None) -> bytes:
    """Send one SRTP packet from the session's peer through socket `via`; return its payload token."""
    token, data = protected_media(conversation, session, token=token, marker=marker)
    socket = conversation.socket(via) if via else session.socket
    socket.send(data, session.remote)
    return token


def echoes_of(session: Session, token: bytes, since: int = 0) -> list[str]:
    """Names of the sockets an echo of `token` arrived on, from event index `since`. SKIPs against
    a target that does not echo (see `require_echo`): no echo there proves nothing."""
    require_echo(session.conversation, "what the target does with media")
    return [origin for origin, _, event in session.events[since:]
            if isinstance(event, RtpReceived) and token in event.packet]


async def expect_echo(conversation: Conversation, session: Session, token: bytes, *, arrives_on: str | None,
                      present: bool = True, timeout: float | None = None) -> None:
    """Wait for the echo of `token` (on `arrives_on`), or, with present=False, make sure none comes."""
    require_echo(conversation, "what the target does with media")
    loop = conversation.loop
    wait = timeout or (conversation.settings.reply_timeout if present else conversation.settings.silence)
    deadline = loop.time() + wait
    while True:
        origins = echoes_of(session, token)
        if origins and present:
            if arrives_on is not None and origins[0] != arrives_on:
                raise CheckFailed(f"the echo of media sent by session {session.name} arrived on socket {origins[0]}, "
                                  f"not on {arrives_on}")
            conversation.note(f"echo arrived on {origins[0]}")
            return
        if origins and not present:
            raise CheckFailed(f"media the target must have dropped was echoed (to socket {origins[0]})")
        left = deadline - loop.time()
        if left <= 0:
            break
        await asyncio.sleep(min(left, 0.01))
    if present:
        raise CheckFailed(f"no echo of session {session.name}'s media within {wait:g} s "
                          f"(the target must send received audio back)")


@dataclass(frozen=True, eq=False)
class BindsNothing(Step):
    """After a check from socket `via` that must not bind it: media from `via` is not taken.

    A target that takes media from addresses that never sent any check (full ICE agents often
    do; MIGRATE-02 judges that) echoes it whatever the check did, so then a fresh socket is the
    control: the check bound `via` only if media from `via` is taken while the control's is
    not, or if the echo now goes back to `via`. Judged by echoes: SKIPs against a target that
    does not echo.
    """

    via: str
    session: str = "main"

    async def run(self, conversation: Conversation) -> None:
        via = self.via
        owner = conversation.session(self.session)
        token = send_media(conversation, owner, via=via)
        await asyncio.sleep(conversation.settings.silence)
        origins = echoes_of(owner, token)
        if not origins:
            conversation.note(f"media from {via} was dropped: nothing bound it")
            return
        if via in origins:
            raise CheckFailed(f"media from {via} was echoed back to {via}: the check moved the media there")
        control = await conversation.open_socket(f"{via}-control", owner)
        control_token = send_media(conversation, owner, via=control.name)
        await asyncio.sleep(conversation.settings.silence)
        if not echoes_of(owner, control_token):
            raise CheckFailed(f"media from {via} was echoed (to socket {origins[0]}) while media from a fresh address "
                              f"is dropped: the check bound {via}")
        conversation.note(f"media from {via} was echoed to {origins[0]}, and so was media from {control.name}, "
                          "which sent no check: the target takes media from any address (MIGRATE-02 judges "
                          "that), and the check moved nothing")

    def describe(self) -> str:
        return f"BindsNothing(via={self.via})"


def srtp_from_target(conversation: Conversation, socket: str, since: float = 0.0) -> int:
    """How many SRTP packets (not SRTCP) the target sent to `socket` from conversation time `since`."""
    return sum(1 for d in conversation.datagrams if d.direction == "in" and d.socket == socket and d.time >= since
               and 127 < d.data[0] < 192 and not is_rtcp(d.data))


class NoMediaTo(Step):
    """No SRTP from the target reached any of `sockets` in the whole conversation: sessions whose
    handshake must have failed (`why` says so in the FAIL message) carry no media."""

    def __init__(self, *sockets: str, why: str = "whose handshake must have failed") -> None:
        self.sockets = sockets
        self.why = why

    async def run(self, conversation: Conversation) -> None:
        for socket in self.sockets:
            count = srtp_from_target(conversation, socket)
            if count:
                raise CheckFailed(f"the target sent {count} SRTP packet(s) to {socket}, {self.why}")

    def describe(self) -> str:
        return f"NoMediaTo({', '.join(self.sockets)})"


@dataclass(frozen=True, eq=False)
class Connected(Step):
    """The session's DTLS association is still up: the probe peer is still connected, where a
    target that reset the session on what came before would have closed or failed it."""

    session: str = "main"

    async def run(self, conversation: Conversation) -> None:
        session = conversation.session(self.session)
        if session.peer.state != "connected":
            raise CheckFailed(f"the probe peer is {session.peer.state}: the DTLS session was reset")

    def describe(self) -> str:
        return f"Connected(session={self.session})"


@dataclass(frozen=True, eq=False)
class SrtpProfile(Step):
    """use_srtp chose `profile` for the session, whose peer offered only that one; `name` is the
    profile's RFC name, for the note."""

    profile: str
    name: str
    session: str = "main"

    async def run(self, conversation: Conversation) -> None:
        used = conversation.session(self.session).peer.srtp_keys.profile
        if used != self.profile:
            raise CheckFailed(f"negotiated profile {used}, not {self.profile}")
        conversation.note(f"media carried under {self.name}")

    def describe(self) -> str:
        return f"SrtpProfile({self.profile}, session={self.session})"


@dataclass(frozen=True, eq=False)
class Renegotiate(Step):
    """The probe asks to renegotiate the session's DTLS: an epoch-1 ClientHello as DTLS client, a
    HelloRequest as DTLS server. What the target does about it is for the steps after."""

    session: str = "main"

    async def run(self, conversation: Conversation) -> None:
        session = conversation.session(self.session)
        session.peer.renegotiate()
        session.flush()

    def describe(self) -> str:
        return f"Renegotiate(session={self.session})"


# -- control ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Wait(Step):
    """Let time pass: `seconds`, or by default the run's silence window (`--silence`), the time a
    target gets to act on what was just sent — answer it, reset a session, end a closed one."""

    seconds: float | None = None

    async def run(self, conversation: Conversation) -> None:
        await asyncio.sleep(conversation.settings.silence if self.seconds is None else self.seconds)

    def describe(self) -> str:
        return "Wait(the silence window)" if self.seconds is None else f"Wait({self.seconds:g} s)"


@dataclass(frozen=True, eq=False)
class Do(Step):
    """Anything the other steps cannot say: `action(conversation)`, sync or async; it may raise
    CheckFailed or CheckSkipped like any step."""

    action: Callable[[Conversation], Awaitable[None] | None]
    label: str = ""

    async def run(self, conversation: Conversation) -> None:
        result = self.action(conversation)
        if inspect.isawaitable(result):
            await result

    def describe(self) -> str:
        return f"Do({self.label or getattr(self.action, '__name__', 'action')})"


@dataclass(frozen=True, eq=False)
class Require(Step):
    """SKIP the check unless `condition(conversation)` returns None; otherwise it returns the reason."""

    condition: Callable[[Conversation], str | None]
    label: str = ""

    async def run(self, conversation: Conversation) -> None:
        reason = self.condition(conversation)
        if reason:
            raise CheckSkipped(reason)

    def describe(self) -> str:
        return f"Require({self.label or getattr(self.condition, '__name__', 'condition')})"
