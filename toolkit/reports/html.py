"""The HTML writer of every report page (a conformance run, a load run, the interop matrix): a
template of `templates/` rendered by `templating` (autoescaped, on the shared base page: one
inline style sheet, no scripts, fonts or other external assets) and written as one UTF-8 file.
What a page shows is computed by its report's module (`conformance`, `toolkit.load.report`,
`toolkit.interop.report`)."""

from __future__ import annotations

from pathlib import Path

from toolkit.reports.templating import render


def write_html(path: Path, template: str, **context: object) -> Path:
    """Render `template` (e.g. "load.html.j2") with `context` into `path`; return the path."""
    path.write_text(render(template, **context), encoding="utf-8")
    return path
