"""The report writers: JUnit XML parses, SARIF has the 2.1.0 fields, HTML is one file, evidence opens."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from toolkit.conformance.model import Check, CheckResult, Datagram, Status
from toolkit.conformance.runner import RunResult
from toolkit.conformance.steps import Wait
from toolkit.reports import write_reports

SERVER = ("127.0.0.1", 3478)
CLIENT = ("127.0.0.1", 50000)


def result(check_id: str, status: Status, message: str = "", **extra) -> CheckResult:
    check = Check(check_id, "security", f"RFC 8489 §{check_id}", f"title of {check_id}", (Wait(0),))
    return CheckResult(check=check, status=status, message=message, duration=0.25, seed=9,
                       replay=f"rtcgate check --reference --only {check_id} --seed 9", **extra)


@pytest.fixture
def run() -> RunResult:
    binding = bytes.fromhex("000100002112a442") + bytes(12)
    failed = result("STUN-07", Status.FAIL, "expected silence; got a STUN error (48 bytes, error 400)",
                    notes=["main: error 400"],
                    datagrams=[Datagram(0.001, "out", "main", CLIENT, SERVER, binding),
                               Datagram(0.002, "in", "main", CLIENT, SERVER, binding[:1] + b"\x11" + binding[2:]),
                               Datagram(0.003, "out", "main", CLIENT, SERVER, b"\x80" * 30, note="dropped by the check, never sent")],
                    keylog=[b"CLIENT_RANDOM " + b"00" * 32 + b" " + b"11" * 48],
                    srtp_keys=[(CLIENT, SERVER, "SRTP_AES128_CM_SHA1_80", bytes(30))])
    results = [
        result("STUN-01", Status.PASS, notes=["success response"]),
        failed,
        result("STUN-10", Status.SKIP, "the target offers no IPv6 candidate"),
        result("DTLS-08", Status.XFAIL, "renegotiated", xfail_comment="known gap <b>"),
        result("DTLS-09", Status.XPASS, "expected to fail but passed"),
    ]
    sanity = [result("SANITY", Status.PASS), result("SANITY", Status.PASS)]
    return RunResult("reference server", 9, "2025-01-01T00:00:00+00:00", 1.5, results, sanity)


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


def test_sarif_has_the_2_1_0_fields(run, tmp_path):
    sarif = json.loads(write_reports(run, tmp_path)["sarif"].read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    (only_run,) = sarif["runs"]
    driver = only_run["tool"]["driver"]
    assert driver["name"] == "rtcgate"
    assert [rule["id"] for rule in driver["rules"]] == ["SANITY", "STUN-01", "STUN-07", "STUN-10", "DTLS-08", "DTLS-09"]
    by_rule = {r["ruleId"]: r for r in only_run["results"]}
    assert (by_rule["STUN-07"]["kind"], by_rule["STUN-07"]["level"]) == ("fail", "error")
    assert by_rule["STUN-07"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "evidence/STUN-07/conversation.pcap"
    assert (by_rule["STUN-01"]["kind"], by_rule["STUN-01"]["level"]) == ("pass", "none")
    assert by_rule["STUN-10"]["kind"] == "notApplicable"
    assert by_rule["DTLS-08"]["suppressions"] == [{"kind": "external", "justification": "known gap <b>"}]
    assert only_run["invocations"][0]["startTimeUtc"] == "2025-01-01T00:00:00Z"
    for entry in only_run["results"]:
        assert driver["rules"][entry["ruleIndex"]]["id"] == entry["ruleId"]


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
