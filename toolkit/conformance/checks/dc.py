"""DC — data channels: SCTP over DTLS (RFC 8261), DCEP (RFC 8832), WebRTC data channels (RFC 8831).

The probe offers m=application next to its audio; a target whose answer rejects it (port 0, or
no such section) SKIPs these checks. The probe's side of SCTP and DCEP is aiortc's association
behind the toolkit's own adapter (toolkit/peer/shell/datachannel.py), fed by the probe peer's DTLS.

Like the media checks, which need the target to send received audio back, DC-02, DC-04 and
DC-05 need it to send each data-channel message back on the channel it came on, as it came
(the reference server does in both modes, except on its voice events channel); DC-01 SKIPs a
target that does not. The label and
protocol a target holds are not observable through an echo; what is: the DATA_CHANNEL_ACK on
the channel's stream, and the echo arriving on that stream.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from toolkit.conformance.checks.common import answer_lines, require
from toolkit.conformance.conversation import Conversation, Session
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import Alive, Connect, Do, Offer, Require, expect_echo, send_media
from toolkit.peer import DtlsData, PeerError
from toolkit.peer.shell.datachannel import DEFAULT_MAX_MESSAGE_SIZE, Association, DataChannel, DataChannelError

LARGE_BINARY = 100 * 1024 + 7
"""DC-04's binary message: over 64 KiB, and not a whole number of SCTP chunks."""
LARGE_TEXT = 70_001
MESSAGES_PER_CHANNEL = 12


# -- the data channel of a conversation's session ------------------------------------------------


def data_channel_accepted(conversation: Conversation, session: str = "main") -> str | None:
    """SKIP reason when the answer rejects the offered m=application (port 0, or no such section)."""
    for line in answer_lines(conversation, session):
        if line.startswith("m=application"):
            fields = line.split()
            if len(fields) > 1 and fields[1] == "0":
                return "the target rejected the data channel (its answer has m=application with port 0)"
            return None
    return "the target rejected the data channel (its answer has no m=application section)"


def offered_max_message_size(conversation: Conversation, session: str = "main") -> int:
    """The answer's a=max-message-size; RFC 8841 §6.1: 65536 when absent, 0 for "any size"."""
    for line in answer_lines(conversation, session):
        if line.startswith("a=max-message-size:"):
            try:
                return int(line.split(":", 1)[1])
            except ValueError:
                raise CheckFailed(f"the answer's {line!r} is not a number") from None
    return DEFAULT_MAX_MESSAGE_SIZE


def with_data_channel(session: str = "main", **peer: object) -> tuple:
    """Offer with m=application, SKIP if the answer rejects it, connect ICE and DTLS."""
    return (Offer(session=session, peer={"datachannel": True, **peer}),
            Require(lambda conversation: data_channel_accepted(conversation, session), "a data channel"),
            Connect(session=session))


async def associate(conversation: Conversation, session_name: str = "main") -> Association:
    """The session's SCTP association, up: fed by the peer's DTLS, stopped when the check ends."""
    key = f"association:{session_name}"
    existing = conversation.scratch.get(key)
    if isinstance(existing, Association):
        return existing
    session = conversation.session(session_name)
    answer = session.peer.answer
    association = Association(lambda packet: _send_sctp(session, packet), now=conversation.now,
                              remote_port=answer.sctp_port or 5000,
                              remote_max_message_size=offered_max_message_size(conversation, session_name),
                              dtls_role=session.peer.dtls_role or "client")
    pump = asyncio.get_running_loop().create_task(_feed(session, association))

    async def stop() -> None:
        pump.cancel()
        await association.close()

    conversation.cleanups.append(stop)
    conversation.scratch[key] = association
    association.start()
    try:
        await association.wait_connected(conversation.settings.connect_timeout)
    except DataChannelError as exc:
        raise CheckFailed(f"session {session_name}: {exc} (the answer accepted the data channel)") from None
    conversation.note(f"session {session_name}: SCTP association up")
    return association


