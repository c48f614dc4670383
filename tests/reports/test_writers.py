"""The report writers: JUnit XML parses, HTML is one file, evidence opens, errors are no failures."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from tests.reports.sample import result
from toolkit.conformance.model import Status
from toolkit.reports.conformance import write_reports


def test_junit_has_one_testcase_per_check_with_the_rfc_property(run, tmp_path):
    paths = write_reports(run, tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert list(cases) == ["SANITY (before)", "SANITY (after)", "STUN-01", "STUN-07", "STUN-10", "DTLS-08", "DTLS-09"]
    properties = {p.get("name"): p.get("value") for p in cases["STUN-07"].iter("property")}
    assert properties["rfc"] == "RFC 8489 §STUN-07"
    assert properties["replay"] == "rtcgate check --reference --only STUN-07 --seed 9"
    assert properties["evidence_pcap"] == "evidence/STUN-07/conversation.pcap"
    assert cases["STUN-07"].find("failure").get("message").startswith("expected silence")
    assert cases["DTLS-09"].find("failure").get("type") == "xpass"
    assert cases["DTLS-08"].find("skipped").get("type") == "xfail"
    assert cases["STUN-10"].find("skipped") is not None
    assert root.get("failures") == "2" and root.get("skipped") == "2" and root.get("tests") == "7"


def test_html_is_one_self_contained_file(run, tmp_path):
    page = write_reports(run, tmp_path)["html"].read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|src=|@import|url\(", page)
    assert "STUN-07" in page and "known gap &lt;b&gt;" in page
    assert 'href="evidence/STUN-07/conversation.pcap"' in page


def test_json_and_evidence_of_a_failure(run, tmp_path):
    paths = write_reports(run, tmp_path)
    report = json.loads(paths["json"].read_text())
    assert report["exit_code"] == 1
    assert report["summary"] == {"FAIL": 1, "PASS": 1, "SKIP": 1, "XFAIL": 1, "XPASS": 1}
    failed = next(r for r in report["results"] if r["id"] == "STUN-07")
    assert failed["datagrams"][0]["hex"] == "000100002112a442" + "00" * 12
    evidence = tmp_path / "evidence" / "STUN-07"
    pcap = (evidence / "conversation.pcap").read_bytes()
    assert pcap[:4] == bytes.fromhex("d4c3b2a1")  # little-endian libpcap magic
    assert pcap.count(b"\x21\x12\xa4\x42") == 2  # both datagrams on the wire; the unsent one is not
    assert (evidence / "keylog.txt").read_text().startswith("CLIENT_RANDOM ")
    assert "SRTP_AES128_CM_SHA1_80" in (evidence / "srtp-keys.txt").read_text()
    assert (evidence / "replay.txt").read_text().startswith("rtcgate check --reference --only STUN-07 --seed 9\n")
    assert (tmp_path / "evidence" / "DTLS-08").is_dir()  # XFAIL keeps its evidence too
    assert not (tmp_path / "evidence" / "STUN-01").exists()


def test_an_error_is_a_junit_error_not_a_failure_and_exits_2(run, tmp_path):
    run.results.append(result("DTLS-02", Status.ERROR, "the check itself raised ZeroDivisionError: oops",
                              notes=["Traceback (most recent call last):\n  ...\nZeroDivisionError: oops\n"]))
    paths = write_reports(run, tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    case = next(case for case in root.iter("testcase") if case.get("name") == "DTLS-02")
    assert case.find("failure") is None
    assert case.find("error").get("message") == "the check itself raised ZeroDivisionError: oops"
    assert (root.get("errors"), root.get("failures"), root.get("tests")) == ("1", "2", "8")
    report = json.loads(paths["json"].read_text())
    assert report["exit_code"] == 2 and report["stopped"] is None
    assert not (tmp_path / "evidence" / "DTLS-02").exists()  # nothing crossed the wire: no evidence to keep


def test_a_stopped_run_says_why_in_every_report(tmp_path):
    from toolkit.conformance.runner import RunResult

    why = "the target cannot be reached: WHIP http://127.0.0.1:9/whip: signaling failed: connection refused"
    stopped = RunResult("WHIP http://127.0.0.1:9/whip", 9, "2025-01-01T00:00:00+00:00", 0.2, [],
                        [result("SANITY", Status.ERROR, why)], stopped=why)
    paths = write_reports(stopped, tmp_path)
    suite = ET.parse(paths["junit"]).getroot().find("testsuite")
    assert {p.get("name"): p.get("value") for p in suite.find("properties")}["stopped"] == why
    assert suite.find("testcase").find("error").get("message") == why
    report = json.loads(paths["json"].read_text())
    assert (report["exit_code"], report["stopped"]) == (2, why)
    assert "The run stopped: the target cannot be reached" in paths["html"].read_text()


def test_every_report_writes_json_and_html_with_the_shared_writers(run, tmp_path):
    """Conformance, SARIF, load and interop JSON are one format (strict, one-space indent, text as
    is, a final newline), and every page is written by the one HTML writer."""
    import math

    from tests.interop.test_report import matrix
    from toolkit.interop.report import write_reports as write_interop
    from toolkit.load.report import write_report as write_load
    from toolkit.reports.json_report import write_json

    conformance = write_reports(run, tmp_path / "conformance")
    load_json, load_html = write_load({"target": "ünïcode → target", "rtt_ms": math.inf, "lost": [1.0, math.nan]},
                                      tmp_path / "load")
    interop = write_interop(matrix(tmp_path / "interop"), tmp_path / "interop")
    files = [conformance["json"], conformance["sarif"], load_json, interop["json"]]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text == json.dumps(json.loads(text), indent=1, ensure_ascii=False) + "\n", path.name
    load = json.loads(load_json.read_text(encoding="utf-8"))
    assert (load["target"], load["rtt_ms"], load["lost"]) == ("ünïcode → target", None, [1.0, None])
    assert "ünïcode → target" in load_json.read_text(encoding="utf-8")  # not \u-escaped
    for page in (conformance["html"], load_html, interop["html"]):
        assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>"), page.name
    path = write_json(tmp_path / "strict.json", {"nested": [{"x": -math.inf}], "t": (1, 2)})
    assert path.read_text() == '{\n "nested": [\n  {\n   "x": null\n  }\n ],\n "t": [\n  1,\n  2\n ]\n}\n'
