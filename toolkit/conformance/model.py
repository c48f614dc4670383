"""What a conformance run is made of: checks as data, the run's settings, results and evidence.

A `Check` is one catalog ID: its profile, its RFC reference, a title saying what "pass"
means, and a conversation — a tuple of steps (see `steps`) that one runner plays against a
target. Steps raise `CheckFailed` with the evidence in words, or `CheckSkipped` with the
reason the check does not apply; a conversation that runs to its end passes.

`Settings` is what one run is played with, in three parts: the run's own (seed, strictness,
timeouts), the VOICE checks' tolerances (`VoiceTolerances`) and the PERF checks' load and
thresholds (`PerfThresholds`, the user's: each field's metadata gives the `--perf-*` option
that sets it, its help and unit, for the command line, the pytest plugin and replay lines).

This module is the bottom of the conformance package: it imports nothing of it, so every other
module may import it (a step is typed here by its shape, `StepLike`, not by `steps.Step`).

Each check judges one `Requirement` (see `requirements`): an RFC's MUST, an RFC's SHOULD, or
this project's hardening POLICY. A conversation that fails makes the check FAIL only when its
level gates the run (`Strictness`); otherwise it is a WARN, reported with the cited text.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class StepLike(Protocol):
    """What the runner needs of a step of a conversation (`steps.Step` is the base of the catalog's):
    `await step.run(conversation)` with a `conversation.Conversation`, typed loosely here because
    this module sits below the live side, and a `describe()` for messages."""

    async def run(self, conversation: Any) -> None: ...

    def describe(self) -> str: ...


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
    steps: tuple[StepLike, ...]
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
    """Set when the check itself dropped the datagram (simulated loss): it never reached the peer
    (`NOT_SENT` for one the probe produced but the check kept off the wire: not in the pcap)."""


NOT_SENT = "dropped by the check, never sent"
"""`Datagram.note` of a datagram the peer produced but the check kept off the wire (not in the pcap)."""


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


# -- the settings of a run ---------------------------------------------------------------------


RFC_CONSENT_TIMEOUT = 30.0
"""RFC 7675 §5.1."""


@dataclass(frozen=True, slots=True)
class VoiceTolerances:
    """The VOICE checks' tolerances (see checks/voice.py for how each is used)."""

    vad_frame: float = 0.030
    """The longest VAD frame the target may decide on: webrtcvad takes 10–30 ms (Silero: 32 ms)."""
    edge_slack: float = 0.030
    """How far the target's VAD and the probe's energy detector may disagree on a speech edge."""
    event_slack: float = 0.120
    """Client-clock slack for an event or packet: packetisation, jitter buffer, transit, SCTP, scheduling."""
    think_time: float = 0.2
    """The target model's think time before its first audio (the embedded ToneModel's default)."""
    pacing_jitter: float = 0.030
    """VOICE-05: how far a response packet may arrive from its real-time 20 ms slot."""


def _threshold(default: float, unit: str, text: str, *, zero: bool = False) -> Any:
    """A PERF threshold field: its default, and the metadata its `--perf-*` option is made from —
    the unit (the option's metavar), the help text, and whether 0 is a valid value."""
    return field(default=default, metadata={"unit": unit, "help": text, "zero": zero})


@dataclass(frozen=True, slots=True)
class PerfThresholds:
    """The PERF checks' load and thresholds: the user's (see checks/perf.py). Each field is set by
    the option `--perf-<name with dashes>` (`perf_option`); an int field takes a whole number ≥ 1,
    a float one a positive number (≥ 0 where its metadata says `zero`)."""

    sessions: int = _threshold(6, "N", "legit sessions of the PERF load runs")
    window: float = _threshold(1.0, "S", "seconds per measured window of PERF-01..03: the quiet one and each "
                                         "attack kind's")
    voice_window: float = _threshold(2.2, "S", "seconds per window of PERF-04: one utterance and its answer")
    attack_pps: float = _threshold(500.0, "PPS", "packets per second of each attack window")
    setup_ms: float = _threshold(1000.0, "MS", "PERF-01: the p99 of offer → first SRTP must be within this")
    p99_ratio: float = _threshold(2.0, "X", "PERF-02: legit p99 RTT under attack below X × the quiet p99")
    rtt_floor_ms: float = _threshold(5.0, "MS", "PERF-02: a quiet p99 below this counts as this", zero=True)
    """On loopback, sub-millisecond p99s double on a scheduler's whim, which says nothing about the target."""
    rss_growth_mib: float = _threshold(16.0, "MIB", "PERF-03: resident memory may grow less than this under attack")
    voice_slack_ms: float = _threshold(100.0, "MS", "PERF-04: voice-to-voice p99 under attack may exceed the "
                                                    "quiet p99 by this much", zero=True)

    def replay_args(self) -> list[str]:
        """The options that give the thresholds that differ from the defaults, as a replay line says them."""
        arguments = []
        for threshold in dataclasses.fields(self):
            value = getattr(self, threshold.name)
            if value != threshold.default:
                arguments += [perf_option(threshold.name), as_typed(value)]
        return arguments


def as_typed(value: float) -> str:
    """A number as a command line says it (1000, not 1000.0) that parses back to the same value."""
    text = f"{value:.12g}"
    return text if float(text) == value else repr(value)


def perf_option(name: str) -> str:
    """The command-line option of the PerfThresholds field `name`: sessions → --perf-sessions."""
    return "--perf-" + name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Settings:
    """What one run is played with: the run's own settings here, the VOICE tolerances in `voice`,
    the PERF thresholds in `perf`."""

    seed: int = 0
    strict: Level = Level.MUST
    """The weakest requirement level whose violations FAIL (`--strict`); weaker ones WARN."""
    silence: float = 0.5
    """How long "no answer" is waited for. Loopback and LAN targets answer within milliseconds."""
    reply_timeout: float = 2.0
    connect_timeout: float = 10.0
    consent_timeout: float = RFC_CONSENT_TIMEOUT
    """The target's consent timeout; ICE-06 waits this long plus slack."""
    consent_interval: float = 1.0
    """How often the probe peers send consent checks (well below any target's consent timeout)."""
    report_timeout: float = 10.0
    """How long a target that does not echo may take to report on our stream in RTCP, once per run
    (RFC 3550 §6.2: reports every 5 s or so, randomised by 0.5–1.5)."""
    local_host: str = "127.0.0.1"
    dtls_role: str = "auto"
    """The probe peers' `dtls_role`: auto (offer actpass), client (offer active) or server (offer passive)."""
    planned: frozenset[str] = frozenset()
    """The IDs of the checks this run plays (run_checks sets it), so a check may start work a later
    one needs ahead of it (PERF-04's load run beside PERF-01's, on the reference's voice twin)."""
    voice: VoiceTolerances = VoiceTolerances()
    perf: PerfThresholds = PerfThresholds()
