"""The JSON writer of every report rtcgate writes (the conformance run, its SARIF, a load run,
the interop matrix): one format for all of them — strict JSON, so a number JSON cannot say
(infinity, NaN) is written as null; one space of indent; text as it is (no \\u escapes); UTF-8
with a final newline."""

from __future__ import annotations

import json
import math
from pathlib import Path


def finite(value: object) -> object:
    """`value` with every non-finite float, however deeply nested, replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def write_json(path: Path, data: object) -> Path:
    """Write `data` to `path` as the reports' JSON; return the path."""
    path.write_text(json.dumps(finite(data), indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path
