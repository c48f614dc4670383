"""Expected conformance verdicts per third-party target: the file format, the comparison, a draft.

A verdicts file (tests/answerers/expected/<target>.txt) has one line per check:

    CHECK-ID  STATUS  # reason

STATUS is PASS, FAIL, WARN or SKIP; the reason says why that is the right verdict for that target
(what the stack does, with its RFC), so a changed verdict is a decision, not noise. Where the
stack's own behaviour varies from run to run (a timer it races, a load-sensitive figure), STATUS
may name the verdicts it takes, `PASS|WARN`, and the reason must say why it varies. Blank lines
and lines starting with `#` are comments. `parse_verdicts` turns a bad file into one
`VerdictFileError` naming the file, the line and the problem; `differences` lists every check
whose verdict differs from a run's rtcgate.json; `draft_verdicts` writes a first file from a
run (each check's status, its message or notes as the reason) for a human to edit:

    python -m tests.answerers.verdicts draft REPORT_DIR/rtcgate.json > tests/answerers/expected/NAME.txt
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

EXPECTED_DIR = Path(__file__).parent / "expected"
STATUSES = ("PASS", "FAIL", "WARN", "SKIP")
"""What `rtcgate check` reports without an expected-failures file (WARN: a SHOULD or POLICY not met)."""
LINE = re.compile(r"^(?P<check>\S+)\s+(?P<status>\S+)\s*(?:#\s*(?P<reason>.*?))?\s*$")
CHECK_ID = re.compile(r"^[A-Z]+-\d{2}$")
REASON_LENGTH = 200
HEADER = """\
# Expected `rtcgate check` verdicts for the {target} target (tests/answerers).
# One line per check: CHECK-ID  STATUS  # reason   (STATUS: PASS, FAIL, WARN or SKIP; A|B where it varies).
# The reason says why this verdict is right for this stack; edit the drafted ones.
"""


class VerdictFileError(ValueError):
    """A verdicts file line that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Verdict:
    check: str
    status: str
    """One status, or several joined by '|' for a target whose behaviour varies."""
    reason: str

    def allows(self, status: str) -> bool:
        return status in self.status.split("|")


@dataclass(frozen=True)
class Difference:
    check: str
    expected: str
    got: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: expected {self.expected}, got {self.got}: {self.message}"


def parse_verdicts(text: str, *, source: str = "verdicts", known_checks: Iterable[str] | None = None) -> dict[str, Verdict]:
    """The file's verdicts by check ID, in file order; a bad line raises VerdictFileError."""
    known = set(known_checks) if known_checks is not None else None
    verdicts: dict[str, Verdict] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}:{number}"
        match = LINE.match(stripped)
        if match is None:
            raise VerdictFileError(f"{where}: expected 'CHECK-ID  STATUS  # reason', got {stripped!r}")
        check, status, reason = match["check"], match["status"], (match["reason"] or "").strip()
        if not CHECK_ID.match(check):
            raise VerdictFileError(f"{where}: {check!r} is not a check ID like STUN-01")
        if known is not None and check not in known:
            raise VerdictFileError(f"{where}: {check} is not in the conformance catalog")
        if not set(status.split("|")) <= set(STATUSES) or len(set(status.split("|"))) != len(status.split("|")):
            raise VerdictFileError(f"{where}: status {status!r} of {check} is not one of {', '.join(STATUSES)} "
                                   "(or several of them joined by '|')")
        if not reason:
            raise VerdictFileError(f"{where}: {check} {status} has no '# reason'")
        if check in verdicts:
            raise VerdictFileError(f"{where}: {check} is listed twice")
        verdicts[check] = Verdict(check, status, reason)
    return verdicts


def read_verdicts(path: Path, *, known_checks: Iterable[str] | None = None) -> dict[str, Verdict]:
    return parse_verdicts(path.read_text(), source=path.name, known_checks=known_checks)


def differences(expected: dict[str, Verdict], results: list[dict]) -> list[Difference]:
    """Every check whose run status is not the expected one, including checks on one side only."""
    found = []
    ran = {result["id"]: result for result in results}
    for result in results:
        want = expected.get(result["id"])
        if want is None or not want.allows(result["status"]):
            found.append(Difference(result["id"], want.status if want else "(not in the file)",
                                    result["status"], one_line(result.get("message", ""))))
    for check, want in expected.items():
        if check not in ran:
            found.append(Difference(check, want.status, "(did not run)", "the run has no result for this check"))
    return found


def one_line(message: str, limit: int = REASON_LENGTH) -> str:
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def draft_verdicts(report: dict, *, target: str) -> str:
    """A verdicts file from an rtcgate.json report: each check's status and, as the reason to
    edit, its message (a PASS has none: its notes, what the check saw)."""
    lines = [HEADER.format(target=target)]
    for result in report["results"]:
        said = result.get("message") or "; ".join(result.get("notes") or [])
        reason = one_line(said) or "(no message: say why)"
        lines.append(f"{result['id']:<11} {result['status']:<5} # {reason}\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.answerers.verdicts",
                                     description="Draft an expected-verdicts file from an rtcgate.json report")
    commands = parser.add_subparsers(dest="command", required=True)
    draft = commands.add_parser("draft", help="print a verdicts file drafted from REPORT (rtcgate.json)")
    draft.add_argument("report", type=Path)
    draft.add_argument("--target", default=None, help="name for the header (default: the report's folder)")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        text = draft_verdicts(report, target=args.target or args.report.resolve().parent.name)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"verdicts: cannot draft from {args.report}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