def _send_sctp(session: Session, packet: bytes) -> None:
    if session.peer.state == "connected":
        session.peer.send_dtls(packet)
        session.flush()


async def _feed(session: Session, association: Association) -> None:
    """Every DtlsData the peer emitted, from the first, into the association with its arrival time."""
    index = 0
    while True:
        await session.more_events(index)
        for _, at, event in session.events[index:]:
            if isinstance(event, DtlsData):
                association.receive(event.data, at)
        index = len(session.events)


async def open_channel(conversation: Conversation, association: Association, label: str, **options) -> DataChannel:
    """Open a channel with DCEP and wait for the target's DATA_CHANNEL_ACK."""
    channel = association.open_channel(label, **options)
    try:
        await channel.wait_open(conversation.settings.reply_timeout)
    except DataChannelError:
        raise CheckFailed(f"no DATA_CHANNEL_ACK for channel {label!r} (stream {channel.stream_id}) within "
                          f"{conversation.settings.reply_timeout:g} s") from None
    return channel


def token(conversation: Conversation) -> str:
    return conversation.rng.getrandbits(48).to_bytes(6, "big").hex()


async def echoed(conversation: Conversation, channel: DataChannel, messages: list[str | bytes], *,
                 ordered: bool = True, timeout: float | None = None) -> None:
    """Send `messages` on `channel`; each must come back on it, as it went (type included), in
    order when `ordered`."""
    seen = len(channel.messages)
    for message in messages:
        channel.send(message)
    arrived = await channel.wait_messages(seen + len(messages), timeout or conversation.settings.reply_timeout)
    back = [message.data for message in arrived[seen:seen + len(messages)]]
    what = f"channel {channel.label!r} ({'ordered' if channel.ordered else 'unordered'}, stream {channel.stream_id})"
    if len(back) < len(messages):
        raise CheckFailed(f"{what}: {len(back)} of {len(messages)} messages came back; {_difference(messages, back)}")
    if ordered and back != messages:
        position = next(i for i, (a, b) in enumerate(zip(back, messages)) if a != b or type(a) is not type(b))
        raise CheckFailed(f"{what}: message {position} came back as {_describe(back[position])}, "
                          f"expected {_describe(messages[position])}")
    if not ordered and Counter(map(_key, back)) != Counter(map(_key, messages)):
        raise CheckFailed(f"{what}: the messages that came back are not the ones sent: {_difference(messages, back)}")


def _difference(sent: list[str | bytes], back: list[str | bytes]) -> str:
    """What became of the messages that did not come back as sent: altered (something else came
    back in their place: content or type changed) or missing (nothing came back for them)."""
    absent = Counter(map(_key, sent)) - Counter(map(_key, back))
    strange = Counter(map(_key, back)) - Counter(map(_key, sent))
    lost = [m for m in sent if absent[_key(m)] > 0]
    altered, missing = min(sum(strange.values()), len(lost)), max(0, sum(absent.values()) - sum(strange.values()))
    odd = [m for m in back if strange[_key(m)] > 0]
    parts = []
    if altered:
        parts.append(f"{altered} altered (came back as {', '.join(map(_describe, odd[:2]))}"
                     f"{' …' if len(odd) > 2 else ''} instead of {', '.join(map(_describe, lost[:2]))}"
                     f"{' …' if len(lost) > 2 else ''})")
    if missing:
        parts.append(f"{missing} missing ({', '.join(map(_describe, lost[altered:altered + 4]))}"
                     f"{' …' if len(lost) > altered + 4 else ''})")
    return "; ".join(parts) or "none altered or missing"


def _key(message: str | bytes) -> tuple[str, bytes]:
    return (type(message).__name__, message.encode() if isinstance(message, str) else message)


def _describe(message: str | bytes) -> str:
    kind = "text" if isinstance(message, str) else "binary"
    body = message if len(message) <= 24 else message[:24]
    return f"{kind} {body!r}{'…' if len(message) > 24 else ''} ({len(message)} {'chars' if kind == 'text' else 'bytes'})"


# -- DC-01 -----------------------------------------------------------------------------------


