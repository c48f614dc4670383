"""One self-contained HTML page: summary, one row per check, details (notes, datagrams, replay,
evidence links) folded under each row. No scripts, no external styles or fonts."""

from __future__ import annotations

from html import escape
from pathlib import Path

from toolkit.conformance.model import CheckResult, Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.common import TOOL, VERDICTS, case_name, datagram_line, tool_version

MAX_DATAGRAM_LINES = 300

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:top}
.status{font-weight:bold;font-family:monospace}
.PASS{color:#176f2c}.FAIL{color:#b00020}.XPASS{color:#b00020}.SKIP{color:#777}.XFAIL{color:#a05a00}
.WARN{color:#a05a00}.ERROR{color:#6a1b9a} blockquote{margin:.3em 0 .3em 1em;padding-left:.6em;border-left:3px solid #ccc}
.counts span{margin-right:1.5em} pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}
details summary{cursor:pointer} code{background:#f6f6f6;padding:1px 4px}
"""


def _row(result: CheckResult, name: str) -> str:
    status = result.status.value
    details = []
    if result.message:
        details.append(f"<p>{escape(result.message)}</p>")
    if result.xfail_comment:
        details.append(f"<p>Expected to fail: {escape(result.xfail_comment)}</p>")
    if result.notes:
        details.append("<pre>" + escape("\n".join(result.notes)) + "</pre>")
    if result.replay:
        details.append(f"<p>Replay: <code>{escape(result.replay)}</code></p>")
    if result.artifacts:
        links = ", ".join(f'<a href="{escape(path)}">{escape(kind)}</a>' for kind, path in result.artifacts.items())
        details.append(f"<p>Evidence: {links}</p>")
    if result.datagrams:
        lines = [datagram_line(d) for d in result.datagrams[:MAX_DATAGRAM_LINES]]
        if len(result.datagrams) > MAX_DATAGRAM_LINES:
            lines.append(f"… {len(result.datagrams) - MAX_DATAGRAM_LINES} more datagrams (see the JSON report)")
        details.append(f"<details><summary>{len(result.datagrams)} datagrams</summary><pre>"
                       + escape("\n".join(lines)) + "</pre></details>")
    body = "".join(details)
    check = result.check
    return (f'<tr id="{escape(name)}"><td>{escape(name)}</td><td>{escape(check.profile)}</td>'
            f"<td>{check.level.value}</td>"
            f'<td class="status {status}">{status}</td><td>{result.duration:.2f}s</td>'
            f"<td><details><summary>{escape(check.title)}</summary>"
            f"{_requirement(check)}<p><small>{escape(check.rfc)}</small></p>{body}</details></td></tr>")


def _requirement(check) -> str:
    requirement = check.requirement
    if requirement is None:
        return ""
    parts = [f"<p>{check.level.value} — {escape(requirement.cite)}:</p><blockquote>{escape(requirement.text)}</blockquote>"]
    if requirement.prevents:
        parts.append(f"<p>Prevents: {escape(requirement.prevents)}</p>")
    if requirement.note:
        parts.append(f"<p><small>{escape(requirement.note)}</small></p>")
    return "".join(parts)


def render_html(run: RunResult) -> str:
    counts = run.counts()
    summary = "".join(f'<span class="{s.value}">{s.value} {counts.get(s, 0)}</span>' for s in Status)
    verdict = VERDICTS[run.exit_code]
    rows = [_row(r, case_name(r, i)) for i, r in enumerate(run.sanity[:1])]
    rows += [_row(r, r.check.id) for r in run.results]
    rows += [_row(r, case_name(r, 1)) for r in run.sanity[1:]]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{TOOL} conformance: {escape(run.target)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{TOOL} conformance — {verdict}</h1>"
        f"{_stopped(run)}<p>Target: {escape(run.target)}{_echoes(run)}<br>"
        f"Started {escape(run.started)}, {run.duration:.1f} s, seed {run.seed}, "
        f"gating on {run.strict.value} and stronger, "
        f"{TOOL} {escape(tool_version())}</p>"
        f'<p class="counts">{summary}</p>'
        "<table><thead><tr><th>Check</th><th>Profile</th><th>Level</th><th>Status</th><th>Time</th><th>What passing means</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )


def write_html(run: RunResult, path: Path) -> None:
    path.write_text(render_html(run), encoding="utf-8")


def _echoes(run: RunResult) -> str:
    if run.target_echoes is None:
        return ""
    return f" (target echoes: {'yes' if run.target_echoes else 'no'})"


def _stopped(run: RunResult) -> str:
    return f'<p class="status ERROR">The run stopped: {escape(run.stopped)}</p>' if run.stopped else ""
