"""`rtcgate check` end to end against the reference server, on a fast subset of the catalog."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

FAST_SUBSET = ["STUN-01", "STUN-05", "DEMUX-02", "ICE-05", "MIGRATE-02", "DTLS-01", "SRTP-02"]


def rtcgate(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "check", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_reference_subset_passes_and_writes_every_report(tmp_path):
    done = rtcgate("--reference", "--only", *FAST_SUBSET, "--seed", "7", "--report-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    for check_id in FAST_SUBSET:
        assert f"{check_id:<11} PASS" in done.stderr
    assert "seed 7 — PASSED" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rtcgate-junit.xml", "rtcgate.html", "rtcgate.json",
                                                          "rtcgate.sarif"]
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    assert [r["id"] for r in report["results"]] == [c for c in report_order() if c in FAST_SUBSET]
    assert report["summary"] == {"PASS": len(FAST_SUBSET)}


def test_reference_listens_on_ipv6_too_so_stun_10_plays(tmp_path):
    from toolkit.conformance.targets import ReferenceTarget, ipv6_loopback, make_target

    if not ipv6_loopback():
        assert make_target(reference=True).extra_hosts == ()
        pytest.skip("this machine has no IPv6 loopback")
    target = make_target(reference=True)
    assert target.extra_hosts == ("::1",)
    command = target.command()
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--host"] == ["127.0.0.1", "::1"]
    assert ReferenceTarget().extra_hosts == ()  # one address unless asked: the zoo runs variants per address
    done = rtcgate("--reference", "--only", "STUN-10", "--seed", "7", "--report-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{'STUN-10':<11} PASS" in done.stderr


def report_order() -> list[str]:
    from toolkit.conformance.checks import CATALOG

    return [check.id for check in CATALOG]


def test_xpass_fails_the_run(tmp_path):
    xfail = tmp_path / "xfail.txt"
    xfail.write_text("STUN-01  # we thought this was broken\n")
    done = rtcgate("--reference", "--only", "STUN-01", "--xfail", str(xfail), "--seed", "3",
                   "--report-dir", str(tmp_path / "reports"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "XPASS STUN-01 [MUST]: expected to fail (we thought this was broken) but passed" in done.stdout


def test_list_selects_by_profile():
    done = rtcgate("--list", "--profile", "lite")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["ICE-01", "ICE-02", "ICE-03", "ICE-04", "ICE-05"]


def test_wrong_arguments_exit_2_saying_which():
    unknown = rtcgate("--reference", "--only", "NOPE-01")
    assert unknown.returncode == 2
    assert "--only: no check NOPE-01 in the catalog" in unknown.stderr
    no_target = rtcgate("--only", "STUN-01")
    assert no_target.returncode == 2
    assert "give exactly one target" in no_target.stderr


def test_unreachable_target_exits_2_and_still_writes_reports_saying_so(tmp_path):
    import xml.etree.ElementTree as ET

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = rtcgate("--whip", f"http://127.0.0.1:{port}/whip", "--only", "STUN-01", "--report-dir", str(tmp_path))
    assert done.returncode == 2
    (last,) = done.stderr.strip().splitlines()[-1:]
    assert last.startswith("rtcgate check: the target cannot be reached: ") and "signaling failed" in last
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    assert report["exit_code"] == 2 and report["stopped"].startswith("the target cannot be reached")
    assert [(r["name"], r["status"]) for r in report["sanity"]] == [("SANITY (before)", "ERROR")]
    suite = ET.parse(tmp_path / "rtcgate-junit.xml").getroot().find("testsuite")
    (case,) = suite.iter("testcase")
    assert case.find("failure") is None and "signaling failed" in case.find("error").get("message")
    assert (suite.get("errors"), suite.get("failures")) == ("1", "0")


def test_a_target_that_cannot_start_still_writes_reports(tmp_path, monkeypatch, capsys):
    from toolkit.cli import main
    from toolkit.conformance.targets import ReferenceTarget, TargetError

    def refuse(self):
        raise TargetError("the reference server did not start: port in use")

    monkeypatch.setattr(ReferenceTarget, "start", refuse)
    assert main(["check", "--reference", "--only", "STUN-01", "--report-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "rtcgate check: the target cannot be reached: the reference server did not start: port in use")
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    assert report["sanity"][0]["status"] == "ERROR" and report["sanity"][0]["replay"].endswith("--only SANITY --seed "
                                                                                              f"{report['seed']}")


def test_an_exception_inside_rtcgate_is_an_error_exit_2_not_a_failure(tmp_path, monkeypatch, capsys):
    """A check that raises is rtcgate's bug: JUnit <error>, exit 2, and the run goes on."""
    import dataclasses
    import xml.etree.ElementTree as ET

    from toolkit.cli import main
    from toolkit.conformance import checks
    from toolkit.conformance.steps import Do

    def crash(conversation):
        raise ZeroDivisionError("oops")

    broken = dataclasses.replace(checks.BY_ID["STUN-05"], steps=(Do(crash),))
    monkeypatch.setattr(checks, "CATALOG", tuple(broken if c.id == "STUN-05" else c for c in checks.CATALOG))
    code = main(["check", "--reference", "--only", "STUN-01", "STUN-05", "--seed", "3", "--report-dir", str(tmp_path)])
    assert code == 2
    out = capsys.readouterr().out
    assert "ERROR STUN-05 [MUST]: the check itself raised ZeroDivisionError: oops" in out and "NO VERDICT" in out
    cases = {case.get("name"): case for case in ET.parse(tmp_path / "rtcgate-junit.xml").getroot().iter("testcase")}
    assert cases["STUN-05"].find("failure") is None
    assert cases["STUN-05"].find("error").get("message") == "the check itself raised ZeroDivisionError: oops"
    assert cases["STUN-01"].find("error") is None and cases["STUN-01"].find("failure") is None
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    crashed = next(r for r in report["results"] if r["id"] == "STUN-05")
    assert "ZeroDivisionError" in crashed["notes"][-1]  # the traceback is in the report, not on the terminal


