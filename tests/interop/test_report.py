"""interop.html: text badges instead of emoji, links to each cell's log, report and capture
(relative, inside the report folder), every value escaped; the markdown and JSON beside it."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.html_page import parse_page
from toolkit.interop.judge import CELLS, FAIL, NOT_APPLICABLE, PASS, XFAIL, Cell
from toolkit.interop.matrix import ClientResult, MatrixResult
from toolkit.interop.report import write_reports

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
EMOJI = re.compile("[\u2600-\u27bf\U0001f000-\U0001faff\ufe0f]")


def matrix(report_dir: Path) -> MatrixResult:
    workroot = report_dir / "interop"
    clients = []
    for name, status in (("chromium", PASS), ("firefox", FAIL)):
        workdir = workroot / name
        workdir.mkdir(parents=True)
        (workdir / f"{name}.log").write_text("client output\n")
        (workdir / f"{name}.report.json").write_text("{}")
        client = ClientResult(name, name.title(), "stack", "1.0", "reference server on 127.0.0.1",
                              workdir=str(workdir), duration=3.2)
        client.cells = {cell_id: Cell(status, f"evidence of {cell_id} {HOSTILE}") for cell_id, _ in CELLS}
        client.cells["ice_restart"] = Cell(NOT_APPLICABLE, "cannot restart")
        client.cells["voice_turn"] = Cell(XFAIL, "expected to fail")
        client.dtls = {"version": "DTLS 1.2", "cipher": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                       "srtp_profile": "SRTP_AEAD_AES_128_GCM"}
        clients.append(client)
    clients.append(ClientResult("wrtc", "wrtc", "stack", None, "–", missing=f"not here {HOSTILE}"))
    capture = workroot / "interop.pcap"
    capture.write_bytes(b"")
    return MatrixResult(clients, 1_700_000_000.0, 42.0, {"echo": "http://127.0.0.1:1/whip"}, str(capture), None)


def test_interop_page_has_text_badges_links_and_escapes(tmp_path):
    report_dir = tmp_path / "reports"
    paths = write_reports(matrix(report_dir), report_dir)
    html = paths["html"].read_text(encoding="utf-8")
    assert not EMOJI.search(html), EMOJI.search(html)
    page = parse_page(html)
    badges = [attrs["class"].split()[1] for tag, attrs in page.tags
              if tag == "span" and attrs.get("class", "").startswith("badge ")]
    assert {"PASS", "FAIL", "NA", "XFAIL", "missing"} <= set(badges)
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "img", "link", "iframe"}
    assert not re.search(r"@import|url\(", html)
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert "interop/chromium/chromium.log" in hrefs and "interop/firefox/firefox.report.json" in hrefs
    assert "interop/interop.pcap" in hrefs
    for href in hrefs:  # relative, inside the report folder, and there
        assert not href.startswith(("/", "http")) and ".." not in href
        assert (report_dir / href).is_file(), href
    cell_links = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert cell_links.count("interop/chromium/chromium.log") >= len(CELLS)  # every cell of the row links it
    text = "".join(page.text)
    assert HOSTILE in text  # shown as text, not markup
    assert "not installed" in text and "ECDHE-ECDSA AES-128-GCM-SHA256" in text
    titles = [attrs.get("title") for tag, attrs in page.tags if tag == "td" and attrs.get("title")]
    assert any(HOSTILE in title for title in titles)


def test_markdown_and_json_stay_as_they_were(tmp_path):
    paths = write_reports(matrix(tmp_path), tmp_path)
    report = json.loads(paths["json"].read_text())
    assert [c["name"] for c in report["clients"]] == ["chromium", "firefox", "wrtc"]
    markdown = paths["md"].read_text()
    assert "| Chromium | stack | 1.0 |" in markdown and "not installed" in markdown