async def open_for_judging(conversation: Conversation, association: Association, label: str,
                           **options) -> DataChannel:
    """A channel a check needs in order to judge something else: one that does not open SKIPs the
    check, since opening channels is DC-05's (and DC-02's) to judge."""
    try:
        return await open_channel(conversation, association, label, **options)
    except CheckFailed as exc:
        raise CheckSkipped(f"{exc}: without an open channel there is nothing to judge here (DC-05 judges "
                           "channels that do not open)") from None


async def empty_messages(conversation: Conversation) -> None:
    """RFC 8831 §6.6: an empty message (PPID 56 or 57) is processed as an empty message. Sent between
    two non-empty ones on an ordered and an unordered channel; the empty ones must come back empty,
    of their type. If the non-empty ones do not come back either, the target does not echo (or its
    channels carry nothing, DC-05's to judge) and the empty ones cannot be judged: SKIP."""
    association = await associate(conversation)
    channels = [await open_for_judging(conversation, association, "rtcgate-dc01-ordered"),
                await open_for_judging(conversation, association, "rtcgate-dc01-unordered", ordered=False)]
    tag = token(conversation)
    sent = {channel.label: [f"rtcgate before {tag}", "", b"", f"rtcgate after {tag}".encode()] for channel in channels}
    seen = {channel.label: len(channel.messages) for channel in channels}
    for channel in channels:
        for message in sent[channel.label]:
            channel.send(message)
    wait = conversation.settings.reply_timeout
    arrivals = await asyncio.gather(*(channel.wait_messages(seen[channel.label] + 4, wait) for channel in channels))
    for channel, arrived in zip(channels, arrivals):
        back = [message.data for message in arrived[seen[channel.label]:]]
        keys = Counter(map(_key, back))
        messages = sent[channel.label]
        what = f"channel {channel.label!r} (stream {channel.stream_id})"
        if not all(keys[_key(message)] for message in (messages[0], messages[3])):
            raise CheckSkipped(f"{what}: the non-empty messages around the empty ones did not come back as sent "
                               f"({_difference([messages[0], messages[3]], back)}); the target does not echo data-"
                               "channel messages, so how it processes empty ones is not observable (DC-05 judges "
                               "channels that carry nothing)")
        require(keys[_key("")] == 1 and keys[_key(b"")] == 1,
                f"{what}: the empty text (PPID 56) and empty binary (PPID 57) messages did not come back as empty "
                f"messages of their type, while the non-empty ones around them did: {_difference(messages, back)}")
    conversation.note("an empty text and an empty binary message came back empty, of their type, on an ordered "
                      "and an unordered channel")


# -- DC-05 -----------------------------------------------------------------------------------


def mixed_messages(conversation: Conversation, name: str) -> list[str | bytes]:
    """Non-empty text and binary messages (PPIDs 51, 53)."""
    tag = token(conversation)
    messages: list[str | bytes] = []
    for index in range(MESSAGES_PER_CHANNEL):
        text = f"rtcgate {name} #{index} {tag}"
        messages.append(text.encode() if index % 3 == 1 else text)
    return messages


async def both_ways(conversation: Conversation) -> None:
    association = await associate(conversation)
    ordered = await open_channel(conversation, association, "rtcgate-dc05-ordered")
    unordered = await open_channel(conversation, association, "rtcgate-dc05-unordered", ordered=False)
    await asyncio.gather(echoed(conversation, ordered, mixed_messages(conversation, "ordered")),
                         echoed(conversation, unordered, mixed_messages(conversation, "unordered"), ordered=False))
    conversation.note(f"association up {1000 * (association.connected_at or 0):.0f} ms into the check; "
                      f"ordered and unordered channels acknowledged; {2 * MESSAGES_PER_CHANNEL} messages "
                      f"(text and binary) came back, the ordered ones in order")
    for channel in association.remote_channels:
        conversation.note(f"the target opened channel {channel.label!r} (protocol {channel.protocol!r}, "
                          f"stream {channel.stream_id})")


# -- DC-02 -----------------------------------------------------------------------------------


