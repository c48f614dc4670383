"""What every report writer shares: the tool's version, display names, datagram summaries."""

from __future__ import annotations

from importlib import metadata

from toolkit.conformance.model import Check, CheckResult, Datagram

TOOL = "rtcgate"
FULL_HEX_LIMIT = 2048
"""Bytes of each datagram shown in full for a failed check; others show their first bytes."""


def tool_version() -> str:
    try:
        return metadata.version(TOOL)
    except metadata.PackageNotFoundError:
        return "0"


VERDICTS = {0: "PASSED", 1: "FAILED", 2: "NO VERDICT (error)"}
"""What a run's exit code says about the target: 2 is no verdict (rtcgate failed, or the run stopped)."""


def case_name(result: CheckResult, index: int | None = None) -> str:
    """Sanity runs twice; every other check once."""
    if result.check.id == "SANITY" and index is not None:
        return f"SANITY ({'before' if index == 0 else 'after'})"
    return result.check.id


def requirement_fields(check: Check) -> dict[str, str]:
    """The level and the cited requirement, as every report shows them."""
    requirement = check.requirement
    fields = {"level": check.level.value}
    if requirement is not None:
        fields.update(cite=requirement.cite, requirement=requirement.text, prevents=requirement.prevents,
                      level_note=requirement.note)
    return {name: value for name, value in fields.items() if value}


def requirement_line(check: Check) -> str:
    """"MUST — RFC 8489 §9.1.3: "…"", or the level alone for a check of the user's own."""
    requirement = check.requirement
    if requirement is None:
        return check.level.value
    line = f"{check.level.value} — {requirement.cite}: {requirement.text}"
    if requirement.prevents:
        line += f" (prevents: {requirement.prevents})"
    return line


def kind_of(data: bytes) -> str:
    if not data:
        return "empty"
    first = data[0]
    if first < 4:
        return "STUN"
    if 19 < first < 64:
        return "DTLS"
    if 127 < first < 192:
        return "SRTCP" if len(data) > 1 and 191 < data[1] < 224 else "SRTP"
    return f"byte {first}"


def datagram_line(datagram: Datagram) -> str:
    arrow = "→" if datagram.direction == "out" else "←"
    local = f"{datagram.local[0]}:{datagram.local[1]}" if datagram.local else "?"
    remote = f"{datagram.remote[0]}:{datagram.remote[1]}"
    note = f"  [{datagram.note}]" if datagram.note else ""
    return (f"{datagram.time:8.3f}s {datagram.socket:>8} {local} {arrow} {remote} "
            f"{kind_of(datagram.data):<6} {len(datagram.data):5d} B{note}")


def datagram_hex(datagram: Datagram, full: bool) -> str:
    return datagram.data[: FULL_HEX_LIMIT if full else 16].hex()
