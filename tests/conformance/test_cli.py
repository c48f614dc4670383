"""`rtcgate check` end to end against the reference server, on a fast subset of the catalog."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

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


def report_order() -> list[str]:
    from toolkit.conformance.checks import CATALOG

    return [check.id for check in CATALOG]


def test_xpass_fails_the_run(tmp_path):
    xfail = tmp_path / "xfail.txt"
    xfail.write_text("STUN-01  # we thought this was broken\n")
    done = rtcgate("--reference", "--only", "STUN-01", "--xfail", str(xfail), "--seed", "3",
                   "--report-dir", str(tmp_path / "reports"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "XPASS STUN-01: expected to fail (we thought this was broken) but passed" in done.stdout


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


def test_unreachable_target_exits_2(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = rtcgate("--whip", f"http://127.0.0.1:{port}/whip", "--only", "STUN-01", "--report-dir", str(tmp_path))
    assert done.returncode == 2
    assert "the target cannot be reached" in done.stderr
    assert "signaling failed" in done.stderr
