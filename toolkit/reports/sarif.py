"""SARIF 2.1.0: one rule per catalog check, one result per check run.

FAIL and XPASS are `kind: fail, level: error`; a WARN is a fail of level `warning` (a SHOULD)
or `note` (a POLICY), matching its rule's default level; XFAIL is a fail carrying an external
suppression with the expected-failures comment as justification; PASS is `kind: pass` and
SKIP `kind: notApplicable` (level none, as SARIF requires for those kinds). Each rule's help
text is the cited requirement. A failed result
points at its pcap (or replay file) as its location, so code-scanning UIs have something to link.
"""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.conformance.model import CheckResult, Level, Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.common import TOOL, case_name, requirement_fields, requirement_line, tool_version

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_KIND = {Status.PASS: "pass", Status.FAIL: "fail", Status.WARN: "fail", Status.XPASS: "fail", Status.XFAIL: "fail",
         Status.SKIP: "notApplicable"}
_LEVEL = {Status.FAIL: "error", Status.XPASS: "error", Status.XFAIL: "note"}
_RULE_LEVEL = {Level.MUST: "error", Level.SHOULD: "warning", Level.POLICY: "note"}


def _rule(result: CheckResult) -> dict:
    check = result.check
    return {
        "id": check.id,
        "name": check.id.replace("-", ""),
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": f"{check.title} ({check.rfc})"},
        "help": {"text": requirement_line(check)},
        "defaultConfiguration": {"level": _RULE_LEVEL[check.level]},
        "properties": {"profile": check.profile, "rfc": check.rfc, **requirement_fields(check),
                       "tags": [check.profile, check.family, check.level.value]},
    }


def _result(result: CheckResult, rule_index: int, name: str) -> dict:
    status = result.status
    text = result.message or "; ".join(note for note in result.notes if "\n" not in note) or status.value
    entry = {
        "ruleId": result.check.id,
        "ruleIndex": rule_index,
        "kind": _KIND[status],
        "level": _RULE_LEVEL[result.check.level] if status is Status.WARN else _LEVEL.get(status, "none"),
        "message": {"text": f"{name}: {status.value}: {text}"},
        "properties": {"status": status.value, "seed": result.seed, "replay": result.replay,
                       "duration": round(result.duration, 3)},
    }
    evidence = result.artifacts.get("pcap") or result.artifacts.get("replay")
    if evidence:
        entry["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": evidence}}}]
    if status is Status.XFAIL:
        entry["suppressions"] = [{"kind": "external", "justification": result.xfail_comment or ""}]
    return entry


def sarif_dict(run: RunResult) -> dict:
    rules: list[dict] = []
    index: dict[str, int] = {}
    results = []
    everything = [(case_name(r, i), r) for i, r in enumerate(run.sanity)] + [(r.check.id, r) for r in run.results]
    for name, result in everything:
        if result.check.id not in index:
            index[result.check.id] = len(rules)
            rules.append(_rule(result))
        results.append(_result(result, index[result.check.id], name))
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL, "version": tool_version(), "rules": rules}},
            "invocations": [{"executionSuccessful": True, "startTimeUtc": run.started.replace("+00:00", "Z"),
                             "properties": {"target": run.target, "seed": run.seed,
                                            "target_echoes": run.target_echoes}}],
            "results": results,
        }],
    }


def write_sarif(run: RunResult, path: Path) -> None:
    path.write_text(json.dumps(sarif_dict(run), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
