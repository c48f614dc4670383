"""JUnit XML: one testcase per check (and per sanity run), the RFC reference as a property.

XFAIL is written as skipped with type "xfail" and XPASS as a failure with type "xpass", the
way pytest's own JUnit output treats them, so CI dashboards count them as a CI would. A WARN
(a SHOULD or POLICY finding that does not gate) passes, with the finding in its properties and
at the top of its output. An ERROR (rtcgate itself failed, or the run stopped because the target
cannot be reached) is an `<error>`, never a `<failure>`: no verdict on the target; the suite's
`stopped` property says why a stopped run stopped.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from toolkit.conformance.model import CheckResult, Status
from toolkit.conformance.runner import RunResult
from toolkit.reports.common import TOOL, case_name, datagram_line, requirement_fields, requirement_line


def _properties(parent: ET.Element, values: dict[str, object]) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value not in (None, ""):
            ET.SubElement(properties, "property", name=name, value=str(value))


def _testcase(suite: ET.Element, result: CheckResult, name: str) -> None:
    case = ET.SubElement(suite, "testcase", classname=f"{TOOL}.{result.check.family}", name=name,
                         time=f"{result.duration:.3f}")
    _properties(case, {"rfc": result.check.rfc, **requirement_fields(result.check), "profile": result.check.profile,
                       "title": result.check.title, "verdict": result.status.value,
                       "seed": result.seed, "replay": result.replay, "xfail": result.xfail_comment,
                       **{f"evidence_{kind}": path for kind, path in result.artifacts.items()}})
    status = result.status
    if status is Status.FAIL:
        ET.SubElement(case, "failure", message=result.message, type="FAIL").text = (
            f"{result.message}\n\nrequirement: {requirement_line(result.check)}\nreplay: {result.replay}")
    elif status is Status.ERROR:
        ET.SubElement(case, "error", message=result.message, type="ERROR").text = (
            f"{result.message}\n\nreplay: {result.replay}")
    elif status is Status.XPASS:
        ET.SubElement(case, "failure", message=result.message, type="xpass")
    elif status is Status.SKIP:
        ET.SubElement(case, "skipped", message=result.message)
    elif status is Status.XFAIL:
        ET.SubElement(case, "skipped", type="xfail", message=f"expected failure ({result.xfail_comment}): {result.message}")
    lines = [*result.notes, "", *map(datagram_line, result.datagrams)]
    if status is Status.WARN:
        lines[:0] = [f"WARN: {result.message}", f"requirement: {requirement_line(result.check)}",
                     f"replay: {result.replay}", ""]
    ET.SubElement(case, "system-out").text = "\n".join(lines)


def write_junit(run: RunResult, path: Path) -> None:
    everything = [(case_name(r, i), r) for i, r in enumerate(run.sanity)] + [(r.check.id, r) for r in run.results]
    counts = {"tests": str(len(everything)),
              "failures": str(sum(1 for _, r in everything if r.status.bad)),
              "errors": str(sum(1 for _, r in everything if r.status is Status.ERROR)),
              "skipped": str(sum(1 for _, r in everything if r.status in (Status.SKIP, Status.XFAIL))),
              "time": f"{run.duration:.3f}"}
    root = ET.Element("testsuites", name=TOOL, **counts)
    suite = ET.SubElement(root, "testsuite", name=f"{TOOL} conformance", **counts, timestamp=run.started,
                          hostname=socket.gethostname())
    _properties(suite, {"target": run.target, "seed": run.seed, "strict": run.strict.value,
                        "target_echoes": _yes_no(run.target_echoes), "stopped": run.stopped})
    for name, result in everything:
        _testcase(suite, result, name)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else "yes" if value else "no"
