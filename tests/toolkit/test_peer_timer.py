"""PeerTimer, the one asyncio timer every shell around a ProbePeer keeps (the UDP shell, the
conformance conversation, the voice benchmark): moved only when the peer's deadline moves, and
never handing the peer a time before its deadline, however early the loop fires."""
from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.peer import PeerTimer


@dataclass
class FakeHandle:
    when: float
    callback: object
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeLoop:
    now: float = 0.0
    handles: list[FakeHandle] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback) -> FakeHandle:
        self.handles.append(FakeHandle(when, callback))
        return self.handles[-1]


@dataclass
class FakePeer:
    deadline: float | None = None
    handled: list[float] = field(default_factory=list)

    def get_timer(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> None:
        self.handled.append(now)


def test_the_timer_moves_only_when_the_deadline_does():
    loop, peer, flushes = FakeLoop(), FakePeer(deadline=5.0), []
    timer = PeerTimer(loop, peer, lambda: flushes.append(loop.now))
    timer.rearm()
    timer.rearm()
    assert [(h.when, h.cancelled) for h in loop.handles] == [(5.0, False)]
    peer.deadline = 3.0
    timer.rearm()
    assert [(h.when, h.cancelled) for h in loop.handles] == [(5.0, True), (3.0, False)]
    peer.deadline = None
    timer.rearm()
    assert [h.cancelled for h in loop.handles] == [True, True] and len(loop.handles) == 2
    assert peer.handled == [] and flushes == []


def test_an_early_firing_hands_the_peer_its_deadline_then_flushes():
    loop, peer, flushes = FakeLoop(), FakePeer(deadline=3.0), []
    timer = PeerTimer(loop, peer, lambda: flushes.append(loop.now))
    timer.rearm()
    loop.now = 2.999  # call_at may fire a hair early
    loop.handles[-1].callback()
    assert peer.handled == [3.0] and flushes == [2.999]
    timer.rearm()  # the peer still asks for 3.0: fired timers are re-armed, not taken as current
    assert [h.when for h in loop.handles] == [3.0, 3.0]
    loop.now = 4.5
    loop.handles[-1].callback()
    assert peer.handled == [3.0, 4.5]


def test_cancel_drops_the_pending_call():
    loop, peer = FakeLoop(), FakePeer(deadline=1.0)
    timer = PeerTimer(loop, peer, lambda: None)
    timer.rearm()
    timer.cancel()
    timer.cancel()
    assert loop.handles[0].cancelled
    timer.rearm()  # the same deadline: nothing new while closing
    assert len(loop.handles) == 1
    peer.deadline = 2.0
    timer.rearm()
    assert [h.when for h in loop.handles] == [1.0, 2.0]
