"""The conformance HTML page from its template: self-contained, escaped, and its templates shipped."""
from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from tests.support.html_page import parse_page
from toolkit.conformance.model import Check, CheckResult, Datagram, Status
from toolkit.conformance.runner import RunResult
from toolkit.conformance.steps import Wait
from toolkit.reports.conformance import render_page

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def hostile_run() -> RunResult:
    check = Check("STUN-07", "security", f"RFC 8489 {HOSTILE}", f"title {HOSTILE}", (Wait(0),))
    failed = CheckResult(check=check, status=Status.FAIL, message=f"got {HOSTILE}", duration=0.5, seed=1,
                         replay=f"rtcgate check --only STUN-07 {HOSTILE}", notes=[f"note {HOSTILE}"],
                         xfail_comment=f"known {HOSTILE}",
                         datagrams=[Datagram(0.001, "out", "main", ("127.0.0.1", 5000), ("127.0.0.1", 3478),
                                             b"\x00\x01\x00\x00")],
                         artifacts={"pcap": "evidence/STUN-07/conversation.pcap"})
    passed = CheckResult(check=Check("STUN-01", "core", "RFC 8489", "title", (Wait(0),)), status=Status.PASS, message="",
                         duration=0.1, seed=1)
    return RunResult(f"target {HOSTILE}", 3, "2025-01-01T00:00:00+00:00", 1.0, [passed, failed],
                     target_echoes=False)


def test_page_is_well_formed_escaped_and_self_contained():
    html = render_page(hostile_run())
    assert html.startswith("<!DOCTYPE html>")
    page = parse_page(html)
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "img", "link", "iframe", "object"}
    assert not [attrs for _, attrs in page.tags if {"src", "onerror"} & set(attrs)]
    text = "".join(page.text)
    for shown in (f"got {HOSTILE}", f"note {HOSTILE}", f"known {HOSTILE}", f"title {HOSTILE}", f"target {HOSTILE}"):
        assert shown in text
    assert [attrs["href"] for tag, attrs in page.tags if tag == "a"] == ["evidence/STUN-07/conversation.pcap"]
    badges = [attrs["class"] for tag, attrs in page.tags if tag == "span" and "badge" in attrs.get("class", "")]
    assert "badge FAIL" in badges and "badge PASS" in badges
    assert "FAILED" in text and "(target echoes: no)" in text


def test_every_template_is_package_data():
    """An installed wheel has only what [tool.setuptools.package-data] names: every template must match."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["toolkit.reports"]
    package = ROOT / "toolkit" / "reports"
    templates = [path.relative_to(package).as_posix() for path in (package / "templates").iterdir() if path.is_file()]
    assert {"templates/base.html.j2", "templates/style.css"} <= set(templates)
    for name in templates:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), f"{name} would not be installed"
