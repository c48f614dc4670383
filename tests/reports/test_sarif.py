"""SARIF: valid against the OASIS 2.1.0 schema, and shaped the way GitHub code scanning ingests it.

What GitHub needs beyond the schema (its "SARIF support for code scanning" page, and the upload
errors users meet): at least one location per result with a repository-relative artifact URI
(one result without rejects the whole file), rules with id, short and full description and help
text; every result becomes an alert whatever its `kind`, so only findings are results.
"""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.reports.sample import result
from toolkit.conformance.checks import BY_ID
from toolkit.conformance.model import CheckResult, Level, Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.conformance import write_reports
from toolkit.reports.sarif import sarif_dict

SCHEMA = json.loads((Path(__file__).with_name("sarif-schema-2.1.0.json")).read_text(encoding="utf-8"))
WORKFLOW = {"GITHUB_WORKFLOW_REF": "octo/media-server/.github/workflows/conformance.yml@refs/heads/main"}


def validate(sarif: dict) -> None:
    validator_class = jsonschema.validators.validator_for(SCHEMA)
    validator_class.check_schema(SCHEMA)
    errors = sorted(validator_class(SCHEMA, format_checker=validator_class.FORMAT_CHECKER).iter_errors(sarif),
                    key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def catalog_result(check_id: str, status: Status, message: str) -> CheckResult:
    return CheckResult(check=BY_ID[check_id], status=status, message=message, duration=0.1, seed=9,
                       replay=f"rtcgate check --reference --only {check_id} --seed 9")


@pytest.fixture
def every_status(run) -> RunResult:
    """The sample run plus a WARN of a SHOULD, a WARN of a POLICY, and an ERROR of rtcgate's own."""
    run.results += [catalog_result("DEMUX-06", Status.WARN, "answered a malformed request"),
                    catalog_result("STUN-08", Status.WARN, "answered from the wrong port"),
                    result("DTLS-02", Status.ERROR, "the check itself raised ZeroDivisionError: oops")]
    return run


def written(run: RunResult, tmp_path: Path, monkeypatch, environ: dict[str, str]) -> dict:
    for name in ("GITHUB_WORKFLOW_REF",):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return json.loads(write_reports(run, tmp_path)["sarif"].read_text(encoding="utf-8"))


@pytest.mark.parametrize("environ", [WORKFLOW, {}], ids=["github-actions", "elsewhere"])
def test_sarif_is_valid_against_the_oasis_schema(every_status, tmp_path, monkeypatch, environ):
    sarif = written(every_status, tmp_path, monkeypatch, environ)
    validate(sarif)
    assert sarif["version"] == "2.1.0" and sarif["$schema"] == SCHEMA["id"]


def test_a_stopped_run_is_valid_and_an_unsuccessful_execution(tmp_path):
    why = "the target cannot be reached: WHIP http://127.0.0.1:9/whip: signaling failed: connection refused"
    stopped = RunResult("WHIP http://127.0.0.1:9/whip", 9, "2025-01-01T00:00:00+00:00", 0.2, [],
                        [result("SANITY", Status.ERROR, why)], stopped=why)
    sarif = sarif_dict(stopped, environ=WORKFLOW)
    validate(sarif)
    (invocation,) = sarif["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["message"]["text"] == f"SANITY (before): {why}"
    assert invocation["properties"]["stopped"] == why
    assert sarif["runs"][0]["results"] == []


def test_results_are_the_findings_each_located_in_the_workflow_file(every_status, tmp_path, monkeypatch):
    only_run = written(every_status, tmp_path, monkeypatch, WORKFLOW)["runs"][0]
    by_rule = {r["ruleId"]: r for r in only_run["results"]}
    assert sorted(by_rule) == ["DEMUX-06", "DTLS-08", "DTLS-09", "STUN-07", "STUN-08"]  # no PASS, SKIP or ERROR
    for entry in only_run["results"]:
        (location,) = entry["locations"]
        assert location["physicalLocation"]["artifactLocation"] == {"uri": ".github/workflows/conformance.yml"}
        assert location["physicalLocation"]["region"] == {"startLine": 1}
        assert entry["message"]["text"] and entry["partialFingerprints"]
        assert only_run["tool"]["driver"]["rules"][entry["ruleIndex"]]["id"] == entry["ruleId"]
    assert (by_rule["STUN-07"]["level"], by_rule["DTLS-09"]["level"]) == ("error", "error")
    assert (by_rule["DEMUX-06"]["level"], by_rule["STUN-08"]["level"]) == ("warning", "note")  # SHOULD, POLICY
    assert by_rule["DTLS-08"]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "known gap <b>"}]
    (invocation,) = only_run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"] == [{
        "level": "error", "message": {"text": "DTLS-02: the check itself raised ZeroDivisionError: oops"},
        "associatedRule": {"id": "DTLS-02", "index": [r["id"] for r in only_run["tool"]["driver"]["rules"]].index("DTLS-02")}}]
    assert invocation["startTimeUtc"] == "2025-01-01T00:00:00Z"


