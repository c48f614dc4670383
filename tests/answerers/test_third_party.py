"""The conformance gate against answerers nobody here wrote: aiortc (full ICE, one port per
session), werift in ICE-lite mode, each behind a small WHIP echo server in this folder, and
Janus EchoTest (test_janus.py, judged here too). answerers.py starts them; the catalog plays
against all of them together, once (conftest.py's `catalog_runs`).

The gate must run its whole catalog against each to the end, SKIP what does not apply with a
reason, and back every FAIL and WARN with evidence (pcap, key log, replay command). What these stacks
get wrong is what the gate measures. A target with an expected-verdicts file
(expected/<target>.txt, see verdicts.py) must get exactly those verdicts, and the test lists
every difference; for the others the outcomes are recorded (printed, and as a JUnit
property), not asserted; reports/third-party-conformance.md says what they mean.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.answerers.answerers import ANSWERERS
from tests.answerers.catalog_runs import SEED, CatalogRun
from tests.answerers.verdicts import EXPECTED_DIR, VerdictFileError, differences, draft_verdicts, read_verdicts
from toolkit.conformance.checks import CATALOG

pytestmark = [pytest.mark.interop, pytest.mark.timeout(900)]
"""The catalog_runs fixture plays every selected answerer's catalog (3–5 minutes for all four on 2
cores, more on a busy machine); pytest-timeout counts it against the first test that asks for it."""
EVIDENCE = ("pcap", "keylog", "replay")


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.catalog_target(name)) for name in ANSWERERS])
def test_the_whole_catalog_runs_against_a_third_party_answerer(name, catalog_runs, record_property):
    judge_catalog_run(catalog_runs.of(name), record_property)


def judge_catalog_run(run: CatalogRun, record_property) -> None:
    """Check that the catalog ran to the end against `run.answerer` with evidence for every FAIL,
    record the outcome, and hold the verdicts to expected/<name>.txt when the target has one."""
    name, url, report_dir = run.answerer.name, run.answerer.url, run.report_dir
    for phase, code in run.exits.items():
        assert code in (0, 1), f"{phase} checks: exit {code} (2 means the gate gave up):\n{run.stderr[phase][-3000:]}"
    report = run.report
    assert report, f"no report to judge: a phase wrote no rtcgate.json under {report_dir}"
    results = report["results"]
    assert [result["id"] for result in results] == [check.id for check in CATALOG]
    assert {result["status"] for result in results} <= {"PASS", "FAIL", "WARN", "SKIP"}
    for result in results:
        if result["status"] == "SKIP":
            assert result["message"].strip(), f"{result['id']} skipped without a reason"
        if result["status"] in ("FAIL", "WARN"):
            assert result["message"].strip(), f"{result['id']} failed without saying why"
            missing_evidence = [kind for kind in EVIDENCE
                                if not (report_dir / result["artifacts"].get(kind, "-")).is_file()]
            assert not missing_evidence, f"{result['id']} failed without {', '.join(missing_evidence)}"
            replay = (report_dir / result["artifacts"]["replay"]).read_text()
            assert replay.startswith(f"rtcgate check --whip {url} --only {result['id']} --seed {SEED}\n")
    outcome = "\n".join(f"{result['status']:<4} {result['id']:<11} {result['message'][:150]}" for result in results)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(report["summary"].items()))
    exits = ", ".join(f"{phase} exit {code}" for phase, code in run.exits.items())
    notes = "".join(f"\n{note}" for note in run.notes)
    record_property(f"{name}-conformance", f"{summary}; {run.elapsed:.0f} s{notes}\n{outcome}")
    print(f"\n{name} ({run.answerer.description}): {exits}, {summary}, {run.elapsed:.0f} s{notes}\n{outcome}")
    assert_expected_verdicts(name, report, report_dir)


def assert_expected_verdicts(name: str, report: dict, report_dir: Path) -> None:
    """Hold the run to expected/<name>.txt if the target has one; an empty file fails with a draft."""
    path = EXPECTED_DIR / f"{name}.txt"
    if not path.is_file():
        return
    try:
        expected = read_verdicts(path, known_checks=[check.id for check in CATALOG])
    except VerdictFileError as exc:
        pytest.fail(f"tests/answerers/expected/{exc}", pytrace=False)
    if not expected:
        draft = report_dir / f"{name}.draft.txt"
        draft.write_text(draft_verdicts(report, target=name))
        pytest.fail(f"tests/answerers/expected/{name}.txt has no verdicts yet. This run's are drafted in {draft} "
                    f"(or: python -m tests.answerers.verdicts draft {report_dir / 'rtcgate.json'} --target {name}); "
                    "copy it there and replace each drafted reason with why that verdict is right.")
    found = differences(expected, report["results"])
    if found:
        pytest.fail(f"{len(found)} verdicts differ from tests/answerers/expected/{name}.txt "
                    "(check: expected, got: message):\n" + "\n".join(map(str, found)), pytrace=False)
