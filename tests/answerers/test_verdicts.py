"""The expected-verdicts file format (verdicts.py): what parses, what is refused and how, the
comparison with a run, the draft, and that the committed files in expected/ parse."""

from __future__ import annotations

import json

import pytest

from tests.answerers import test_third_party
from tests.answerers.verdicts import (
    EXPECTED_DIR,
    Difference,
    VerdictFileError,
    differences,
    draft_verdicts,
    main,
    parse_verdicts,
    read_verdicts,
)
from toolkit.conformance.checks import CATALOG

CATALOG_IDS = [check.id for check in CATALOG]

GOOD = """\
# Janus, Debian 1.1.2
STUN-01  PASS  # answers authenticated checks
   # an indented comment

ICE-02   FAIL  # sends its own connectivity checks although it is lite (RFC 8445 §2.5)
ICE-07 SKIP #no space after the hash is fine
"""


def test_good_lines_parse_in_file_order_with_their_reasons():
    verdicts = parse_verdicts(GOOD, known_checks=CATALOG_IDS)
    assert [(v.check, v.status, v.reason) for v in verdicts.values()] == [
        ("STUN-01", "PASS", "answers authenticated checks"),
        ("ICE-02", "FAIL", "sends its own connectivity checks although it is lite (RFC 8445 §2.5)"),
        ("ICE-07", "SKIP", "no space after the hash is fine"),
    ]


def test_a_file_of_comments_has_no_verdicts():
    assert parse_verdicts("# header only\n\n# more\n") == {}


@pytest.mark.parametrize("line, error", [
    ("STUN-01", "2: expected 'CHECK-ID  STATUS  # reason', got 'STUN-01'"),
    ("STUN-01 PASS", "2: STUN-01 PASS has no '# reason'"),
    ("STUN-01 PASS #   ", "2: STUN-01 PASS has no '# reason'"),
    ("STUN-01 PASSED # typo", "2: status 'PASSED' of STUN-01 is not one of PASS, FAIL, WARN, SKIP (or several of them joined by '|')"),
    ("STUN-01 pass # lower case", "2: status 'pass' of STUN-01 is not one of PASS, FAIL, WARN, SKIP (or several of them joined by '|')"),
    ("stun-01 PASS # lower-case id", "2: 'stun-01' is not a check ID like STUN-01"),
    ("STUN-99 PASS # no such check", "2: STUN-99 is not in the conformance catalog"),
    ("STUN-01 PASS FAIL # two statuses", "2: expected 'CHECK-ID  STATUS  # reason', got 'STUN-01 PASS FAIL # two statuses'"),
    ("DEMUX-01 PASS # listed twice", "2: DEMUX-01 is listed twice"),
])
def test_a_bad_line_is_one_clear_error_naming_the_file_and_line(line, error):
    text = f"DEMUX-01 PASS # first\n{line}\n"
    with pytest.raises(VerdictFileError) as caught:
        parse_verdicts(text, source="janus.txt", known_checks=CATALOG_IDS)
    assert str(caught.value) == f"janus.txt:{error}"


def test_differences_list_every_changed_missing_and_unexpected_check():
    expected = parse_verdicts("STUN-01 PASS # a\nICE-02 FAIL # b\nDTLS-01 PASS # c\n")
    results = [
        {"id": "STUN-01", "status": "PASS", "message": "ok"},
        {"id": "ICE-02", "status": "PASS", "message": "no checks\nof its own"},
        {"id": "ICE-07", "status": "SKIP", "message": "405"},
    ]
    assert differences(expected, results) == [
        Difference("ICE-02", "FAIL", "PASS", "no checks of its own"),
        Difference("ICE-07", "(not in the file)", "SKIP", "405"),
        Difference("DTLS-01", "PASS", "(did not run)", "the run has no result for this check"),
    ]
    assert str(differences(expected, results)[0]) == "ICE-02: expected FAIL, got PASS: no checks of its own"


def report_of(*results: tuple[str, str, str]) -> dict:
    return {"results": [{"id": check, "status": status, "message": message} for check, status, message in results]}


