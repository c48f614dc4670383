"""rtcgate's pytest plugin: the conformance catalog as pytest items, and fixtures for your own checks.

Inert unless asked: it only adds options and fixtures. `pytest --rtc-whip URL` (or
`--rtc-calls-url URL`, `--rtc-signaling module:function`, `--rtc-reference`) adds one item per
catalog check, marked with its profile (`-m security`) and level (`-m must`), sanity first and
last. Every `--rtc-*` option is also an ini option of the same name with underscores
(`rtc_whip = URL` under `[tool.pytest.ini_options]`, `[pytest]` or `[tool:pytest]`); the command
line wins. A bad value (`--rtc-profile NOPE`, in either place) is a usage error (exit 4) saying
what is valid.

An item's setup plays its conversation, its call judges it: a FAIL is a test failure, a SHOULD or
POLICY finding passes with an `RtcgateFinding` warning unless `--rtc-strict` (or `--rtc-profile
hardened`) makes it gate, and anything that is no verdict on the target (rtcgate itself raised,
the target cannot be started) is a pytest ERROR. Each item records the RFC reference, level,
cited requirement, profile, verdict and replay command as `user_properties` (JUnit properties); a
finding's evidence (pcap, DTLS key log, replay command) is written under `--rtc-report-dir`
(default: `rtcgate-reports` in the rootdir) and named in its report (a section, the failure text,
`evidence_*` properties). At the end of the session the catalog's JUnit, JSON, SARIF and HTML
reports go there too. Fixtures: `rtc_target` (the target the options name), `rtc_check` (runs a
`Check` against it), `reference_server` (a reference server on free ports for the session),
`probe_peer` (a fresh sans-IO ProbePeer), `crafter` (the scapy crafters) and `rtc_fuzz_time`
(`--rtc-fuzz-time S`: fuzz for S seconds instead of replaying corpora). Heavy imports happen
only when used.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

PROFILES = ("core", "lite", "security", "voice", "perf")
LEVELS = ("must", "should", "policy")
DTLS_ROLES = ("auto", "client", "server")
REPORT_DIR = "rtcgate-reports"
"""The default report directory, in pytest's rootdir: never inside the installed package."""
_TARGET_OPTIONS = ("rtc_whip", "rtc_calls_url", "rtc_signaling", "rtc_reference")
_STATE = pytest.StashKey[dict]()


@dataclass(frozen=True)
class Option:
    """One `--rtc-*` option and its ini twin: `name` is the ini key and the dest, the flag is
    `--` + name with dashes."""

    name: str
    help: str
    kind: str = "value"
    """"value" (one, parsed), "flag" (ini: true/false), "list" (repeatable; ini: one per line) or
    "words" (repeatable; ini: space-separated)."""
    parse: Callable[[str], object] = str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    default: object = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def add_to(self, group, parser: pytest.Parser) -> None:
        if self.kind == "flag":
            group.addoption(self.flag, dest=self.name, action="store_true", default=None, help=self.help)
            parser.addini(self.name, self.help, type="bool", default=False)
            return
        many = self.kind in ("list", "words")
        group.addoption(self.flag, dest=self.name, metavar=self.metavar, type=self.parse, choices=self.choices,
                        action="append" if many else "store", default=None, help=self.help)
        parser.addini(self.name, self.help, type={"list": "linelist", "words": "args"}.get(self.kind, "string"))

    def value(self, config: pytest.Config):
        """The command line's value if given, else the ini file's, else the default."""
        given = config.getoption(self.name)
        if given is not None:
            return given
        written = config.getini(self.name)
        if self.kind == "flag":
            return bool(written)
        if self.kind in ("list", "words"):
            return [self.from_ini(item) for item in written]
        return self.from_ini(written) if str(written).strip() else self.default

    def from_ini(self, written) -> object:
        text = str(written).strip()  # a TOML number or bool arrives as one
        try:
            value = self.parse(text)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise pytest.UsageError(f"ini option {self.name}: {exc}") from None
        if self.choices is not None and value not in self.choices:
            raise pytest.UsageError(f"ini option {self.name}: {text!r} is not one of {', '.join(self.choices)}")
        return value


