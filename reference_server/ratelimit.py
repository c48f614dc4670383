"""A token bucket on the caller's clock: how the server bounds work it does for strangers.

The core answers some unauthenticated STUN requests (400, 401) because RFC 8489 says so, but
every answer costs a build and a send; under a flood those answers, not the drops, would eat
the core. The bucket lets a few through (every legit mistake and every conformance probe gets
its answer) and turns the rest into silence, which docs/architecture.md principle 2 allows anyway.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; starts full."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.rate >= 0 or not self.burst >= 0:
            raise ValueError(f"token bucket rate {self.rate} and burst {self.burst} must be numbers >= 0")
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        """Spend one token if there is one, after refilling for the time since the last call
        (none when the clock went back)."""
        updated = self.updated
        if updated is None or now > updated:
            if updated is not None:
                self.tokens = min(self.burst, self.tokens + (now - updated) * self.rate)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