def test_a_draft_parses_back_to_the_run_it_came_from():
    report = report_of(("STUN-01", "PASS", ""), ("ICE-02", "FAIL", "sent a check\n" + "x" * 400), ("STUN-02", "PASS", ""))
    report["results"][0]["notes"] = ["main: success response", "second note"]
    draft = draft_verdicts(report, target="janus")
    verdicts = parse_verdicts(draft, known_checks=CATALOG_IDS)
    assert differences(verdicts, report["results"]) == []
    assert verdicts["STUN-01"].reason == "main: success response; second note"
    assert verdicts["STUN-02"].reason == "(no message: say why)"
    assert verdicts["ICE-02"].reason.startswith("sent a check xxx") and len(verdicts["ICE-02"].reason) == 200
    assert draft.startswith("# Expected `rtcgate check` verdicts for the janus target")


def test_the_draft_command_prints_a_draft_or_one_line_error(tmp_path, capsys):
    report = tmp_path / "aiortc-default" / "rtcgate.json"
    report.parent.mkdir()
    report.write_text(json.dumps(report_of(("DTLS-01", "SKIP", "needs passive"))))
    assert main(["draft", str(report)]) == 0
    assert "DTLS-01     SKIP  # needs passive" in capsys.readouterr().out
    report.write_text("{not json")
    assert main(["draft", str(report)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("verdicts: cannot draft from") and error.count("\n") == 1


def test_the_committed_expected_files_parse():
    files = sorted(EXPECTED_DIR.glob("*.txt"))
    assert {path.stem for path in files} >= {"janus", "aiortc-default"}
    for path in files:
        read_verdicts(path, known_checks=CATALOG_IDS)


def test_the_catalog_test_fails_with_a_draft_while_a_target_has_no_verdicts(tmp_path, monkeypatch):
    monkeypatch.setattr(test_third_party, "EXPECTED_DIR", tmp_path)
    (tmp_path / "janus.txt").write_text("# header only\n")
    report = report_of(("STUN-01", "PASS", "ok"))
    with pytest.raises(pytest.fail.Exception, match=r"expected/janus.txt has no verdicts yet.*janus.draft.txt"):
        test_third_party.assert_expected_verdicts("janus", report, tmp_path)
    assert "STUN-01     PASS  # ok" in (tmp_path / "janus.draft.txt").read_text()


def test_the_catalog_test_lists_every_verdict_that_differs(tmp_path, monkeypatch):
    monkeypatch.setattr(test_third_party, "EXPECTED_DIR", tmp_path)
    (tmp_path / "janus.txt").write_text("STUN-01 FAIL # a\nICE-02 FAIL # b\n")
    report = report_of(("STUN-01", "PASS", "answered"), ("ICE-02", "PASS", "silent"))
    with pytest.raises(pytest.fail.Exception) as caught:
        test_third_party.assert_expected_verdicts("janus", report, tmp_path)
    assert str(caught.value).startswith("2 verdicts differ")
    assert str(caught.value).endswith("STUN-01: expected FAIL, got PASS: answered\nICE-02: expected FAIL, got PASS: silent")
    (tmp_path / "janus.txt").write_text("STUN-01 PASS # a\nICE-02 PASS # b\n")
    test_third_party.assert_expected_verdicts("janus", report, tmp_path)
    (tmp_path / "janus.txt").write_text("STUN-01 PASS\n")
    with pytest.raises(pytest.fail.Exception, match=r"^tests/answerers/expected/janus.txt:1: STUN-01 PASS has no '# reason'$"):
        test_third_party.assert_expected_verdicts("janus", report, tmp_path)


def test_a_status_may_name_the_verdicts_a_varying_target_takes():
    verdicts = parse_verdicts("PERF-02  PASS|WARN  # its p99 under attack races the scheduler\n")
    assert verdicts["PERF-02"].allows("PASS") and verdicts["PERF-02"].allows("WARN")
    assert not verdicts["PERF-02"].allows("FAIL")
    assert differences(verdicts, [{"id": "PERF-02", "status": "WARN", "message": "slow"}]) == []
    assert [d.got for d in differences(verdicts, [{"id": "PERF-02", "status": "FAIL", "message": "x"}])] == ["FAIL"]
    for bad in ("PASS|MAYBE", "PASS|PASS", "PASS|"):
        with pytest.raises(VerdictFileError, match="not one of"):
            parse_verdicts(f"PERF-02  {bad}  # why\n")