def test_only_sanity_replays_the_sanity_conversation(tmp_path):
    """Replay lines of sanity findings say `--only SANITY`: rtcgate check must take them."""
    done = rtcgate("--reference", "--only", "SANITY", "--seed", "4", "--report-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    assert report["results"] == [] and [r["status"] for r in report["sanity"]] == ["PASS", "PASS"]
    assert report["sanity"][0]["replay"] == "rtcgate check --reference --only SANITY --seed 4"


def test_every_perf_setting_has_an_option():
    import dataclasses

    from toolkit.commands.check import perf_options
    from toolkit.conformance.model import PerfThresholds

    assert [option.name for option in perf_options()] == [field.name for field in dataclasses.fields(PerfThresholds)]
    assert {option.flag for option in perf_options()} >= {"--perf-sessions", "--perf-rss-growth-mib"}
    done = rtcgate("--list", "--profile", "perf", "--perf-sessions", "8", "--perf-p99-ratio", "3")
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["PERF-01", "PERF-02", "PERF-03", "PERF-04"]


def test_perf_options_reach_the_settings_and_the_perf_replay_command(monkeypatch, capsys, tmp_path):
    from toolkit.cli import main
    from toolkit.conformance import runner
    from toolkit.conformance.model import PerfThresholds
    from toolkit.conformance.targets import make_target

    captured = {}

    async def capture(target, checks, settings, **kwargs):
        captured["settings"] = settings
        raise runner.TargetUnreachable("captured the settings")

    monkeypatch.setattr(runner, "run_checks", capture)
    url = "http://127.0.0.1:9/whip"
    code = main(["check", "--whip", url, "--only", "PERF-02", "--seed", "5", "--perf-sessions", "8",
                 "--perf-p99-ratio", "3.5", "--perf-rtt-floor-ms", "0", "--perf-attack-pps", "2000",
                 "--report-dir", str(tmp_path)])
    assert code == 2 and "captured the settings" in capsys.readouterr().err
    perf = captured["settings"].perf
    assert (perf.sessions, perf.p99_ratio, perf.rtt_floor_ms, perf.attack_pps) == (8, 3.5, 0.0, 2000.0)
    assert perf.window == PerfThresholds().window  # not given: the default
    target = make_target(whip=url)
    assert runner.replay_command(target, "PERF-02", captured["settings"]) == (
        f"rtcgate check --whip {url} --only PERF-02 --seed 5 --perf-sessions 8 --perf-attack-pps 2000 "
        "--perf-p99-ratio 3.5 --perf-rtt-floor-ms 0")
    assert runner.replay_command(target, "STUN-01", captured["settings"]) == (
        f"rtcgate check --whip {url} --only STUN-01 --seed 5")


@pytest.mark.parametrize("check_id", ["PERF-03", "STUN-02"])
def test_a_replay_line_parses_back_into_the_settings_it_came_from(check_id):
    """Every setting the command line sets, given a value other than its default, comes back the
    same through the replay line (the PERF thresholds only for a PERF check: the rest ignore them)."""
    import dataclasses
    import shlex

    from toolkit.cli import build_parser
    from toolkit.commands.check import perf_options, run_settings
    from toolkit.conformance.model import Level, PerfThresholds, Settings
    from toolkit.conformance.runner import replay_command
    from toolkit.conformance.targets import make_target

    odd = {option.name: (option.default + 3 if isinstance(option.default, int) else option.default * 1.7 + 0.123)
           for option in perf_options()}
    perf = PerfThresholds(**odd)
    assert all(getattr(perf, name) != getattr(PerfThresholds(), name) for name in odd)
    settings = Settings(seed=987654, strict=Level.SHOULD, silence=0.75, consent_timeout=12.5, dtls_role="server",
                        perf=perf)
    line = replay_command(make_target(whip="http://127.0.0.1:9/whip"), check_id, settings)
    words = shlex.split(line)
    assert words[:2] == ["rtcgate", "check"]
    replayed = run_settings(build_parser().parse_args(words[1:]))
    expected = settings if check_id.startswith("PERF-") else dataclasses.replace(settings, perf=PerfThresholds())
    assert replayed == expected, line


@pytest.mark.parametrize(("args", "message"), [
    (("--perf-sessions", "0"), "argument --perf-sessions: 0 is not a positive whole number"),
    (("--perf-p99-ratio", "inf"), "argument --perf-p99-ratio: inf is not a finite number"),
    (("--perf-setup-ms", "-5"), "argument --perf-setup-ms: -5 is not a positive number"),
    (("--perf-voice-slack-ms", "-1"), "argument --perf-voice-slack-ms: -1 is not a number ≥ 0"),
])
def test_bad_perf_values_exit_2_saying_which(capsys, args, message):
    from toolkit.cli import main

    with pytest.raises(SystemExit) as raised:
        main(["check", "--list", *args])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_the_pytest_plugin_takes_the_same_perf_options():
    from types import SimpleNamespace

    from toolkit import pytest_plugin

    options = SimpleNamespace(rtc_seed=3, rtc_consent_timeout=None, rtc_strict=None, rtc_profile=None,
                              rtc_dtls_role="auto", rtc_perf_sessions=6, rtc_perf_voice_slack_ms=250.0)
    settings = pytest_plugin._settings(options)
    assert (settings.seed, settings.perf.sessions, settings.perf.voice_slack_ms) == (3, 6, 250.0)
    assert settings.perf.window == 1.0  # not given: the default
    flags = {option.flag for option in pytest_plugin._options()}
    assert {"--rtc-perf-sessions", "--rtc-perf-voice-slack-ms"} <= flags
