"""A campaign's moving parts: declared instrumentation, findings announced as they are found,
a crashing seed that does not stall the restarts, exec/s from counts over time, the live and
plain displays, and triage bounded per signature, in time and to two at a time."""
from __future__ import annotations

import importlib.util
import io
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from toolkit import resources
from toolkit.fuzz import triage as triage_module
from toolkit.fuzz.campaign import Campaign, CampaignResult, LiveFinding, Progress, _update, run
from toolkit.fuzz.display import CampaignDisplay
from toolkit.fuzz.triage import minimize, triage

ROOT = Path(__file__).resolve().parents[2]
CORPORA = resources.corpora()
SAMPLE = "tests.fuzz.sample_targets:fuzz_frame"
needs_atheris = pytest.mark.skipif(importlib.util.find_spec("atheris") is None and os.environ.get("CI") != "true",
                                   reason="atheris is not installed (a Linux dependency; CI requires it)")
PLANTED_PACKAGE = '''
def parse(data: bytes) -> int:
    """Branches for coverage to find; only ValueError escapes."""
    if not data:
        raise ValueError("empty")
    total = 0
    for byte in data[:8]:
        if byte > 0x80:
            total += 2
        elif byte == 0x20:
            total -= 1
        else:
            total += 1
    return total
'''
DECLARING_TARGETS = '''
import planted_parser_for_rtcgate

from toolkit.fuzz import fuzz_target


@fuzz_target(expect=ValueError, instrument=("planted_parser_for_rtcgate",))
def fuzz_planted(data: bytes) -> None:
    planted_parser_for_rtcgate.parse(data)
'''


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # a file target's folder is added to it
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return tmp_path


def sample_campaign(folder: Path, **options) -> Campaign:
    return Campaign(spec=SAMPLE, reports=folder / "reports", corpus_dir=folder / "corpora", **options)


# --- what gets instrumented ---------------------------------------------------------------------


@needs_atheris
def test_instrumentation_declared_by_the_decorator_is_collected(in_tmp):
    (in_tmp / "planted_parser_for_rtcgate.py").write_text(PLANTED_PACKAGE)
    (in_tmp / "declaring_targets_for_rtcgate.py").write_text(DECLARING_TARGETS)
    campaign = Campaign(spec="declaring_targets_for_rtcgate.py:fuzz_planted", runs=2000,
                        reports=in_tmp / "reports", corpus_dir=in_tmp / "corpora")
    try:
        campaign.prepare()
        assert campaign.instrument == ["planted_parser_for_rtcgate", "declaring_targets_for_rtcgate"]
        assert campaign.environment()["RTCGATE_FUZZ_INSTRUMENT"] == ",".join(campaign.instrument)
        result = run(campaign)
    finally:
        for name in ("planted_parser_for_rtcgate", "declaring_targets_for_rtcgate"):
            sys.modules.pop(name, None)
    log = result.log.read_text()
    assert "INFO: Instrumenting planted_parser_for_rtcgate" in log, log[-2000:]
    assert result.failure is None and result.progress.execs >= 2000 and result.progress.coverage > 5


def test_instrument_option_replaces_the_declaration():
    campaign = Campaign(spec="stun_parse", instrument=["somewhere_else"])
    campaign.prepare()
    assert campaign.instrument == ["somewhere_else"]
    builtin = Campaign(spec="sctp_dcep")
    builtin.prepare()
    assert builtin.instrument == ["reference_server", "aiortc"]


# --- seeds ------------------------------------------------------------------------------------------


def test_seeds_come_from_the_shipped_corpora_and_the_corpus_dir_each_once(tmp_path):
    mine = tmp_path / "mine"
    (mine / "stun_parse").mkdir(parents=True)
    (mine / "regressions" / "stun_parse").mkdir(parents=True)
    campaign = Campaign(spec="stun_parse", corpus_dir=mine)
    assert campaign.seeds[0] == CORPORA / "stun_parse"
    assert campaign.seeds[-2:] == [mine / "stun_parse", mine / "regressions" / "stun_parse"]
    assert campaign.regressions == mine / "regressions" / "stun_parse"
    developers = Campaign(spec="stun_parse", corpus_dir=CORPORA)  # --corpus-dir toolkit/corpora
    assert len(developers.seeds) == len({path.resolve() for path in developers.seeds})
    assert developers.regressions == CORPORA / "regressions" / "stun_parse"


@needs_atheris
def test_findings_are_announced_as_found_and_a_crashing_seed_does_not_stall_the_restarts(in_tmp):
    seeds = in_tmp / "seeds"
    seeds.mkdir()
    (seeds / "crashes").write_bytes(b"\x07\x00")  # libFuzzer runs it first at every start
    (seeds / "fine").write_bytes(b"\x01\x02ab")
    campaign = sample_campaign(in_tmp, seconds=6, extra_seeds=[seeds])
    announced: list[LiveFinding] = []
    result = run(campaign, on_finding=announced.append)
    assert announced and announced[0].summary.startswith("IndexError"), announced
    assert {found.path.name for found in announced} == {path.name for path in result.artifacts}
    # Stalled, each restart would end on the seed while loading: two executions per restart.
    assert result.progress.execs > 500 and result.progress.exec_per_s > 0
    assert list((in_tmp / "seeds").iterdir())  # the user's seed folder is only read