DCEP_CHANNELS = (
    ("rtcgate-dc02", "rtcgate.v1", {}),
    ("", "", {}),
    ("ünïcødé ✓ label", "chat/π", {}),
    ("L" * 1000, "P" * 200, {}),
    ("rtcgate-dc02-rexmit", "", {"ordered": False, "max_retransmits": 0}),
    ("rtcgate-dc02-timed", "", {"max_packet_life_time": 500}),
)
"""(label, protocol, options): plain; empty; UTF-8 (lengths count bytes, RFC 8832 §5.1); long;
partially reliable by retransmissions (unordered) and by lifetime."""


async def dcep_opens(conversation: Conversation) -> None:
    association = await associate(conversation)
    tag = token(conversation)
    channels = []
    for label, protocol, options in DCEP_CHANNELS:
        channel = association.open_channel(label, protocol=protocol, **options)
        channels.append(channel)
    reply_timeout = conversation.settings.reply_timeout
    await association.wait_for(lambda: all(c.state != "connecting" for c in channels), reply_timeout)
    unopened = [f"{c.label[:24]!r} (protocol {c.protocol[:16]!r})" for c in channels if c.state != "open"]
    require(not unopened, f"no DATA_CHANNEL_ACK within {reply_timeout:g} s for "
                          f"{len(unopened)} of {len(channels)} channels: {', '.join(unopened)}")
    await asyncio.gather(*(echoed(conversation, channel, [f"rtcgate dc02 {index} {tag}", f"{tag}".encode()],
                                  ordered=channel.ordered)
                           for index, channel in enumerate(channels)))
    conversation.note(f"{len(channels)} channels opened with DATA_CHANNEL_OPEN and acknowledged (empty, UTF-8 and "
                      f"1000-byte labels, protocols, partial reliability); each echoed on its own stream")


# -- DC-03 -----------------------------------------------------------------------------------


def malformed_dcep(used_stream: int, dtls_role: str = "client") -> list[tuple[str, int, bytes]]:
    """(what, stream id, DCEP message) for DC-03, each sent in the association's own TSN order, on
    streams of the probe's parity (RFC 8832 §6: even for the DTLS client, odd for the server) but
    the last, which takes the target's. One goes to `used_stream`, an open channel's: RFC 8832 asks
    the opener to pick an unused stream and says nothing of a receiver's duty, so that channel may
    be disturbed (reset, re-opened, left alone) and is not judged afterwards."""
    from toolkit.crafters.sctp import DataChannelOpen

    own = 0 if dtls_role == "client" else 1
    wrong = "an odd stream (the DTLS server's)" if own == 0 else "an even stream (the DTLS client's)"
    return [
        ("DATA_CHANNEL_OPEN whose label length runs 200 bytes past the payload", 100 + own,
         bytes(DataChannelOpen(label=b"x", label_length=201))),
        ("DATA_CHANNEL_OPEN whose protocol length is 65535 with 1 byte present", 102 + own,
         bytes(DataChannelOpen(label=b"l", protocol=b"p", protocol_length=0xFFFF))),
        ("DATA_CHANNEL_OPEN of unknown channel type 0x7f", 104 + own,
         bytes(DataChannelOpen(channel_type=0x7F, label=b"rtcgate-dc03-type"))),
        ("DATA_CHANNEL_OPEN cut to 5 bytes", 106 + own, bytes(DataChannelOpen(label=b"abc"))[:5]),
        ("DATA_CHANNEL_OPEN whose label is not UTF-8", 108 + own, bytes(DataChannelOpen(label=b"\xff\xfe\xc0"))),
        ("DCEP message of unknown type 0x09", 110 + own, b"\x09" + bytes(11)),
        ("DATA_CHANNEL_ACK on a stream never opened", 112 + own, b"\x02"),
        ("DATA_CHANNEL_OPEN on the stream of an open channel", used_stream,
         bytes(DataChannelOpen(label=b"rtcgate-dc03-again"))),
        ("DATA_CHANNEL_OPEN on the reserved stream 65535", 65535, bytes(DataChannelOpen(label=b"reserved"))),
        (f"DATA_CHANNEL_OPEN on {wrong}", 115 - own, bytes(DataChannelOpen(label=b"wrong-parity"))),
    ]


