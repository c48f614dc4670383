"""What a conformance run is made of: checks as data, their results, and the evidence.

A `Check` is one catalog ID: its profile, its RFC reference, a title saying what "pass"
means, and a conversation — a tuple of steps (see `steps`) that one runner plays against a
target. Steps raise `CheckFailed` with the evidence in words, or `CheckSkipped` with the
reason the check does not apply; a conversation that runs to its end passes.

Each check judges one `Requirement` (see `requirements`): an RFC's MUST, an RFC's SHOULD, or
this project's hardening POLICY. A conversation that fails makes the check FAIL only when its
level gates the run (`Strictness`); otherwise it is a WARN, reported with the cited text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.conformance.steps import Step

Address = tuple[str, int]

PROFILES = ("core", "lite", "security", "voice", "perf")
TIMED_PROFILES = ("voice", "perf")
"""Profiles of checks judged by the clock (pacing, latency, load): run beside other traffic on a
busy machine, they can be late for reasons that are not the target's."""


class Level(enum.StrEnum):
    """What kind of requirement a check judges, strongest first."""

    MUST = "MUST"
    """An RFC's MUST, MUST NOT, REQUIRED, SHALL: breaking it breaks interoperability or security."""
    SHOULD = "SHOULD"
    """An RFC's SHOULD, SHOULD NOT, RECOMMENDED: there may be valid reasons to differ."""
    POLICY = "POLICY"
    """This project's hardening advice beyond the RFCs, with the attack it prevents."""

    @property
    def rank(self) -> int:
        return tuple(Level).index(self)


STRICTNESS = {"must": Level.MUST, "should": Level.SHOULD, "policy": Level.POLICY}
"""`--strict` values: the weakest level whose violations still FAIL the run (MUST always does)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """The requirement one check judges, as a report cites it."""

    level: Level
    cite: str
    """Where the text stands: "RFC 8489 §9.1.3"; for POLICY, the reference behind the advice."""
    text: str
    """MUST/SHOULD: the RFC's sentence, quoted. POLICY: the advice, in one sentence."""
    prevents: str = ""
    """POLICY: the attack or failure the advice prevents."""
    note: str = ""
    """Why this level, where a reader might expect another (e.g. the RFC asks for the opposite)."""

    def __post_init__(self) -> None:
        if not self.cite.strip() or not self.text.strip():
            raise ValueError("a requirement needs a citation and its text")
        if self.level is Level.POLICY and not self.prevents.strip():
            raise ValueError(f"POLICY requirement ({self.cite}) must say what attack it prevents")


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    """The conversation failed, but the requirement's level does not gate this run (SHOULD or
    POLICY without --strict): reported, exit 0."""
    SKIP = "SKIP"
    XFAIL = "XFAIL"
    """Failed, and the expected-failures file says the team knows."""
    XPASS = "XPASS"
    """Passed although the expected-failures file says it fails: the file is out of date."""
    ERROR = "ERROR"
    """No verdict: rtcgate itself failed (a check or the toolkit raised), or the run stopped
    before the catalog (the target cannot be reached). Not the target's fault as far as we
    know: the run exits 2, and reports show an error, not a failure."""

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
    """Wall-clock budget for the whole conversation; going over is a failed conversation."""
    requirement: Requirement | None = None
    """What the check judges; the catalog attaches it from `requirements`. A check of your own
    without one judges a MUST: it gates the run."""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"check {self.id}: profile {self.profile!r} is not one of {', '.join(PROFILES)}")

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def level(self) -> Level:
        return self.requirement.level if self.requirement else Level.MUST

    def failed_status(self, strict: Level = Level.MUST) -> Status:
        """What a failed conversation makes this check: FAIL when its level gates the run, else WARN."""
        return Status.FAIL if self.level.rank <= strict.rank else Status.WARN


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
