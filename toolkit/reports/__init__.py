"""Reports of a conformance run: JUnit XML, JSON, SARIF 2.1.0 and one self-contained HTML page.

`write_reports(run, directory)` writes the evidence of every failed or warned check first (so each report
can point at it; an ERROR's too when its conversation reached the wire, and none twice: the pytest
plugin writes a failing item's as it fails), then the four reports; it returns their paths by kind.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.conformance.model import Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.html import write_html
from toolkit.reports.json_report import write_json
from toolkit.reports.junit import write_junit
from toolkit.reports.sarif import write_sarif

EVIDENCE_FOR = (Status.FAIL, Status.WARN, Status.XFAIL, Status.ERROR)

FILE_NAMES = {"junit": "rtcgate-junit.xml", "json": "rtcgate.json", "sarif": "rtcgate.sarif", "html": "rtcgate.html"}


def write_reports(run: RunResult, directory: str | Path) -> dict[str, Path]:
    from toolkit.conformance.evidence import write_evidence

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for result in (*run.sanity, *run.results):
        if needs_evidence(result):
            write_evidence(result, directory)
    paths = {kind: directory / name for kind, name in FILE_NAMES.items()}
    write_junit(run, paths["junit"])
    write_json(run, paths["json"])
    write_sarif(run, paths["sarif"])
    write_html(run, paths["html"])
    return paths


def needs_evidence(result) -> bool:
    """A finding whose evidence is not written yet (an ERROR only if something crossed the wire)."""
    if result.artifacts or result.status not in EVIDENCE_FOR:
        return False
    return result.status is not Status.ERROR or bool(result.datagrams)
