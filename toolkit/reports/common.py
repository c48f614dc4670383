"""What every report writer shares: the tool's version, display names, datagram summaries."""

from __future__ import annotations

from importlib import metadata

from toolkit.conformance.model import CheckResult, Datagram

TOOL = "rtcgate"
FULL_HEX_LIMIT = 2048
"""Bytes of each datagram shown in full for a failed check; others show their first bytes."""


def tool_version() -> str:
    try:
        return metadata.version(TOOL)
    except metadata.PackageNotFoundError:
        return "0"


def case_name(result: CheckResult, index: int | None = None) -> str:
    """Sanity runs twice; every other check once."""
    if result.check.id == "SANITY" and index is not None:
        return f"SANITY ({'before' if index == 0 else 'after'})"
    return result.check.id


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
