from __future__ import annotations

import json
import pathlib
import struct
import subprocess
import sys

import pytest

from bench import setup_time

ROOT = pathlib.Path(__file__).resolve().parents[3]


def dtls_handshake_record(*message_types: int, epoch: int = 0) -> bytes:
    body = b"".join(bytes([kind]) + (4).to_bytes(3, "big") + struct.pack("!H", index) + bytes(3)
                    + (4).to_bytes(3, "big") + bytes(4) for index, kind in enumerate(message_types))
    return bytes([22, 0xFE, 0xFD]) + struct.pack("!H", epoch) + bytes(6) + struct.pack("!H", len(body)) + body


def test_datagram_kinds_name_stun_classes_dtls_messages_and_srtp():
    assert setup_time.datagram_kind(b"\x00\x01" + bytes(18)) == "STUN request"
    assert setup_time.datagram_kind(b"\x01\x01" + bytes(18)) == "STUN response"
    flight = dtls_handshake_record(2, 11, 11, 12, 14)
    assert setup_time.datagram_kind(flight) == "DTLS ServerHello+Certificate+ServerKeyExchange+ServerHelloDone"
    assert setup_time.datagram_kind(dtls_handshake_record(20, epoch=1)) == "DTLS Finished"
    assert setup_time.datagram_kind(bytes([0x80, 111]) + bytes(20)) == "SRTP"
    assert setup_time.datagram_kind(bytes([0x80, 200]) + bytes(20)) == "SRTCP"


def test_split_timeline_gives_each_gap_to_whoever_acted_at_its_end():
    marks = {"offer_sent": 0.0, "answer": 1.0, "first_stun": 1.001, "ice_completed": 1.003,
             "dtls_connected": 1.010, "first_srtp": 1.050}
    trace = [
        (1.0005, "out", "STUN request"),
        (1.002, "in", "STUN response"),
        (1.0025, "out", "DTLS ClientHello"),
        (1.006, "in", "DTLS ServerHello"),
        (1.007, "out", "DTLS Finished"),
        (1.009, "in", "DTLS Finished"),
        (1.011, "out", "SRTP"),
        (1.031, "out", "SRTP"),
        (1.049, "in", "SRTP"),
    ]
    phases = setup_time.split_timeline(trace, marks)
    assert phases["ice"]["ms"] == pytest.approx({"server": 1.0, "client": 1.0, "timer": 0.0})
    assert phases["ice"]["round_trips"] == 1
    assert phases["dtls"]["ms"] == pytest.approx({"server": 5.0, "client": 2.0, "timer": 0.0})
    assert phases["dtls"]["round_trips"] == 2
    assert phases["first_srtp"]["ms"] == pytest.approx({"server": 18.0, "client": 2.0, "timer": 20.0})
    assert phases["first_srtp"]["wire"] == ["out SRTP ×2", "in SRTP"]
    for name, record in phases.items():
        assert sum(record["ms"].values()) == pytest.approx(record["duration_ms"]), name


def test_two_sessions_against_both_servers_give_every_figure(tmp_path):
    output = tmp_path / "setup_time.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.setup_time", "--sessions", "2", "--burst", "2", "--rounds", "1", "--trace", "1",
         "--json", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(output.read_text())
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["aiortc"]
    for mode in ("sequential", "burst"):
        for server in ("reference", "aiortc"):
            result = report["results"][mode][server]
            assert result["sessions"] + result["failed"] == 2
            assert result["sessions"] == 2, result["failure_reasons"]
            assert set(result["ms"]) >= {"signaling", "first_stun", "ice", "dtls", "first_srtp", "total"}
            assert result["ms"]["total"]["p50"] > 0
        assert report["ratios"][mode]["total_p50"] > 0
    assert report["traces"]["sequential"]["reference"]["dtls"]["round_trips_p50"] >= 1
    assert "reference/aiortc total" in completed.stdout