def malformed_sctp(association: Association) -> list[tuple[str, bytes]]:
    """(what, SCTP packet) for DC-03: syntactically broken chunks, each in a packet with this
    association's ports, verification tag and a right CRC32c unless the point is otherwise."""
    import struct

    from scapy.packet import Raw

    from toolkit.crafters.sctp import sctp_packet

    tag = association.verification_tag
    ports = {"src_port": association.local_port, "dst_port": association.remote_port}
    old_tsn = (association.next_tsn - 1) & 0xFFFFFFFF  # already acknowledged: a duplicate if taken as DATA

    def packet(*chunks: bytes, verification_tag: int = tag, checksum: int | None = None) -> bytes:
        return bytes(sctp_packet(Raw(b"".join(chunks)), verification_tag=verification_tag, checksum=checksum,
                                 **ports))

    def chunk(kind: int, flags: int, body: bytes, length: int | None = None) -> bytes:
        length = 4 + len(body) if length is None else length
        return struct.pack("!BBH", kind, flags, length) + body + bytes(-len(body) % 4)

    data_header = struct.pack("!IHHI", old_tsn, 0, 0, 51)
    heartbeat = chunk(4, 0, struct.pack("!HH", 1, 8) + b"rtcg")
    return [
        ("a chunk with length 0", packet(chunk(0, 3, data_header + b"zero", length=0))),
        ("a chunk whose length runs past the packet", packet(chunk(4, 0, struct.pack("!HH", 1, 8) + b"rtcg",
                                                                   length=512))),
        ("a DATA chunk shorter than its 16-byte header", packet(chunk(0, 3, data_header[:4]))),
        ("a DATA chunk with no user data", packet(chunk(0, 3, data_header))),
        ("a SACK announcing 1000 gap blocks and 1000 duplicates it does not carry",
         packet(chunk(3, 0, struct.pack("!IIHH", old_tsn, 65536, 1000, 1000)))),
        ("an INIT with a parameter of length 0 (verification tag 0)",
         packet(chunk(1, 0, struct.pack("!IIHHI", 1, 65536, 8, 8, 1) + struct.pack("!HH", 0x8000, 0)),
                verification_tag=0)),
        ("an INIT bundled after another chunk", packet(heartbeat, chunk(1, 0, struct.pack("!IIHHI", 1, 65536, 8, 8, 1)),
                                                       verification_tag=0)),
        ("a chunk of unknown type 0x3f (stop and discard)", packet(chunk(0x3F, 0, b"rtcgate!"))),
        ("a chunk of unknown type 0xbf (skip and report) whose length runs past the packet",
         packet(chunk(0xBF, 0, b"rtcgate!", length=4000))),
        ("a HEARTBEAT whose info parameter length runs past the chunk",
         packet(chunk(4, 0, struct.pack("!HH", 1, 4096) + b"rtcg"))),
        ("a HEARTBEAT with info parameter length 0", packet(chunk(4, 0, struct.pack("!HH", 1, 0) + b"rtcg"))),
        ("a RE-CONFIG whose parameter length runs past the chunk",
         packet(chunk(130, 0, struct.pack("!HHIII", 13, 2048, 1, 0, old_tsn)))),
        ("a FORWARD-TSN cut inside its stream entry", packet(chunk(192, 0, struct.pack("!I", old_tsn) + b"\x00\x01"))),
        ("an ERROR chunk with a cause of length 0", packet(chunk(9, 0, struct.pack("!HH", 1, 0) + bytes(4)))),
        ("a COOKIE ECHO with a forged cookie", packet(chunk(10, 0, bytes(range(24))))),
        ("a packet shorter than the SCTP common header", packet(heartbeat)[:7]),
        ("a HEARTBEAT with a wrong CRC32c", packet(heartbeat, checksum=0xDEADBEEF)),
    ]


