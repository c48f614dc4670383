"""The conversation's socket layer: which local socket (5-tuple) each of the peer's datagrams leaves from."""

from __future__ import annotations

import asyncio
import random

from toolkit.conformance.conversation import Conversation, Session
from toolkit.conformance.model import Settings


class ScriptedPeer:
    """Answers every datagram it receives with a STUN success for the same transaction, and
    queues one more datagram of its own (media) with it: just enough peer for `Session`."""

    state = "connected"
    remote = None

    def __init__(self) -> None:
        self.queued: list[tuple[bytes, tuple]] = []

    def receive_datagram(self, data: bytes, addr: tuple, now: float) -> None:
        self.queued.append((b"\x01\x01\x00\x00" + data[4:20], addr))
        self.queued.append((b"\x80\x00" + bytes(10), addr))

    def datagrams_to_send(self):
        queued, self.queued = self.queued, []
        return queued

    def next_event(self):
        return None

    def get_timer(self):
        return None


def binding_request(tid: bytes) -> bytes:
    return b"\x00\x01\x00\x00\x21\x12\xa4\x42" + tid


async def play() -> Conversation:
    conversation = Conversation(target=None, settings=Settings(), rng=random.Random(1))
    main = await conversation.open_socket("main")
    other = await conversation.open_socket("b")
    session = Session(conversation, "main", ScriptedPeer(), main)
    main.owner = other.owner = session
    target = ("127.0.0.1", 9)
    session.receive(binding_request(b"B" * 12), target, other)  # the target's check came in on b
    session.receive(binding_request(b"M" * 12), target, main)
    for socket in conversation.sockets.values():
        socket.transport.close()
    return conversation


def test_answers_to_stun_requests_leave_from_the_socket_the_request_arrived_on():
    conversation = asyncio.run(play())
    sent = [(d.socket, d.data[:2], d.data[8:20]) for d in conversation.datagrams if d.direction == "out"]
    assert (("b", b"\x01\x01", b"B" * 12) in sent and ("main", b"\x01\x01", b"M" * 12) in sent), sent
    media = [socket for socket, kind, _ in sent if kind == b"\x80\x00"]
    assert media == ["main", "main"]  # the peer's own output still leaves through the session's socket