# --- progress and display ---------------------------------------------------------------------------


def test_exec_rate_comes_from_counts_over_time_not_from_libfuzzers_whole_seconds():
    progress = Progress()
    assert _update(progress, "#1024\tpulse  cov: 10 ft: 20 corp: 5/50b lim: 4 exec/s: 0 rss: 60Mb")
    progress.timed(1.0)
    assert _update(progress, "#4096\tpulse  cov: 12 ft: 22 corp: 6/60b lim: 4 exec/s: 0 rss: 60Mb")
    progress.timed(2.5)
    assert progress.exec_per_s == 2048 and progress.coverage == 12
    fork = Progress()
    for elapsed, line in ((1.0, "#100: cov: 7 ft: 7 corp: 3 exec/s 0 oom/timeout/crash: 0/0/0 time: 0s job: 1"),
                          (3.0, "#4100: cov: 9 ft: 9 corp: 4 exec/s 0 oom/timeout/crash: 0/0/2 time: 2s job: 2")):
        assert _update(fork, line)
        fork.timed(elapsed)
    assert fork.exec_per_s == 2000 and fork.crashes == 2
    assert "2,000 exec/s" in fork.line("x")


def test_plain_display_prints_periodic_lines_and_each_exception_once(tmp_path, capsys):
    artifact = tmp_path / "crash-0123456789abcdef0123"
    artifact.write_bytes(b"\x07\x00")
    stream = io.StringIO()
    progress = Progress(execs=5000, exec_per_s=1234)
    with CampaignDisplay("x", stream=stream, interval=10, live=False) as display:
        for elapsed in (3.0, 10.5, 12.0, 21.0):
            progress.elapsed = elapsed
            display.progress(progress)
        display.finding(LiveFinding(artifact, "IndexError: index out of range"))
        display.finding(LiveFinding(artifact, "IndexError: index out of range"))
        display.finding(LiveFinding(artifact, "KeyError: 63"))
        display.finding(LiveFinding(artifact, "KeyError: 7"))  # the same bug, another key
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all("1,234 exec/s" in line for line in lines)
    out = capsys.readouterr().out
    assert out.count("found: IndexError: index out of range") == 1 and "2 bytes" in out
    assert out.count("found: KeyError") == 1


def test_live_display_draws_the_progress_line_with_rich():
    stream = io.StringIO()
    with CampaignDisplay("x", stream=stream, live=True) as display:
        display.progress(Progress(execs=99_000, exec_per_s=4321, elapsed=2.0))
    assert "4,321 exec/s" in stream.getvalue() and "99,000 execs" in stream.getvalue()


# --- triage bounds ----------------------------------------------------------------------------------


def two_signature_result(folder: Path) -> CampaignResult:
    """Artifacts of two distinct bugs of the sample target when FrameError is not declared:
    four of IndexError (type 7, empty body) and two of FrameError (body shorter than its length)."""
    campaign = sample_campaign(folder, expect=[])
    artifacts = folder / "artifacts"
    artifacts.mkdir()
    paths = []
    for number in range(4):
        paths.append(artifacts / f"crash-index-{number}")
        paths[-1].write_bytes(b"\x07\x00" + bytes(40 + number))
    for number in range(2):
        paths.append(artifacts / f"crash-frame-{number}")
        paths[-1].write_bytes(b"\x01\xff" + bytes(40 + number))
    log = folder / "fuzz.log"
    log.write_text("")
    return CampaignResult(campaign, Progress(execs=100), paths, log, 1.0, 1)


def test_triage_minimizes_one_input_per_signature_two_at_a_time(in_tmp, monkeypatch):
    result = two_signature_result(in_tmp)
    calls: list[tuple[str, float]] = []
    running, most = [0], [0]
    lock = threading.Lock()

    def fake_minimize(campaign, path, seconds):
        with lock:
            calls.append((path.name, seconds))
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(1.0)
        with lock:
            running[0] -= 1
        return None

    monkeypatch.setattr(triage_module, "minimize", fake_minimize)
    report = triage(result, minimize_seconds=7, budget=60, workers=2)
    assert sorted(name for name, _ in calls) == ["crash-frame-0", "crash-index-0"]  # the smallest of each
    assert all(seconds <= 7 for _, seconds in calls) and most[0] == 2
    assert sorted(finding.artifacts for finding in report.findings) == [2, 4]
    assert len(list(result.campaign.regressions.iterdir())) == 2
    calls.clear()
    triage(result, minimize_seconds=7, budget=0)
    assert calls == []  # no budget: stored as found


@needs_atheris
def test_minimization_stops_at_its_wall_time(in_tmp, monkeypatch):
    monkeypatch.setattr(triage_module, "MINIMIZE_STEP", 600)  # one step would search for ten minutes
    crash = in_tmp / "crash"
    crash.write_bytes(b"\x07\x00")  # already minimal: nothing smaller to find
    started = time.monotonic()
    assert minimize(sample_campaign(in_tmp), crash, seconds=2) is None
    assert time.monotonic() - started < 60
