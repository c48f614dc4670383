from __future__ import annotations

import asyncio
import json
import socket

import pytest

from tests.support.server_process import start_server
from toolkit.load.accounting import LoadError
from toolkit.load.attacks import ATTACK_KINDS, parse_attack
from toolkit.load.report import write_report
from toolkit.load.run import PHASES, LoadConfig, LoadRun, verdicts

SUMMARY_KEYS = {"count", "mean", "p50", "p90", "p99", "p999", "max"}
SERVER_KEYS = {"sessions_start", "sessions_end", "sessions_max", "rss_start_bytes", "rss_end_bytes", "drops"}


@pytest.fixture(scope="module")
def echo_run():
    """One short run against a fresh echo server: 3 sessions, 1 s windows, quiet then mix@500."""
    server = start_server(media="echo")
    edges: list[tuple[str, str]] = []
    config = LoadConfig(whip_url=server.whip_url, sessions=3, duration=1.0, attacks=(parse_attack("mix@500"),),
                        command="rtcgate load --whip URL")
    try:
        result = asyncio.run(LoadRun(config, on_window=lambda name, edge: edges.append((name, edge))).run())
    finally:
        server.stop()
    return server, result, edges


def test_a_run_reports_setup_windows_server_state_and_verdicts(echo_run):
    server, result, edges = echo_run
    assert set(result) == {"target", "started", "command", "config", "machine", "setup", "scenarios",
                           "server_timeline", "metrics_error", "verdicts"}
    assert result["target"] == server.whip_url
    assert result["command"] == "rtcgate load --whip URL"
    assert result["config"] == {"sessions": 3, "duration_s": 1.0, "pps": 50.0, "payload_bytes": 160, "media": "probe",
                                "attacks": ["mix@500"], "seed": 0}
    assert {"cpus", "python", "platform", "loop", "executable"} <= set(result["machine"])
    assert edges == [("quiet", "start"), ("quiet", "end"), ("mix@500", "start"), ("mix@500", "end")]

    setup = result["setup"]
    assert (setup["sessions"], setup["failed"], setup["errors"]) == (3, 0, [])
    assert list(setup["phases_ms"]) == list(PHASES)
    assert all(summary["count"] == 3 and set(summary) == SUMMARY_KEYS for summary in setup["phases_ms"].values())

    assert result["metrics_error"] is None
    assert result["server_timeline"] and {"t", "sessions", "rss_bytes", "drops"} == set(result["server_timeline"][0])


def test_the_quiet_window_loses_nothing_and_the_attack_window_counts_the_attack(echo_run):
    _, result, _ = echo_run
    quiet, attacked = result["scenarios"]
    assert (quiet["name"], quiet["attack"]) == ("quiet", None)
    for scenario in (quiet, attacked):
        media = scenario["media"]
        assert media["sessions"] == 3 and media["sent"] > 0
        assert set(media["rtt"]) == SUMMARY_KEYS and media["cdf"]
        assert set(scenario["server"]) == SERVER_KEYS
        assert scenario["start_s"] < scenario["end_s"]
    assert quiet["end_s"] <= attacked["start_s"]
    assert quiet["media"]["lost"] == 0
    assert quiet["media"]["received"] == quiet["media"]["rtt"]["count"] > 0
    assert quiet["server"]["sessions_start"] == quiet["server"]["sessions_end"] == 3

    attack = attacked["attack"]
    assert attacked["name"] == attack["spec"] == "mix@500"
    assert attack["kinds"] == list(ATTACK_KINDS) and attack["pps"] == 500.0
    assert attack["sent"] > 0 and all(attack["sent_by_kind"][kind] > 0 for kind in ATTACK_KINDS)
    assert sum(attacked["server"]["drops"].values()) > 0  # the server saw and dropped it


def test_the_run_has_one_verdict_for_quiet_and_three_per_attack_and_writes_its_report(echo_run, tmp_path):
    _, result, _ = echo_run
    names = [verdict["name"] for verdict in result["verdicts"]]
    assert names == ["quiet: no legit loss", "mix@500: legit p99 RTT / quiet p99", "mix@500: legit packets lost",
                     "mix@500: server sessions growth"]
    assert result["verdicts"][0]["ok"] is True
    assert all(isinstance(verdict["ok"], bool) for verdict in result["verdicts"])
    json_path, html_path = write_report(result, tmp_path)
    assert json.loads(json_path.read_text())["verdicts"] == result["verdicts"]
    assert "mix@500" in html_path.read_text()


