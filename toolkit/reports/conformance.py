"""The reports of a conformance run: JUnit XML, JSON, SARIF 2.1.0 and one self-contained HTML
page, with the evidence of its findings.

`write_reports(run, directory)` writes the evidence of every failed or warned check first (so each report
can point at it; an ERROR's too when its conversation reached the wire, and none twice: the pytest
plugin writes a failing item's as it fails), then the four reports; it returns their paths by kind.
The JSON report (`run_dict`) holds every result with its notes, evidence paths and datagrams;
`stopped` says why a run stopped early (null for one that went to its end). The HTML page
(`templates/conformance.html.j2`, `page_context`) has the summary and one row per check, its
details (notes, datagrams, replay, evidence links) folded under it.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.conformance.model import CheckResult, Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.common import (
    TOOL,
    VERDICTS,
    case_name,
    datagram_hex,
    datagram_line,
    kind_of,
    requirement_fields,
    tool_version,
)
from toolkit.reports.evidence import write_evidence
from toolkit.reports.html import write_html
from toolkit.reports.json_report import write_json
from toolkit.reports.junit import write_junit
from toolkit.reports.sarif import write_sarif
from toolkit.reports.templating import render

EVIDENCE_FOR = (Status.FAIL, Status.WARN, Status.XFAIL, Status.ERROR)
FILE_NAMES = {"junit": "rtcgate-junit.xml", "json": "rtcgate.json", "sarif": "rtcgate.sarif", "html": "rtcgate.html"}
PAGE = "conformance.html.j2"
MAX_DATAGRAM_LINES = 300


def write_reports(run: RunResult, directory: str | Path) -> dict[str, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for result in (*run.sanity, *run.results):
        if needs_evidence(result):
            write_evidence(result, directory)
    paths = {kind: directory / name for kind, name in FILE_NAMES.items()}
    write_junit(run, paths["junit"])
    write_json(paths["json"], run_dict(run))
    write_sarif(run, paths["sarif"])
    write_html(paths["html"], PAGE, **page_context(run))
    return paths


def needs_evidence(result: CheckResult) -> bool:
    """A finding whose evidence is not written yet (an ERROR only if something crossed the wire)."""
    if result.artifacts or result.status not in EVIDENCE_FOR:
        return False
    return result.status is not Status.ERROR or bool(result.datagrams)


# -- the JSON report -----------------------------------------------------------------------------


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


# -- the HTML page ---------------------------------------------------------------------------------


def _row(result: CheckResult, name: str) -> dict:
    lines = [datagram_line(d) for d in result.datagrams[:MAX_DATAGRAM_LINES]]
    if len(result.datagrams) > MAX_DATAGRAM_LINES:
        lines.append(f"… {len(result.datagrams) - MAX_DATAGRAM_LINES} more datagrams (see the JSON report)")
    return {"name": name, "result": result, "datagrams": lines}


def page_context(run: RunResult) -> dict:
    """What the page shows: the run, its verdict and counts, one row per check (sanity first and last)."""
    counts = run.counts()
    rows = [_row(r, case_name(r, i)) for i, r in enumerate(run.sanity[:1])]
    rows += [_row(r, r.check.id) for r in run.results]
    rows += [_row(r, case_name(r, 1)) for r in run.sanity[1:]]
    return {"tool": TOOL, "version": tool_version(), "run": run, "verdict": VERDICTS[run.exit_code],
            "counts": [(status.value, counts.get(status, 0)) for status in Status], "rows": rows}


def render_page(run: RunResult) -> str:
    return render(PAGE, **page_context(run))
