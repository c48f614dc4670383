"""SARIF 2.1.0 that code-scanning services accept (GitHub code scanning's subset of it).

Rules: one per check the run played, sanity included: its title, the cited requirement (level,
section, quoted sentence) as help in text and Markdown, `defaultConfiguration.level` by
requirement level (MUST error, SHOULD warning, POLICY note), and profile, family and level as
tags. No `helpUri`: the catalog (docs/checks.md) has no published address to point at.

Results: the findings only, since code scanning opens an alert for every result whatever its
`kind`: FAIL and XPASS (level error), WARN (its rule's level), XFAIL (note, with an external
suppression carrying the expected-failures comment; GitHub shows those as alerts too). PASS and
SKIP are counted in the invocation's properties. An ERROR (rtcgate itself failed, or the run
stopped) is no finding about the target: it is a tool execution notification, and the
invocation is `executionSuccessful: false`.

Locations: GitHub rejects a whole file if one of its results has no location, and resolves a
location against the repository, so one naming evidence files (which are not in the repository)
shows a missing file. The server under test is no file of the repository; the file there that
ran the gate is the GitHub Actions workflow (`GITHUB_WORKFLOW_REF`), so under GitHub Actions
every result points at it (line 1); elsewhere results carry none, which SARIF allows. Evidence
goes where no one resolves it against the repository: each result's `attachments` (relative to
the folder holding this file, `uriBaseId` REPORTDIR) and `properties`. `partialFingerprints`
(the check and its case) keep a finding the same alert from run to run; the upload step's
`category` keeps two targets' runs apart.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from urllib.parse import quote

from toolkit.conformance.model import CheckResult, Level, Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.common import TOOL, case_name, requirement_fields, requirement_line, tool_version
from toolkit.reports.json_report import write_json

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
"""The OASIS standard's own schema (2.1.0 with errata 01)."""
REPORT_DIR_BASE = "REPORTDIR"
FINGERPRINT = "rtcgateCase/v1"
FINDINGS = (Status.FAIL, Status.XPASS, Status.WARN, Status.XFAIL)
RULE_LEVEL = {Level.MUST: "error", Level.SHOULD: "warning", Level.POLICY: "note"}
EVIDENCE_DESCRIPTIONS = {
    "pcap": "the conversation as a pcap (Wireshark decrypts DTLS with the key log)",
    "pcap_decrypted": "the conversation with SRTP/SRTCP decrypted",
    "keylog": "the DTLS key log (SSLKEYLOGFILE format)",
    "srtp_keys": "the SRTP master keys and salts, per direction",
    "replay": "the command line that replays this check with the same seed",
}


def _rule(result: CheckResult) -> dict:
    check = result.check
    requirement = check.requirement
    markdown = [f"**{check.level.value}**"]
    if requirement is not None:
        markdown = [f"**{check.level.value}** — {requirement.cite}:", "", f"> {requirement.text}"]
        if requirement.prevents:
            markdown += ["", f"Prevents: {requirement.prevents}"]
        if requirement.note:
            markdown += ["", f"Why {check.level.value}: {requirement.note}"]
    markdown += ["", f"Passing means: {check.title}.", "", f"References: {check.rfc}."]
    return {
        "id": check.id,
        "name": check.id.replace("-", ""),
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": f"{check.title} ({requirement_line(check)})"},
        "help": {"text": f"{requirement_line(check)}\nPassing means: {check.title}.\nReferences: {check.rfc}.",
                 "markdown": "\n".join(markdown)},
        "defaultConfiguration": {"level": RULE_LEVEL[check.level]},
        "properties": {"profile": check.profile, "rfc": check.rfc, **requirement_fields(check),
                       "tags": [check.profile, check.family, check.level.value]},
    }


def _level(result: CheckResult) -> str:
    if result.status in (Status.FAIL, Status.XPASS):
        return "error"
    if result.status is Status.XFAIL:
        return "note"
    return RULE_LEVEL[result.check.level]


def _result(result: CheckResult, rule_index: int, name: str, location: list[dict]) -> dict:
    text = result.message or "; ".join(note for note in result.notes if "\n" not in note) or result.status.value
    entry = {
        "ruleId": result.check.id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": _level(result),
        "message": {"text": f"{name}: {result.status.value}: {text}"},
        "partialFingerprints": {FINGERPRINT: hashlib.sha256(f"{result.check.id}\n{name}".encode()).hexdigest()},
        "properties": {"status": result.status.value, "seed": result.seed, "replay": result.replay,
                       "duration": round(result.duration, 3), "evidence": dict(result.artifacts)},
    }
    if location:
        entry["locations"] = location
    if result.artifacts:
        entry["attachments"] = [
            {"description": {"text": EVIDENCE_DESCRIPTIONS.get(kind, kind)},
             "artifactLocation": {"uri": quote(PurePath(path).as_posix()), "uriBaseId": REPORT_DIR_BASE}}
            for kind, path in result.artifacts.items()]
    if result.status is Status.XFAIL:
        entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                  "justification": result.xfail_comment or ""}]
    return entry


def workflow_location(environ: Mapping[str, str]) -> list[dict]:
    """The GitHub Actions workflow file that ran the gate, as a repository-relative location; [] elsewhere.

    GITHUB_WORKFLOW_REF is "owner/repo/.github/workflows/ci.yml@refs/heads/main"."""
    path = environ.get("GITHUB_WORKFLOW_REF", "").partition("@")[0].split("/", 2)[-1]
    if not path.startswith(".github/workflows/"):
        return []
    return [{"physicalLocation": {"artifactLocation": {"uri": quote(path)}, "region": {"startLine": 1}},
             "message": {"text": "the workflow that ran the rtcgate conformance gate"}}]


def _notification(result: CheckResult, rule_index: int, name: str) -> dict:
    return {"level": "error", "message": {"text": f"{name}: {result.message}"},
            "associatedRule": {"id": result.check.id, "index": rule_index}}


def sarif_dict(run: RunResult, environ: Mapping[str, str] | None = None) -> dict:
    location = workflow_location(os.environ if environ is None else environ)
    rules: list[dict] = []
    index: dict[str, int] = {}
    results, notifications = [], []
    everything = [(case_name(r, i), r) for i, r in enumerate(run.sanity)] + [(r.check.id, r) for r in run.results]
    for name, result in everything:
        if result.check.id not in index:
            index[result.check.id] = len(rules)
            rules.append(_rule(result))
        if result.status in FINDINGS:
            results.append(_result(result, index[result.check.id], name, location))
        elif result.status is Status.ERROR:
            notifications.append(_notification(result, index[result.check.id], name))
    invocation = {
        "executionSuccessful": not notifications and not run.stopped,
        "startTimeUtc": run.started.replace("+00:00", "Z"),
        "properties": {"target": run.target, "seed": run.seed, "target_echoes": run.target_echoes,
                       "strict": run.strict.value, "exit_code": run.exit_code, "stopped": run.stopped,
                       "summary": {status.value: count for status, count in run.counts().items()}},
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    sarif_run = {
        "tool": {"driver": {"name": TOOL, "version": tool_version(), "rules": rules}},
        "invocations": [invocation],
        "results": results,
    }
    if any("attachments" in result for result in results):
        sarif_run["originalUriBaseIds"] = {REPORT_DIR_BASE: {"description": {
            "text": "the folder holding this SARIF file (rtcgate's report directory)"}}}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [sarif_run]}


def write_sarif(run: RunResult, path: Path) -> Path:
    return write_json(path, sarif_dict(run))