async def hostile(conversation: Conversation) -> None:
    session = conversation.session("main")
    association = await associate(conversation)
    keep = await open_channel(conversation, association, "rtcgate-dc03-keep")
    used = await open_channel(conversation, association, "rtcgate-dc03-reused")
    await echoed(conversation, keep, [f"before {token(conversation)}"])
    dcep = malformed_dcep(used.stream_id, session.peer.dtls_role or "client")
    for _, stream, message in dcep:
        await association.send_message(stream, 50, message)
    await asyncio.sleep(conversation.settings.silence / 2)
    try:
        require(association.state == "connected", "the target ended the association")
        await echoed(conversation, keep, [f"after DCEP {token(conversation)}"])
        await echoed(conversation, await open_channel(conversation, association, "rtcgate-dc03-new"),
                     [f"new {token(conversation)}"])
    except CheckFailed as exc:
        ended = f" (the session's DTLS is {session.peer.state})" if session.peer.state != "connected" else ""
        raise CheckFailed(f"after {len(dcep)} malformed DCEP messages ({'; '.join(what for what, _, _ in dcep[:3])}; "
                          f"…) the session's data channels stopped working{ended}: {exc}") from None
    conversation.note(f"{len(dcep)} malformed DCEP messages: the open channel still echoes, a new one opens (the "
                      f"channel whose stream {used.stream_id} got a second DATA_CHANNEL_OPEN is not judged)")
    accepted = [f"{what} (stream {stream})" for what, stream, _ in dcep
                if stream in association.acknowledged_streams and stream != used.stream_id]
    if accepted:
        conversation.note(f"the target acknowledged {len(accepted)} of them: {'; '.join(accepted)}")
    packets = malformed_sctp(association)
    for index, (what, data) in enumerate(packets, start=1):
        try:
            session.peer.send_dtls(data)
        except PeerError as exc:
            raise CheckFailed(f"the session's DTLS ended during the malformed SCTP packets: {exc}") from None
        session.flush()
        if await heartbeat_answered(conversation, session, association):
            continue
        if association.aborted or association.state == "closed":
            conversation.note(f"the target aborted the association after malformed SCTP packet {index} of "
                              f"{len(packets)}, {what} (RFC 9260 allows an ABORT for a protocol violation); "
                              "its other services are checked next")
            return
        alive = await media_state(conversation, session)
        raise CheckFailed(f"after malformed SCTP packet {index} of {len(packets)}, {what}, the target stopped "
                          f"answering HEARTBEATs on the association without aborting it ({alive})")
    await echoed(conversation, keep, [f"after SCTP {token(conversation)}"])
    conversation.note(f"{len(packets)} malformed SCTP packets ({'; '.join(what for what, _ in packets)}), each "
                      "followed by a HEARTBEAT the target answered: the association kept working"
                      + (f"; the probe's aiortc could not parse {len(association.failures)} of the target's packets"
                         if association.failures else ""))


async def heartbeat_answered(conversation: Conversation, session: Session, association: Association) -> bool:
    """Send a well-formed HEARTBEAT with a fresh nonce; True when its HEARTBEAT ACK comes back
    (RFC 9260 §8.3: an established association answers every one)."""
    import struct

    from scapy.packet import Raw

    from toolkit.crafters.sctp import sctp_packet

    nonce = conversation.rng.randbytes(8)
    info = struct.pack("!HH", 1, 4 + len(nonce)) + nonce
    packet = sctp_packet(Raw(struct.pack("!BBH", 4, 0, 4 + len(info)) + info), src_port=association.local_port,
                         dst_port=association.remote_port, verification_tag=association.verification_tag)
    session.peer.send_dtls(bytes(packet))
    session.flush()
    return await association.wait_for(lambda: any(nonce in body for body in association.heartbeat_acks),
                                      conversation.settings.reply_timeout)


