"""Evidence files for a check that failed: the pcap, its media-decrypted twin, the DTLS key log,
the SRTP keys, and the command that replays it (docs/architecture.md, principle 4).

Everything goes under `<report dir>/evidence/<check ID>/`; the paths land in
`CheckResult.artifacts`, relative to the report directory, so the reports can link them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from toolkit.capture import (
    CaptureError,
    CaptureRecord,
    SrtpDirection,
    decode_hint,
    write_decrypted_pcap,
    write_key_log,
    write_pcap,
    write_srtp_keys,
)
from toolkit.conformance.model import NOT_SENT, CheckResult

PCAP_MAX_PAYLOAD = 65535 - 8 - 40
"""The capture writer's limit (it sizes for IPv6 headers); larger datagrams are left out, with a note."""


def capture_records(result: CheckResult) -> tuple[list[CaptureRecord], int]:
    """What was on the wire, in time order; and how many datagrams were too big for the pcap."""
    records, too_big = [], 0
    for datagram in result.datagrams:
        if datagram.note == NOT_SENT:
            continue
        if len(datagram.data) > PCAP_MAX_PAYLOAD:
            too_big += 1
            continue
        if datagram.direction == "out":
            records.append(CaptureRecord(datagram.time, datagram.local, datagram.remote, datagram.data))
        else:
            records.append(CaptureRecord(datagram.time, datagram.remote, datagram.local, datagram.data))
    return records, too_big


def write_evidence(result: CheckResult, report_dir: Path) -> None:
    """Write the evidence files of one result; record their paths in `result.artifacts`."""
    folder = report_dir / "evidence" / result.check.id
    folder.mkdir(parents=True, exist_ok=True)
    records, too_big = capture_records(result)
    directions = [SrtpDirection.from_key_and_salt(sender, receiver, profile, key)
                  for sender, receiver, profile, key in result.srtp_keys]
    artifacts = {}
    try:
        artifacts["pcap"] = write_pcap(folder / "conversation.pcap", records)
        if directions:
            write_decrypted_pcap(folder / "conversation_decrypted.pcap", records, directions)
            artifacts["pcap_decrypted"] = folder / "conversation_decrypted.pcap"
    except CaptureError as exc:
        result.notes.append(f"evidence: the pcap could not be written: {exc}")
    if too_big:
        result.notes.append(f"evidence: {too_big} datagram(s) over {PCAP_MAX_PAYLOAD} bytes are not in the pcap")
    artifacts["keylog"] = write_key_log(folder / "keylog.txt", result.keylog)
    if directions:
        artifacts["srtp_keys"] = write_srtp_keys(folder / "srtp-keys.txt", directions)
    ports = Counter(d.remote[1] for d in result.datagrams)
    hint = decode_hint(ports.most_common(1)[0][0], key_log="keylog.txt") if ports else ""
    replay = folder / "replay.txt"
    replay.write_text(f"{result.replay}\n" + (f"# read the capture: {hint}\n" if hint else ""))
    artifacts["replay"] = replay
    result.artifacts = {kind: str(path.relative_to(report_dir)) for kind, path in artifacts.items()}
