"""The machine-readable report: every result with its notes, evidence paths and datagrams; `stopped`
says why a run stopped early (null for one that went to its end)."""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.conformance.model import CheckResult
from toolkit.conformance.runner import RunResult
from toolkit.conformance.model import Status
from toolkit.reports.common import TOOL, case_name, datagram_hex, kind_of, requirement_fields, tool_version


def result_dict(result: CheckResult, name: str) -> dict:
    full = result.status.bad or result.status in (Status.WARN, Status.XFAIL, Status.ERROR)
    return {
        "id": result.check.id,
        "name": name,
        "profile": result.check.profile,
        "rfc": result.check.rfc,
        "title": result.check.title,
        **requirement_fields(result.check),
        "status": result.status.value,
        "message": result.message,
        "duration": round(result.duration, 4),
        "seed": result.seed,
        "notes": result.notes,
        "xfail_comment": result.xfail_comment,
        "replay": result.replay,
        "artifacts": result.artifacts,
        "datagrams": [
            {
                "time": round(d.time, 6),
                "direction": d.direction,
                "socket": d.socket,
                "local": list(d.local) if d.local else None,
                "remote": list(d.remote),
                "kind": kind_of(d.data),
                "length": len(d.data),
                "hex": datagram_hex(d, full),
                **({"note": d.note} if d.note else {}),
            }
            for d in result.datagrams
        ],
    }


def run_dict(run: RunResult) -> dict:
    return {
        "tool": TOOL,
        "version": tool_version(),
        "target": run.target,
        "seed": run.seed,
        "target_echoes": run.target_echoes,
        "started": run.started,
        "duration": round(run.duration, 3),
        "exit_code": run.exit_code,
        "stopped": run.stopped,
        "strict": run.strict.value,
        "summary": {status.value: count for status, count in sorted(run.counts().items(), key=lambda kv: kv[0].value)},
        "sanity": [result_dict(result, case_name(result, index)) for index, result in enumerate(run.sanity)],
        "results": [result_dict(result, result.check.id) for result in run.results],
    }


def write_json(run: RunResult, path: Path) -> None:
    path.write_text(json.dumps(run_dict(run), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
