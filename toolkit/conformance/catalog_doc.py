"""The check catalog as a Markdown page, made from the checks' own data.

`docs/checks.md` is this module's output; a test fails when the two differ, so the page a user
reads always says what the gate judges. Rewrite it with
`python -m toolkit.conformance.catalog_doc --write docs/checks.md`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from toolkit.conformance.model import Check, Level

FAMILIES = {
    "SANITY": "Sanity — the target works at all (run first and last)",
    "DEMUX": "DEMUX — one port, many protocols",
    "STUN": "STUN — message handling",
    "ICE": "ICE — lite agent behaviour, consent, restart",
    "MIGRATE": "MIGRATE — session migration and isolation on one port",
    "DTLS": "DTLS — handshake and records",
    "SRTP": "SRTP — media protection",
    "DC": "DC — data channels",
    "VOICE": "VOICE — realtime voice loop",
    "PERF": "PERF — measured under adversarial traffic (the user's thresholds)",
}

PREAMBLE = """\
# The check catalog

Generated from the checks' own data by `python -m toolkit.conformance.catalog_doc`; do not edit by hand.

Every check judges one requirement, at one level:

- **MUST** — an RFC's MUST, MUST NOT, REQUIRED or SHALL, quoted below with its section. A
  target that breaks it FAILs, and `rtcgate check` exits 1.
- **SHOULD** — an RFC's SHOULD or RECOMMENDED. Reported as WARN (exit 0) unless you run with
  `--strict should` or stricter.
- **POLICY** — this project's hardening advice beyond the RFCs, with the attack it prevents.
  Reported as WARN unless you run with `--strict policy` or `--profile hardened` (the standard
  the reference server meets).

A check that does not apply to a target (no IPv6, no data channel, not ICE-lite, no echo...)
is SKIP, with the reason. Profiles (`--profile`): `core` (any WebRTC endpoint), `lite`
(ICE-lite single-port servers), `security` (adversarial input), `voice` (realtime voice loop),
`perf` (load runs judged against the thresholds you set).
"""


def _entry(check: Check) -> list[str]:
    lines = [f"### {check.id} · {check.profile} · {check.level.value}", "", check.title + ".", ""]
    requirement = check.requirement
    if requirement is not None:
        lines.append(f"> **{requirement.cite}**: {requirement.text}")
        lines.append("")
        if requirement.prevents:
            lines += [f"Prevents: {requirement.prevents}.".replace("..", "."), ""]
        if requirement.note:
            lines += [f"Why {check.level.value}: {requirement.note}", ""]
    lines += [f"References: {check.rfc}.", ""]
    return lines


def render(checks: tuple[Check, ...]) -> str:
    levels = Counter(check.level for check in checks)
    counts = ", ".join(f"{levels[level]} {level.value}" for level in Level)
    lines = [PREAMBLE, f"{len(checks)} checks: {counts}.", ""]
    family = None
    for check in checks:
        if check.family != family:
            family = check.family
            lines += [f"## {FAMILIES.get(family, family)}", ""]
        lines += _entry(check)
    return "\n".join(lines).rstrip() + "\n"


def catalog_page() -> str:
    from toolkit.conformance.checks import CATALOG, SANITY

    return render((SANITY, *CATALOG))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit.conformance.catalog_doc",
                                     description="Print (or --write) the check catalog as Markdown.")
    parser.add_argument("--write", metavar="PATH", help="write the page here instead of printing it")
    args = parser.parse_args(argv)
    page = catalog_page()
    if args.write:
        Path(args.write).write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
