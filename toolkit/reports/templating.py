"""The HTML pages' templates (conformance, load, interop): one jinja2 environment, autoescaped.

Templates live in `toolkit/reports/templates/` (package data, read through jinja2's
PackageLoader, so they load from an installed wheel as from a checkout). Every page extends
`base.html.j2`: one inline style sheet, no scripts, fonts or other external assets, so a report
is one file to mail or archive. Autoescaping is on for every template: whatever a target or a
client put in a message reaches the page as text, never as markup; what is already markup (an
SVG chart drawn by a template) is passed as `markupsafe.Markup`.
"""
from __future__ import annotations

from functools import lru_cache

import jinja2
from markupsafe import Markup

__all__ = ["Markup", "render"]


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("toolkit.reports", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def render(template: str, **context) -> str:
    """The named template (e.g. "load.html.j2") rendered with `context`."""
    return environment().get_template(template).render(**context)
