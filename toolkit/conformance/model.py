"""What a conformance run is made of: checks as data, their results, and the evidence.

A `Check` is one catalog ID: its profile, its RFC reference, a title saying what "pass"
means, and a conversation — a tuple of steps (see `steps`) that one runner plays against a
target. Steps raise `CheckFailed` with the evidence in words, or `CheckSkipped` with the
reason the check does not apply; a conversation that runs to its end passes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.conformance.steps import Step

Address = tuple[str, int]

PROFILES = ("core", "lite", "security", "voice", "perf")


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    XFAIL = "XFAIL"
    """Failed, and the expected-failures file says the team knows."""
    XPASS = "XPASS"
    """Passed although the expected-failures file says it fails: the file is out of date."""

    @property
    def bad(self) -> bool:
        """FAIL and XPASS make the run exit 1."""
        return self in (Status.FAIL, Status.XPASS)


class CheckFailed(Exception):
    """The target did what the check forbids, or failed to do what it requires."""


class CheckSkipped(Exception):
    """The check does not apply to this target, or cannot run yet; the message says why."""


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    profile: str
    rfc: str
    title: str
    steps: tuple[Step, ...]
    timeout: float = 20.0
    """Wall-clock budget for the whole conversation; going over is a FAIL."""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"check {self.id}: profile {self.profile!r} is not one of {', '.join(PROFILES)}")

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]


@dataclass(slots=True)
class Datagram:
    """One datagram as it crossed a local socket; `time` counts from the check's start."""

    time: float
    direction: str
    """"out" (we sent it) or "in" (the target sent it)."""
    socket: str
    local: Address
    remote: Address
    data: bytes
    note: str = ""
    """Set when the check itself dropped the datagram (simulated loss): it never reached the peer."""


@dataclass(slots=True)
class CheckResult:
    check: Check
    status: Status
    message: str
    """Why it failed or was skipped; for a PASS, a one-line summary of what was observed."""
    duration: float
    seed: int
    notes: list[str] = field(default_factory=list)
    """Observations worth reporting whatever the status (e.g. which alternative the target chose)."""
    datagrams: list[Datagram] = field(default_factory=list)
    keylog: list[bytes] = field(default_factory=list)
    """SSLKEYLOGFILE lines of every probe peer in the conversation."""
    srtp_keys: list[tuple[Address, Address, str, bytes]] = field(default_factory=list)
    """(sender, receiver, profile, master key || salt) for each direction media could take."""
    local_ports: dict[str, Address] = field(default_factory=dict)
    xfail_comment: str | None = None
    replay: str = ""
    """The command line that replays exactly this check with the same seed."""
    artifacts: dict[str, str] = field(default_factory=dict)
    """Evidence files written for this result: kind ("pcap", "keylog", "srtp_keys") -> path."""
