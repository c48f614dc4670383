"""The expected-failures file: the gaps a team knows about, one check ID per line, each with a comment.

    # our SFU answers unknown ufrags with 400 (ticket NET-123)
    STUN-07    # answers instead of staying silent; fix planned for 2.4
    DTLS-08    # renegotiation still allowed by the TLS library we pin

A listed check that fails is XFAIL; one that passes is XPASS, which fails the run so the file
is kept true. Blank lines and lines starting with `#` are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

_LINE = re.compile(r"^(?P<id>[A-Za-z][A-Za-z0-9_-]*)\s*(?:#\s*(?P<comment>.*?))?\s*$")


class XfailError(ValueError):
    """The file cannot be used; the message names the line and what is wrong with it."""


def parse_xfail(text: str, *, known_ids: Iterable[str] | None = None, source: str = "expected-failures file") -> dict[str, str]:
    """{check ID: comment}. Every entry needs a comment; unknown IDs and duplicates are errors."""
    known = set(known_ids) if known_ids is not None else None
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise XfailError(f"{source} line {number}: {line!r} is not 'CHECK-ID  # comment'")
        check_id, comment = match["id"].upper(), (match["comment"] or "").strip()
        if not comment:
            raise XfailError(f"{source} line {number}: {check_id} has no comment; say why it is expected to fail")
        if known is not None and check_id not in known:
            raise XfailError(f"{source} line {number}: {check_id} is not a check in the catalog")
        if check_id in entries:
            raise XfailError(f"{source} line {number}: {check_id} is listed twice")
        entries[check_id] = comment
    return entries


def load_xfail(path: str | Path, *, known_ids: Iterable[str] | None = None) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise XfailError(f"cannot read the expected-failures file {path}: {exc.strerror}") from None
    return parse_xfail(text, known_ids=known_ids, source=str(path))
