"""The gate in both DTLS roles: against a target that answers a=setup:active (it is the DTLS client),
the role-dependent checks play their counterparts, and the options reach the probe peers."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from types import SimpleNamespace

from toolkit.conformance.checks import BY_ID, CATALOG, SANITY
from toolkit.conformance.model import Settings, Status
from toolkit.conformance.runner import replay_command, run_checks
from toolkit.conformance.targets import ReferenceTarget, make_target

ROLE_FAMILIES = ("DTLS", "SRTP", "MIGRATE", "DC")


def test_reference_answering_active_passes_the_dtls_srtp_migrate_and_dc_checks():
    checks = [check for check in CATALOG if check.family in ROLE_FAMILIES]
    with ReferenceTarget(dtls_role="client") as target:
        run = asyncio.run(run_checks(target, checks, Settings(seed=11), sanity=SANITY))
    by_id = {result.check.id: result for result in run.results}
    failed = {check_id: result.message for check_id, result in by_id.items() if result.status is not Status.PASS
              and not (result.status is Status.SKIP and "DTLS client" in result.message)}
    assert not failed, failed
    assert run.exit_code == 0
    assert any("target is the DTLS client (first flight: client_hello" in note for note in by_id["DTLS-01"].notes)
    assert any("the target is the DTLS client" in note for note in by_id["DTLS-08"].notes)
    assert any("ServerKeyExchange was tampered with" in note for note in by_id["DTLS-11"].notes)
    assert any("HelloVerifyRequests and fatal alerts from the unbound address were ignored" in note
               for note in by_id["MIGRATE-03"].notes)


def test_check_dtls_role_server_with_reference_starts_it_answering_active(tmp_path):
    done = subprocess.run([sys.executable, "-m", "toolkit.cli", "check", "--reference", "--dtls-role", "server",
                           "--only", "DTLS-01", "DC-01", "--seed", "4", "--report-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{'DTLS-01':<11} PASS" in done.stderr and f"{'DC-01':<11} PASS" in done.stderr
    assert "target is the DTLS client" in (tmp_path / "rtcgate.json").read_text()


def test_dtls_role_reaches_settings_replay_and_the_plugin(monkeypatch, capsys, tmp_path):
    from toolkit import pytest_plugin
    from toolkit.cli import main
    from toolkit.conformance import runner

    captured = {}

    async def capture(target, checks, settings, **kwargs):
        captured["settings"], captured["target"] = settings, target
        raise runner.TargetUnreachable("captured the settings")

    monkeypatch.setattr(runner, "run_checks", capture)
    monkeypatch.setattr(ReferenceTarget, "start", lambda self: None)
    assert main(["check", "--reference", "--dtls-role", "server", "--only", "DTLS-01", "--report-dir", str(tmp_path)]) == 2
    assert "captured the settings" in capsys.readouterr().err
    settings = captured["settings"]
    assert settings.dtls_role == "server"
    assert captured["target"].dtls_role == "client" and "--dtls-role" in captured["target"].command()
    assert replay_command(make_target(reference=True), "DTLS-01", settings).endswith("--dtls-role server")
    assert "--dtls-role" not in replay_command(make_target(reference=True), "DTLS-01", Settings(seed=1))
    assert "--dtls-role" not in ReferenceTarget().command()

    defaults = dict(rtc_seed=2, rtc_consent_timeout=None, rtc_strict=None, rtc_profile=None, rtc_dtls_role=None)
    assert pytest_plugin._settings(SimpleNamespace(**{**defaults, "rtc_dtls_role": "client"})).dtls_role == "client"
    assert pytest_plugin._settings(SimpleNamespace(**defaults)).dtls_role == "auto"
    assert BY_ID["DTLS-01"].family == "DTLS"


def answers_passive(offer: str) -> str:
    """A signaling callable whose answer always says a=setup:passive, whatever the offer."""
    from tests.toolkit.test_peer import answer_sdp

    return answer_sdp("AB:CD", setup="passive")


def answers_actpass(offer: str) -> str:
    from tests.toolkit.test_peer import answer_sdp

    return answer_sdp("AB:CD", setup="actpass")


def test_a_forced_role_the_answer_refuses_skips_and_an_actpass_answer_fails():
    from toolkit.conformance.model import Check
    from toolkit.conformance.runner import run_check
    from toolkit.conformance.steps import Offer

    offer_only = Check("DTLS-99", "core", "RFC 8842 §5.3", "offer only", (Offer(),))

    def play(spec: str, dtls_role: str):
        return asyncio.run(run_check(make_target(signaling=f"tests.conformance.test_dtls_roles:{spec}"), offer_only,
                                     Settings(seed=1, dtls_role=dtls_role)))

    skipped = play("answers_passive", "server")
    assert skipped.status is Status.SKIP
    assert skipped.message == ("session main: answer has a=setup:passive to an offer of a=setup:passive: both sides "
                               "would be the DTLS server (RFC 8842 §5.3 allows only a=setup:active)")
    assert play("answers_passive", "auto").status is Status.PASS
    failed = play("answers_actpass", "auto")
    assert failed.status is Status.FAIL and "answer has a=setup:actpass: an answer must choose" in failed.message
