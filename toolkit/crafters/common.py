"""What every crafter shares: the one exception type and a field that never reaches the wire.

`CraftError` is raised when a packet cannot be built as asked (a MESSAGE-INTEGRITY with no
key, an address that is not an IP literal, an unknown SRTP profile...). Wrong values that can
be written are never an error: writing them is what the crafters are for.
"""

from __future__ import annotations

from typing import Any

from scapy.fields import StrField


class CraftError(ValueError):
    """A packet cannot be built as asked; the message says which field and why."""


class BuildOnlyField(StrField):
    """A packet parameter that steers the build (a key, for instance) but writes no bytes.

    Keeping it a field, not an instance attribute, means scapy's copies and clones carry it,
    and `show()` displays it. Dissection leaves it None. `str` values are stored UTF-8 encoded.
    """

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        return s

    # scapy types a StrField's dissected value bytes; this one has none to dissect.
    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, None]:  # type: ignore[override]
        return s, None

    def i2len(self, pkt: Any, x: Any) -> int:
        return 0