def scenario(name: str, p99: float | None, lost: int = 0, sessions: tuple | None = (3, 3, 3)) -> tuple[dict, list]:
    start, peak, end = sessions if sessions is not None else (None, None, None)
    return ({"name": name, "media": {"rtt": {"p99": p99}, "lost": lost},
             "server": {"sessions_start": start, "sessions_max": peak, "sessions_end": end}}, [])


def by_name(result: list[dict]) -> dict[str, dict]:
    return {verdict["name"]: verdict for verdict in result}


def test_verdicts_compare_p99_with_quiet_and_want_no_loss_and_flat_sessions():
    result = by_name(verdicts([scenario("quiet", 2.0), scenario("a", 3.9), scenario("b", 4.0, lost=2),
                               scenario("c", 1.0, sessions=(3, 4, 3)), scenario("d", 1.0, sessions=(3, 3, 2))], 2.0))
    assert result["quiet: no legit loss"] == {"name": "quiet: no legit loss", "value": 0, "goal": "= 0", "ok": True}
    assert result["a: legit p99 RTT / quiet p99"] == {"name": "a: legit p99 RTT / quiet p99", "value": 1.95,
                                                      "goal": "< 2", "ok": True}
    assert result["b: legit p99 RTT / quiet p99"]["ok"] is False  # 2.0 is not below 2
    assert (result["a: legit packets lost"]["ok"], result["b: legit packets lost"]["value"],
            result["b: legit packets lost"]["ok"]) == (True, 2, False)
    assert result["a: server sessions growth"]["ok"] is True
    assert (result["c: server sessions growth"]["value"], result["c: server sessions growth"]["ok"]) == (1, False)
    assert (result["d: server sessions growth"]["value"], result["d: server sessions growth"]["ok"]) == (0, False)


def test_verdicts_without_figures_fail_and_without_server_state_are_left_out():
    result = by_name(verdicts([scenario("quiet", None, lost=1), scenario("a", 1.0, sessions=None)], 2.0))
    assert result["quiet: no legit loss"]["ok"] is False
    assert result["a: legit p99 RTT / quiet p99"]["value"] is None
    assert result["a: legit p99 RTT / quiet p99"]["ok"] is False
    assert "a: server sessions growth" not in result
    assert by_name(verdicts([scenario("quiet", 1.0), scenario("a", None)], 3.0))["a: legit p99 RTT / quiet p99"] == {
        "name": "a: legit p99 RTT / quiet p99", "value": None, "goal": "< 3", "ok": False}
    assert verdicts([], 2.0) == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"sessions": 0}, "--sessions must be at least 1, not 0"),
    ({"duration": 0}, "--duration must be in (0, 3600] seconds, not 0"),
    ({"duration": 3600.5}, "--duration must be in (0, 3600] seconds, not 3600.5"),
    ({"pps": 0}, "--pps must be in (0, 1000] packets per second per session, not 0"),
    ({"pps": 1001}, "--pps must be in (0, 1000] packets per second per session, not 1001"),
])
def test_load_config_rejects_bad_values_saying_which(changes, message):
    with pytest.raises(LoadError) as raised:
        LoadConfig(whip_url="http://127.0.0.1:8080/whip", **changes)
    assert str(raised.value) == message


def test_load_config_finds_metrics_on_the_whip_origin():
    assert LoadConfig(whip_url="https://example.test:8443/a/whip?token=1").metrics_url == "https://example.test:8443/metrics"
    assert LoadConfig(whip_url="http://h/whip", metrics_url="http://m:9/x").metrics_url == "http://m:9/x"


def test_a_whip_url_nobody_listens_on_is_a_load_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/whip"
    run = LoadRun(LoadConfig(whip_url=url, sessions=2, setup_timeout=2.0))
    with pytest.raises(LoadError) as raised:
        asyncio.run(run.run())
    assert str(raised.value).startswith(f"no session could be set up against {url}: session ")
    assert len(run.setup_errors) == 2 and run.sessions == []
    assert run.progress.sessions_failed == 2
