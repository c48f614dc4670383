"""rtcgate's pytest plugin: the conformance catalog as pytest items, and fixtures for your own checks.

Inert unless asked: it only adds options and fixtures. `pytest --rtc-whip URL` (or
`--rtc-calls-url URL`, `--rtc-signaling module:function`, `--rtc-reference`) adds one item per
catalog check, marked with its profile (`-m security`) and level (`-m must`), sanity first and
last; each item records the RFC reference, level, cited requirement, profile and replay command as
JUnit properties. A SHOULD or POLICY finding passes with an `RtcgateFinding` warning unless
`--rtc-strict` (or `--rtc-profile hardened`) makes it gate. Fixtures:
`rtc_target` (the target the options name), `rtc_check` (runs a `Check` against it),
`reference_server` (a reference server on free ports for the session), `probe_peer` (a fresh
sans-IO ProbePeer), `crafter` (the scapy crafters) and `rtc_fuzz_time` (`--rtc-fuzz-time S`:
fuzz for S seconds instead of replaying corpora). Heavy imports happen only when used.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

PROFILES = ("core", "lite", "security", "voice", "perf")
LEVELS = ("must", "should", "policy")
_TARGET_OPTIONS = ("rtc_whip", "rtc_calls_url", "rtc_signaling", "rtc_reference")
_STATE = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rtcgate", "rtcgate conformance gate")
    group.addoption("--rtc-whip", metavar="URL", help="run the conformance catalog against this WHIP endpoint")
    group.addoption("--rtc-calls-url", metavar="URL", help="... against this realtime-calls endpoint")
    group.addoption("--rtc-signaling", metavar="MODULE:FUNCTION", help="... through your signaling callable")
    group.addoption("--rtc-reference", action="store_true", help="... against a reference server started for the run")
    from toolkit.commands.arguments import http_header

    group.addoption("--rtc-header", metavar="'NAME: VALUE'", type=http_header, action="append", default=[],
                    help="an HTTP header for every WHIP request of --rtc-whip or --rtc-calls-url (repeatable), "
                         "e.g. 'Authorization: Bearer TOKEN'; values never appear in reports")
    group.addoption("--rtc-expect-echo", action="store_true",
                    help="the target is an echo server: its sanity conversation fails unless our media comes back")
    group.addoption("--rtc-profile", metavar="NAMES",
                    help="comma-separated profiles to collect (default: all); 'hardened' gates on every level")
    group.addoption("--rtc-strict", choices=LEVELS, default=None,
                    help="the weakest requirement level that fails (default must: SHOULD/POLICY findings warn)")
    group.addoption("--rtc-only", metavar="ID", action="append", default=[], help="collect only this check (repeatable)")
    group.addoption("--rtc-seed", metavar="N", type=int, default=0, help="seed of the run (default 0)")
    group.addoption("--rtc-consent-timeout", metavar="S", type=float, default=None,
                    help="the target's consent timeout for ICE-06 (default 30; 3 for --rtc-reference)")
    group.addoption("--rtc-dtls-role", choices=["auto", "client", "server"], default="auto",
                    help="the probe's DTLS role: auto offers a=setup:actpass (default); client offers active, "
                         "server passive")
    group.addoption("--rtc-fuzz-time", metavar="S", type=float, default=None,
                    help="fuzz each rtcgate fuzz target for S seconds (atheris) instead of replaying its corpus "
                         "(fixture rtc_fuzz_time; ini rtc_fuzz_time)")
    parser.addini("rtc_fuzz_time", "seconds to fuzz each rtcgate fuzz target (as --rtc-fuzz-time)", default=None)
    from toolkit.commands.check import PERF_THRESHOLDS, perf_option

    for field, parse, metavar, text in PERF_THRESHOLDS:
        group.addoption("--rtc-" + perf_option(field)[2:], dest=f"rtc_{field}", type=parse, metavar=metavar,
                        default=None, help=f"{text} (default: rtcgate's Settings.{field})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rtcgate: an rtcgate conformance catalog check")
    for profile in PROFILES:
        config.addinivalue_line("markers", f"{profile}: rtcgate checks of the {profile} profile")
    for level in LEVELS:
        config.addinivalue_line("markers", f"{level}: rtcgate checks judging an RFC {level.upper()} (or POLICY)")
    config.stash[_STATE] = {}


class RtcgateFinding(UserWarning):
    """A SHOULD or POLICY requirement the target does not meet, in a run that does not gate on it."""


def _requested(config: pytest.Config) -> bool:
    return any(config.getoption(name) for name in _TARGET_OPTIONS)


def _state(config: pytest.Config) -> dict:
    return config.stash[_STATE]


def _target(config: pytest.Config):
    """The target the options name, started once per session and stopped at its end."""
    state = _state(config)
    if "target" not in state:
        from toolkit.conformance.targets import ReferenceTarget, make_target

        target = make_target(whip=config.getoption("rtc_whip"), calls_url=config.getoption("rtc_calls_url"),
                             signaling=config.getoption("rtc_signaling"),
                             reference=config.getoption("rtc_reference"), headers=config.getoption("rtc_header"))
        if isinstance(target, ReferenceTarget):
            target.consent_timeout = config.getoption("rtc_consent_timeout") or 3.0
            if config.getoption("rtc_dtls_role") == "server":
                target.dtls_role = "client"
        if config.getoption("rtc_expect_echo"):
            target.echoes = True
        target.start()
        config.add_cleanup(target.stop)
        state["target"] = target
    return state["target"]


def _settings(config: pytest.Config):
    from toolkit.commands.check import PERF_THRESHOLDS, strictness
    from toolkit.conformance.runner import Settings

    perf = {field: config.getoption(f"rtc_{field}") for field, *_ in PERF_THRESHOLDS}
    return Settings(seed=config.getoption("rtc_seed"), consent_timeout=config.getoption("rtc_consent_timeout") or 30.0,
                    strict=strictness(config.getoption("rtc_strict"), config.getoption("rtc_profile")),
                    dtls_role=config.getoption("rtc_dtls_role") or "auto",
                    **{field: value for field, value in perf.items() if value is not None})


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
        self.add_marker("rtcgate")
        self.add_marker(check.profile)
        self.add_marker(check.level.value.lower())

    def runtest(self) -> None:
        from toolkit.conformance.model import Status
        from toolkit.conformance.runner import run_check

        state = _state(self.config)
        if state.get("broken") and self.sanity_position != "after":
            pytest.skip(f"the target failed the sanity conversation: {state['broken']}")
        result = asyncio.run(run_check(_target(self.config), self.check, _settings(self.config)))
        from toolkit.reports.common import requirement_fields, requirement_line

        self.user_properties += [("rfc", self.check.rfc), *requirement_fields(self.check).items(),
                                 ("profile", self.check.profile), ("replay", result.replay)]
        if result.status is Status.SKIP:
            pytest.skip(result.message)
        if result.status is Status.WARN:
            self.warn(RtcgateFinding(f"{self.check.id} WARN: {result.message} "
                                     f"[{requirement_line(self.check)}] replay: {result.replay}"))
        if result.status is Status.FAIL:
            if self.sanity_position == "before":
                state["broken"] = result.message
            raise CheckError(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CheckError):
            result = excinfo.value.result
            from toolkit.reports.common import requirement_line

            return "\n".join([f"{self.check.id} FAILED: {result.message}", *result.notes[-10:],
                              f"requirement: {requirement_line(self.check)}", f"replay: {result.replay}"])
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return "rtcgate", None, f"{self.check.id} [{self.check.profile}] {self.check.title}"


class Catalog(pytest.Collector):
    def collect(self):
        from toolkit.conformance.checks import CATALOG, SANITY

        from toolkit.commands.check import HARDENED, selected_profiles

        wanted_profiles = set(selected_profiles(self.config.getoption("rtc_profile"))) - {HARDENED}
        unknown_profiles = wanted_profiles - set(PROFILES)
        if unknown_profiles:
            raise pytest.UsageError(f"--rtc-profile: unknown profile {', '.join(sorted(unknown_profiles))}; "
                                    f"known: {', '.join((*PROFILES, HARDENED))}")
        only = {name.upper() for name in self.config.getoption("rtc_only")}
        unknown = only - {check.id for check in CATALOG}
        if unknown:
            raise pytest.UsageError(f"--rtc-only: no check {', '.join(sorted(unknown))} in the catalog")
        checks = [c for c in CATALOG if (not wanted_profiles or c.profile in wanted_profiles) and (not only or c.id in only)]
        yield CatalogItem.from_parent(self, name="SANITY-before", check=SANITY, sanity_position="before")
        for check in checks:
            yield CatalogItem.from_parent(self, name=check.id, check=check)
        yield CatalogItem.from_parent(self, name="SANITY-after", check=SANITY, sanity_position="after")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if _requested(config):
        items.extend(Catalog.from_parent(session, name="rtcgate").collect())


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rtc_target(pytestconfig: pytest.Config):
    """The target named by --rtc-whip / --rtc-calls-url / --rtc-signaling / --rtc-reference."""
    if not _requested(pytestconfig):
        pytest.skip("no rtcgate target: pass --rtc-whip URL, --rtc-calls-url URL, --rtc-signaling M:F or --rtc-reference")
    return _target(pytestconfig)


@pytest.fixture
def rtc_check(rtc_target, pytestconfig: pytest.Config, request: pytest.FixtureRequest):
    """run(check) → CheckResult against `rtc_target`; the RFC reference goes into the JUnit XML."""
    from toolkit.conformance.runner import run_check

    def run(check, *, seed: int | None = None):
        import dataclasses

        settings = _settings(pytestconfig)
        if seed is not None:
            settings = dataclasses.replace(settings, seed=seed)
        request.node.user_properties += [("rfc", check.rfc), ("profile", check.profile)]
        return asyncio.run(run_check(rtc_target, check, settings))

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
    seconds = pytestconfig.getoption("rtc_fuzz_time")
    if seconds is None and pytestconfig.getini("rtc_fuzz_time"):
        try:
            seconds = float(pytestconfig.getini("rtc_fuzz_time"))
        except ValueError:
            raise pytest.UsageError(f"rtc_fuzz_time: {pytestconfig.getini('rtc_fuzz_time')!r} is not a number") from None
    return seconds


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