async def media_state(conversation: Conversation, session: Session) -> str:
    """What the session's media says about the target, for a FAIL message (only an echo target tells)."""
    if conversation.target.echoes is False:
        return "it does not echo media, so its media path tells nothing more"
    try:
        await expect_echo(conversation, session, send_media(conversation, session), arrives_on=session.socket.name)
    except CheckFailed:
        return "no media echo either: a hang or a crash"
    return "media still echoes"


async def fresh_session_echoes(conversation: Conversation) -> None:
    association = await associate(conversation, "after")
    channel = await open_channel(conversation, association, "rtcgate-dc03-after")
    await echoed(conversation, channel, [f"fresh {token(conversation)}"])
    conversation.note("a new session's data channel works")


# -- DC-04 -----------------------------------------------------------------------------------


SMALLEST_FRAGMENTED = 4096
"""Below this a=max-message-size, messages at the limit may fit in a few SCTP chunks: nothing to judge."""


async def large_messages(conversation: Conversation) -> None:
    """Messages of LARGE_BINARY bytes and LARGE_TEXT characters, or of the target's
    a=max-message-size when that is smaller: RFC 8841 §6.1 lets a target state any limit and
    makes 65536 the limit when the attribute is absent, so a smaller limit is no failure."""
    association = await associate(conversation)
    limit = association.remote_max_message_size
    if 0 < limit < SMALLEST_FRAGMENTED:
        raise CheckSkipped(f"the answer's a=max-message-size is {limit}: messages that small need no reassembly "
                           f"to judge")
    binary_size = LARGE_BINARY if limit == 0 else min(LARGE_BINARY, limit)
    text_size = LARGE_TEXT if limit == 0 else min(LARGE_TEXT, limit)
    if binary_size < LARGE_BINARY:
        stated = ("absent: 65536, RFC 8841 §6.1" if not any(line.startswith("a=max-message-size:")
                                                            for line in answer_lines(conversation)) else "stated")
        conversation.note(f"the answer's a=max-message-size is {limit} ({stated}): messages of that size instead "
                          f"of {LARGE_BINARY} bytes")
    channel = await open_channel(conversation, association, "rtcgate-dc04")
    binary = conversation.rng.randbytes(binary_size)
    text = "".join(conversation.rng.choice("rtcgate-0123456789") for _ in range(text_size))
    await echoed(conversation, channel, [binary, text], timeout=3 * conversation.settings.reply_timeout)
    conversation.note(f"a {binary_size}-byte binary and a {text_size}-character text message came back intact")


CHECKS = (
    Check("DC-01", "core", "RFC 8831 §6.6",
          "empty text and binary messages (PPIDs 56, 57) are processed as empty messages, on ordered and unordered "
          "channels",
          (*with_data_channel(), Do(empty_messages, "empty messages between non-empty ones"))),
    Check("DC-02", "core", "RFC 8832 §5, §6",
          "DCEP DATA_CHANNEL_OPEN from the client opens a channel; label and protocol round-trip",
          (*with_data_channel(), Do(dcep_opens, "DATA_CHANNEL_OPEN for unusual labels and protocols"))),
    Check("DC-03", "security", "RFC 8832 §5, RFC 9260 §3, CVE-2020-6514",
          "DATA_CHANNEL_OPEN with label length past the payload, unknown channel type, malformed SCTP chunks "
          "→ no crash",
          (*with_data_channel(), Do(hostile, "malformed DCEP, then malformed SCTP"), Alive(),
           *with_data_channel("after"), Do(fresh_session_echoes, "a new session's data channel"))),
    Check("DC-04", "core", "RFC 8831 §6.6, RFC 8841 §6",
          "large messages (> 64 KiB, or the target's a=max-message-size when smaller; 65536 when absent) "
          "fragment and reassemble",
          (*with_data_channel(), Do(large_messages, "100 KiB binary and 70 KB text messages"))),
    Check("DC-05", "core", "RFC 8831 §6, RFC 8832 §4, RFC 8261",
          "the negotiated data channel opens ordered and unordered channels; text and binary messages both ways, "
          "in order on the ordered one",
          (*with_data_channel(), Do(both_ways, "ordered and unordered channels echo"))),
)
