"""One self-contained HTML page: summary, one row per check, details (notes, datagrams, replay,
evidence links) folded under each row. No scripts, no external styles or fonts.

The page is `templates/conformance.html.j2` (rendered by `toolkit.reports.templating`,
autoescaped); this module only picks what it shows.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.conformance.model import CheckResult, Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.common import TOOL, VERDICTS, case_name, datagram_line, tool_version
from toolkit.reports.templating import render

MAX_DATAGRAM_LINES = 300


def _row(result: CheckResult, name: str) -> dict:
    lines = [datagram_line(d) for d in result.datagrams[:MAX_DATAGRAM_LINES]]
    if len(result.datagrams) > MAX_DATAGRAM_LINES:
        lines.append(f"… {len(result.datagrams) - MAX_DATAGRAM_LINES} more datagrams (see the JSON report)")
    return {"name": name, "result": result, "datagrams": lines}


def render_html(run: RunResult) -> str:
    counts = run.counts()
    rows = [_row(r, case_name(r, i)) for i, r in enumerate(run.sanity[:1])]
    rows += [_row(r, r.check.id) for r in run.results]
    rows += [_row(r, case_name(r, 1)) for r in run.sanity[1:]]
    return render("conformance.html.j2", tool=TOOL, version=tool_version(), run=run,
                  verdict=VERDICTS[run.exit_code],
                  counts=[(status.value, counts.get(status, 0)) for status in Status], rows=rows)


def write_html(run: RunResult, path: Path) -> None:
    path.write_text(render_html(run), encoding="utf-8")