def test_evidence_is_attached_never_a_location(every_status, tmp_path, monkeypatch):
    only_run = written(every_status, tmp_path, monkeypatch, {})["runs"][0]
    failed = next(r for r in only_run["results"] if r["ruleId"] == "STUN-07")
    assert "locations" not in failed  # outside GitHub Actions rtcgate knows no file of the repository
    attached = {a["artifactLocation"]["uri"]: a["artifactLocation"]["uriBaseId"] for a in failed["attachments"]}
    assert attached["evidence/STUN-07/conversation.pcap"] == "REPORTDIR"
    assert attached["evidence/STUN-07/keylog.txt"] == "REPORTDIR"
    for uri in attached:
        assert (tmp_path / uri).is_file()  # relative to the folder holding the SARIF file
    assert failed["properties"]["evidence"]["pcap"] == "evidence/STUN-07/conversation.pcap"
    assert failed["properties"]["replay"] == "rtcgate check --reference --only STUN-07 --seed 9"
    assert "REPORTDIR" in only_run["originalUriBaseIds"]


def test_fingerprints_stay_the_same_from_run_to_run(every_status, tmp_path, monkeypatch):
    first = written(every_status, tmp_path / "one", monkeypatch, WORKFLOW)["runs"][0]["results"]
    second = written(every_status, tmp_path / "two", monkeypatch, WORKFLOW)["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in first] == [r["partialFingerprints"] for r in second]
    assert len({json.dumps(r["partialFingerprints"]) for r in first}) == len(first)


def test_one_rule_per_check_with_the_cited_requirement_and_its_level(every_status, tmp_path, monkeypatch):
    rules = {rule["id"]: rule for rule in written(every_status, tmp_path, monkeypatch, {})["runs"][0]["tool"]["driver"]["rules"]}
    assert list(rules) == ["SANITY", "STUN-01", "STUN-07", "STUN-10", "DTLS-08", "DTLS-09", "DEMUX-06", "STUN-08",
                           "DTLS-02"]
    for check_id in ("DEMUX-06", "STUN-08"):
        check, rule = BY_ID[check_id], rules[check_id]
        assert rule["shortDescription"]["text"] == check.title
        assert check.requirement.cite in rule["fullDescription"]["text"]
        assert check.requirement.text in rule["help"]["text"]
        assert f"> {check.requirement.text}" in rule["help"]["markdown"]
        assert rule["defaultConfiguration"]["level"] == {Level.SHOULD: "warning", Level.POLICY: "note"}[check.level]
    assert rules["STUN-07"]["defaultConfiguration"]["level"] == "error"  # no requirement of its own: a MUST


def test_workflow_ref_outside_the_workflows_folder_is_no_location():
    from toolkit.reports.sarif import workflow_location

    assert workflow_location({"GITHUB_WORKFLOW_REF": "octo/repo/somewhere/else.yml@refs/heads/main"}) == []
    assert workflow_location({}) == []