def _options() -> tuple[Option, ...]:
    from toolkit.commands.arguments import http_header, positive_number
    from toolkit.commands.check import perf_options

    return (
        Option("rtc_whip", "run the conformance catalog against this WHIP endpoint", metavar="URL"),
        Option("rtc_calls_url", "... against this realtime-calls endpoint", metavar="URL"),
        Option("rtc_signaling", "... through your signaling callable", metavar="MODULE:FUNCTION"),
        Option("rtc_reference", "... against a reference server started for the run", kind="flag"),
        Option("rtc_header", "an HTTP header for every WHIP request of --rtc-whip or --rtc-calls-url (repeatable; "
                             "ini: one per line), e.g. 'Authorization: Bearer TOKEN'; values never appear in reports",
               kind="list", parse=http_header, metavar="'NAME: VALUE'"),
        Option("rtc_expect_echo", "the target is an echo server: its sanity conversation fails unless our media "
                                  "comes back", kind="flag"),
        Option("rtc_profile", "comma-separated profiles to collect (default: all); 'hardened' gates on every level",
               metavar="NAMES"),
        Option("rtc_strict", "the weakest requirement level that fails (default must: SHOULD/POLICY findings warn)",
               choices=LEVELS),
        Option("rtc_only", "collect only this check (repeatable; ini: space-separated IDs)", kind="words",
               metavar="ID"),
        Option("rtc_seed", "seed of the run (default 0)", parse=int, metavar="N", default=0),
        Option("rtc_consent_timeout", "the target's consent timeout for ICE-06 (default 30; 3 for --rtc-reference)",
               parse=positive_number, metavar="S"),
        Option("rtc_fuzz_time", "fuzz each rtcgate fuzz target for S seconds (atheris) instead of replaying its "
                                "corpus (fixture rtc_fuzz_time)", parse=positive_number, metavar="S"),
        Option("rtc_dtls_role", "the probe's DTLS role: auto offers a=setup:actpass (default); client offers "
                                "active, server passive", choices=DTLS_ROLES, default="auto"),
        Option("rtc_report_dir", f"where evidence and reports go (default: {REPORT_DIR} in the rootdir; an ini "
                                 "value is relative to the ini file)", metavar="DIR"),
        *(Option(f"rtc_{perf.dest}", f"{perf.help} (default: {perf.default:g})", parse=perf.parse,
                 metavar=perf.metavar) for perf in perf_options()),
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rtcgate", "rtcgate conformance gate")
    for option in _options():
        option.add_to(group, parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rtcgate: an rtcgate conformance catalog check")
    for profile in PROFILES:
        config.addinivalue_line("markers", f"{profile}: rtcgate checks of the {profile} profile")
    for level in LEVELS:
        config.addinivalue_line("markers", f"{level}: rtcgate checks judging an RFC {level.upper()} (or POLICY)")
    options = SimpleNamespace(**{option.name: option.value(config) for option in _options()})
    options.rtc_report_dir = _report_dir(config)
    state = {"options": options, "played": []}
    if _requested(options) or options.rtc_profile or options.rtc_only:
        state["checks"] = _select(options)
    config.stash[_STATE] = state


def _report_dir(config: pytest.Config) -> Path:
    """--rtc-report-dir is relative to where pytest was invoked, the ini value to the ini file's folder."""
    given = config.getoption("rtc_report_dir")
    if given is not None:
        return config.invocation_params.dir / given
    written = config.getini("rtc_report_dir").strip()
    if written:
        return (config.inipath.parent if config.inipath else config.rootpath) / written
    return config.rootpath / REPORT_DIR


def _select(options: SimpleNamespace) -> list:
    from toolkit.commands.check import SelectionError, choose_checks

    try:
        return choose_checks(options.rtc_profile, options.rtc_only, profile_option="--rtc-profile",
                             only_option="--rtc-only")
    except SelectionError as exc:
        raise pytest.UsageError(str(exc)) from None


class RtcgateFinding(UserWarning):
    """A SHOULD or POLICY requirement the target does not meet, in a run that does not gate on it."""


def _requested(options: SimpleNamespace) -> bool:
    return any(getattr(options, name) for name in _TARGET_OPTIONS)


def _state(config: pytest.Config) -> dict:
    return config.stash[_STATE]


def _target(config: pytest.Config):
    """The target the options name, started once per session and stopped at its end."""
    state = _state(config)
    if "target" not in state:
        from toolkit.conformance.targets import ReferenceTarget, make_target

        options = state["options"]
        target = make_target(whip=options.rtc_whip, calls_url=options.rtc_calls_url, signaling=options.rtc_signaling,
                             reference=options.rtc_reference, headers=options.rtc_header)
        if isinstance(target, ReferenceTarget):
            target.consent_timeout = options.rtc_consent_timeout or 3.0
            if options.rtc_dtls_role == "server":
                target.dtls_role = "client"
        if options.rtc_expect_echo:
            target.echoes = True
        config.add_cleanup(target.stop)
        target.start()
        state["target"] = target
    return state["target"]


def _settings(options: SimpleNamespace):
    from toolkit.commands.check import DEFAULT_CONSENT_TIMEOUT, perf_options, perf_thresholds, strictness
    from toolkit.conformance.model import Settings

    perf = {option.dest: getattr(options, f"rtc_{option.dest}", None) for option in perf_options()}
    return Settings(seed=options.rtc_seed, consent_timeout=options.rtc_consent_timeout or DEFAULT_CONSENT_TIMEOUT,
                    strict=strictness(options.rtc_strict, options.rtc_profile),
                    dtls_role=options.rtc_dtls_role or "auto", perf=perf_thresholds(perf))


def _attach(node: pytest.Item, result, when: str) -> list[str]:
    """Record what the reports show of `result` on the test's report; write a finding's evidence
    and return the lines naming its files."""
    from toolkit.reports.common import requirement_fields
    from toolkit.reports.conformance import needs_evidence
    from toolkit.reports.evidence import write_evidence

    check = result.check
    node.user_properties += [("rfc", check.rfc), *requirement_fields(check).items(), ("profile", check.profile),
                             ("verdict", result.status.value), ("replay", result.replay)]
    if not needs_evidence(result):
        return []
    report_dir = _state(node.config)["options"].rtc_report_dir
    write_evidence(result, report_dir)
    files = {kind: report_dir / path for kind, path in result.artifacts.items()}
    node.user_properties += [(f"evidence_{kind}", str(path)) for kind, path in files.items()]
    lines = [f"evidence {kind}: {path}" for kind, path in files.items()]
    node.add_report_section(when, "rtcgate evidence", "\n".join([*lines, f"replay: {result.replay}"]))
    return lines


class CheckError(Exception):
    """A catalog check FAILed; carries the result for the report."""

    def __init__(self, result) -> None:
        super().__init__(result.message)
        self.result = result


class CatalogItem(pytest.Item):
    def __init__(self, *, check, sanity_position: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.sanity_position = sanity_position
        self.result = None
        self.evidence: list[str] = []
        self.add_marker("rtcgate")
        self.add_marker(check.profile)
        self.add_marker(check.level.value.lower())

    def setup(self) -> None:
        """Play the conversation. What keeps it from giving a verdict is an ERROR of this phase."""
        from toolkit.conformance.model import Status
        from toolkit.conformance.runner import run_check
        from toolkit.conformance.targets import TargetError

        state = _state(self.config)
        if "unstartable" in state:
            pytest.skip(f"the target cannot be reached: {state['unstartable']}")
        if state.get("broken"):
            pytest.skip(f"the sanity conversation found no target to judge: {state['broken']}")
        try:
            target = _target(self.config)
        except TargetError as exc:
            state["unstartable"] = str(exc)
            pytest.fail(f"the target cannot be reached: {exc}", pytrace=False)
        state.setdefault("started", (datetime.datetime.now(datetime.UTC), time.monotonic()))
        result = self.result = asyncio.run(run_check(target, self.check, _settings(state["options"])))
        state["played"].append((self.sanity_position, result))
        if self.sanity_position == "before" and result.status is not Status.PASS:
            why = "rtcgate itself failed" if result.status is Status.ERROR else "the target cannot be reached"
            result.status = Status.ERROR  # as in `rtcgate check`: no verdict, the catalog cannot run
            state["broken"] = result.message = f"{why}: {result.message}"
        if self.sanity_position == "after" and result.status is Status.FAIL:
            result.message = f"the target stopped working during the run: {result.message}"
        if result.status is Status.ERROR:
            lines = _attach(self, result, "setup")
            pytest.fail("\n".join([f"{self.check.id} ERROR (no verdict on the target): {result.message}",
                                   *result.notes[-3:], *lines, f"replay: {result.replay}"]), pytrace=False)
        self.evidence = _attach(self, result, "call")

    def runtest(self) -> None:
        """Judge what setup played."""
        from toolkit.conformance.model import Status
        from toolkit.reports.common import requirement_line

        result = self.result
        if result.status is Status.SKIP:
            pytest.skip(result.message)
        if result.status is Status.WARN:
            self.warn(RtcgateFinding(f"{self.check.id} WARN: {result.message} "
                                     f"[{requirement_line(self.check)}] replay: {result.replay}"))
        if result.status is Status.FAIL:
            raise CheckError(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CheckError):
            result = excinfo.value.result
            from toolkit.reports.common import requirement_line

            return "\n".join([f"{self.check.id} FAILED: {result.message}", *result.notes[-10:],
                              f"requirement: {requirement_line(self.check)}",
                              *self.evidence, f"replay: {result.replay}"])
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return "rtcgate", None, f"{self.check.id} [{self.check.profile}] {self.check.title}"


class Catalog(pytest.Collector):
    def collect(self):
        from toolkit.conformance.checks import SANITY

        yield CatalogItem.from_parent(self, name="SANITY-before", check=SANITY, sanity_position="before")
        for check in _state(self.config)["checks"]:
            yield CatalogItem.from_parent(self, name=check.id, check=check)
        yield CatalogItem.from_parent(self, name="SANITY-after", check=SANITY, sanity_position="after")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if _requested(_state(config)["options"]):
        items.extend(Catalog.from_parent(session, name="rtcgate").collect())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The catalog's four reports, as `rtcgate check` writes them, from the items that played."""
    state = session.config.stash.get(_STATE, {})
    if not state.get("played") or "target" not in state:
        return
    from toolkit.conformance.runner import RunResult
    from toolkit.reports.conformance import write_reports

    settings = _settings(state["options"])
    target = state["target"]
    started_wall, started = state["started"]
    run = RunResult(target.description, settings.seed, started_wall.isoformat(timespec="seconds"),
                    time.monotonic() - started,
                    results=[result for position, result in state["played"] if position is None],
                    sanity=[result for position, result in state["played"] if position is not None],
                    strict=settings.strict, target_echoes=target.echoes)
    try:
        state["reports"] = write_reports(run, state["options"].rtc_report_dir)
    except OSError as exc:
        state["reports_error"] = f"{exc.strerror or exc}: {getattr(exc, 'filename', '')}"


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, {})
    if "reports" in state:
        paths = state["reports"]
        terminalreporter.write_line(f"rtcgate reports: {paths['html']} (also {paths['junit'].name}, "
                                    f"{paths['json'].name}, {paths['sarif'].name}; evidence under "
                                    f"{paths['html'].parent / 'evidence'})")
    elif "reports_error" in state:
        terminalreporter.write_line(f"rtcgate reports: not written: {state['reports_error']}", red=True)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rtc_target(pytestconfig: pytest.Config):
    """The target named by --rtc-whip / --rtc-calls-url / --rtc-signaling / --rtc-reference (or their ini options)."""
    if not _requested(_state(pytestconfig)["options"]):
        pytest.skip("no rtcgate target: pass --rtc-whip URL, --rtc-calls-url URL, --rtc-signaling M:F or --rtc-reference")
    return _target(pytestconfig)


@pytest.fixture
def rtc_check(rtc_target, pytestconfig: pytest.Config, request: pytest.FixtureRequest):
    """run(check) → CheckResult against `rtc_target`; the RFC reference (and a finding's evidence)
    goes into the JUnit XML. A check that rtcgate itself fails to play fails the test, never
    returns a result to judge."""
    from toolkit.conformance.model import Status
    from toolkit.conformance.runner import run_check

    def run(check, *, seed: int | None = None):
        import dataclasses

        settings = _settings(_state(pytestconfig)["options"])
        if seed is not None:
            settings = dataclasses.replace(settings, seed=seed)
        result = asyncio.run(run_check(rtc_target, check, settings))
        _attach(request.node, result, "call")
        if result.status is Status.ERROR:
            pytest.fail(f"{check.id} ERROR (rtcgate itself failed): {result.message}", pytrace=False)
        return result

    return run


@pytest.fixture(scope="session")
def reference_server():
    """A reference server (echo media, 3 s consent timeout) on free loopback ports; `.whip_url`, `.http_url`."""
    from toolkit.conformance.targets import ReferenceTarget

    server = ReferenceTarget()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rtc_fuzz_time(pytestconfig: pytest.Config) -> float | None:
    """Seconds to fuzz each target (--rtc-fuzz-time, else the rtc_fuzz_time ini value); None: replay only."""
    return next(option for option in _options() if option.name == "rtc_fuzz_time").value(pytestconfig)


@pytest.fixture
def probe_peer():
    """A fresh sans-IO ProbePeer with a fixed seed (drive it yourself, or through `rtc_check` steps)."""
    import random

    from toolkit.peer import ProbePeer

    return ProbePeer(rng=random.Random(0))


@pytest.fixture
def crafter():
    """The scapy crafters: `crafter.stun`, `crafter.dtls`, `crafter.rtp`, `crafter.srtp`."""
    from toolkit.crafters import dtls, rtp, srtp, stun

    return SimpleNamespace(stun=stun, dtls=dtls, rtp=rtp, srtp=srtp)
