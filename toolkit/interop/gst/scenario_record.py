"""What the Python clients of the interop scenario write into their records, in the same words
as js/scenario.mjs: the data-channel messages they send, how a message is summed up, how a
realtime event is noted, the time stamps, and how a wait that runs out says so.

Standard library only: webrtcbin_client.py, beside this file, runs under the system Python
without rtcgate's dependencies and imports it as its neighbour (`import scenario_record`); the
aiortc client imports it as `toolkit.interop.gst.scenario_record`.
"""
from __future__ import annotations

import json
import time

CONNECT_TIMEOUT = 15.0
"""Seconds from the answer to ICE connected, and again to DTLS connected."""
DATACHANNEL_MESSAGES = ["hello from the interop matrix", "é€😀 unicode", "x" * 16384]
BINARY_MESSAGE = bytes(i % 256 for i in range(1024))


def now_ms() -> int:
    return int(time.time() * 1000)


class Deadline:
    """`seconds` from now, for `what`: `check()` raises TimeoutError once it has passed, in the
    words of scenario.mjs ("ICE connected: not within 15000 ms"), which the report keeps."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.at = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise TimeoutError(f"{self.what}: not within {self.seconds * 1000:.0f} ms")


def describe_message(data: str | bytes) -> dict:
    """The same summary as scenario.mjs's describeMessage (UTF-16 code units for text)."""
    if isinstance(data, str):
        units = data.encode("utf-16-le")
        total = 0
        for index in range(0, len(units), 2):
            total = (total * 31 + int.from_bytes(units[index:index + 2], "little")) % 1000000007
        return {"type": "text", "length": len(units) // 2, "head": units[:64].decode("utf-16-le", "replace"),
                "sum": total}
    total = 0
    for byte in data:
        total = (total * 31 + byte) % 1000000007
    return {"type": "binary", "length": len(data), "sum": total}


def event_entry(text: str | bytes) -> dict:
    """A realtime event from the `oai-events` channel as the record lists it: when it arrived, its
    type ("(not JSON)" when it does not parse), a response's status, an error."""
    try:
        event = json.loads(text)
    except ValueError:
        event = {"type": "(not JSON)"}
    entry = {"t": now_ms(), "type": event.get("type")}
    if isinstance(event.get("response"), dict):
        entry["status"] = event["response"].get("status")
    if event.get("error"):
        entry["error"] = event["error"]
    return entry
