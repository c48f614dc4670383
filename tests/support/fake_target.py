"""A target with no server behind it, for tests of the runner and of checks that need only its
signaling: it answers every offer with a fixed SDP, or, without one, fails the way an unreachable
server does."""
from __future__ import annotations

from toolkit.conformance.targets import Target
from toolkit.peer import PeerError


class FakeTarget(Target):
    kind = "fake"

    def __init__(self, answer: str | None = None, *, name: str = "target") -> None:
        self.answer = answer
        self.name = name

    @property
    def description(self) -> str:
        return f"fake {self.name}"

    @property
    def replay_args(self) -> list[str]:
        return ["--signaling", f"fake:{self.name}"]

    async def offer(self, sdp: str, *, timeout: float):
        if self.answer is None:
            raise PeerError("connection refused")
        return self.answer, None
