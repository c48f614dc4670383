"""The interop matrix in CI: all six real clients against the reference server, every cell a
client supports green (toolkit/interop: drivers, judge, wire capture; `rtcgate interop` runs
the same thing). The matrix runs once for the module (about a minute on two cores); each client
is its own test, so a report names the client and every cell that is not green, with its evidence.

A client that is not installed fails here in CI (where scripts/install-clients.sh must have
installed it) and is skipped elsewhere.
"""
from __future__ import annotations

import asyncio
import json
import os
import struct
from pathlib import Path

import pytest

from tests.interop.conftest import missing_client
from toolkit.capture import write_pcap
from toolkit.interop import wire
from toolkit.interop.drivers import DRIVERS
from toolkit.interop.judge import CELL_NAMES, NOT_APPLICABLE, PASS, XFAIL
from toolkit.interop.matrix import MatrixResult, run_matrix
from toolkit.interop.report import write_reports

pytestmark = pytest.mark.interop

MATRIX_TIMEOUT = 300  # the issue's budget for the whole matrix on two cores

# Cells that fail because of the reference server, until it is fixed (XPASS fails the test then).
SERVER_ISSUES: dict[tuple[str, str], str] = {}

# What each client cannot do, and so must be N/A (with its reason) rather than green.
NOT_APPLICABLE_CELLS = {"gstreamer": {"ice_restart"}, "aiortc": {"ice_restart"}}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> tuple[MatrixResult, Path, list[str]]:
    report_dir = tmp_path_factory.mktemp("interop-reports")
    lines: list[str] = []
    result = asyncio.run(asyncio.wait_for(
        run_matrix(list(DRIVERS), report_dir=report_dir, expected=SERVER_ISSUES, progress=lines.append),
        MATRIX_TIMEOUT))
    write_reports(result, report_dir)
    return result, report_dir, lines


def _context(client, lines: list[str]) -> str:
    cells = "\n".join(f"  {name}: {cell.status}: {cell.evidence}" for name, cell in client.cells.items())
    return f"\n{client.title} {client.version}\n{cells}\n{client.error or ''}\nprogress:\n" + "\n".join(lines)


@pytest.mark.timeout(MATRIX_TIMEOUT + 60)
@pytest.mark.parametrize("name", list(DRIVERS))
def test_every_supported_cell_is_green(matrix, name):
    result, _, lines = matrix
    client = next(c for c in result.clients if c.name == name)
    if client.missing:
        missing_client(f"{client.title} ({client.missing})")
    context = _context(client, lines)
    assert client.error is None, context
    assert set(client.cells) == set(CELL_NAMES), context
    not_applicable = {cell for cell, c in client.cells.items() if c.status == NOT_APPLICABLE}
    assert not_applicable == NOT_APPLICABLE_CELLS.get(name, set()), context
    for cell_name, cell in client.cells.items():
        allowed = {PASS, NOT_APPLICABLE, XFAIL}
        assert cell.status in allowed, f"{cell_name} is {cell.status}{context}"
        assert cell.evidence, f"{cell_name} has no evidence{context}"
    assert client.green, context
    # The DTLS cell names what was negotiated, from the wire wherever there is a capture.
    assert client.dtls["cipher"] and client.dtls["srtp_profile"], context
    assert client.timings["total"] is not None and client.timings["total"] > 0, context


@pytest.mark.timeout(MATRIX_TIMEOUT + 60)
def test_the_matrix_rests_on_a_capture_in_ci_and_writes_its_reports(matrix):
    result, report_dir, lines = matrix
    if os.environ.get("CI") == "true":
        assert result.capture, f"no packet capture in CI: {result.capture_note}"
    report = json.loads((report_dir / "interop.json").read_text())
    assert [c["name"] for c in report["clients"]] == list(DRIVERS)
    assert [c["id"] for c in report["columns"]] == list(CELL_NAMES)
    markdown = (report_dir / "interop.md").read_text()
    assert all(client.title in markdown for client in result.clients)
    assert "<table class=\"matrix\">" in (report_dir / "interop.html").read_text()
    assert result.duration < MATRIX_TIMEOUT, "\n".join(lines)


def _stun(kind: int, transaction: bytes, username: str | None = None) -> bytes:
    attributes = b""
    if username is not None:
        value = username.encode()
        attributes = struct.pack("!HH", 0x0006, len(value)) + value + b"\0" * (-len(value) % 4)
    return struct.pack("!HHI", kind, len(attributes), 0x2112A442) + transaction + attributes


def _dtls_record(content_type: int, epoch: int, fragment: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0xFEFD, epoch) + b"\0" * 6 + struct.pack("!H", len(fragment)) + fragment


def _server_hello(cipher: int, profile: int) -> bytes:
    use_srtp = struct.pack("!HHH", 14, 5, 2) + struct.pack("!H", profile) + b"\0"
    body = struct.pack("!H", 0xFEFD) + bytes(32) + b"\0" + struct.pack("!HB", cipher, 0) \
        + struct.pack("!H", len(use_srtp)) + use_srtp
    header = bytes([2]) + len(body).to_bytes(3, "big") + b"\0\0" + bytes(3) + len(body).to_bytes(3, "big")
    return _dtls_record(22, 0, header + body)


def test_the_wire_shows_one_session_by_its_usernames(tmp_path):
    """A synthetic capture: checks (and a restart's) answered, the ServerHello's cipher and SRTP
    profile, both ChangeCipherSpecs, RTP each way; another session's datagrams are not counted."""
    client, server, other = ("127.0.0.1", 50000), ("127.0.0.1", 3478), ("127.0.0.1", 50001)
    records = [
        (1.000, client, server, _stun(0x0001, b"a" * 12, "srv1:cli1")),
        (1.001, server, client, _stun(0x0101, b"a" * 12)),
        (1.002, other, server, _stun(0x0001, b"b" * 12, "srvX:cliX")),
        (1.003, server, other, _stun(0x0101, b"b" * 12)),
        (1.010, client, server, _dtls_record(22, 0, bytes([1]) + bytes(11))),
        (1.020, server, client, _server_hello(0xC02B, 0x0007)),
        (1.030, client, server, _dtls_record(20, 0, b"\1")),
        (1.040, server, client, _dtls_record(20, 0, b"\1")),
        (1.050, client, server, bytes([0x80, 111]) + bytes(30)),
        (1.060, server, client, bytes([0x80, 111]) + bytes(30)),
        (1.070, server, other, bytes([0x80, 111]) + bytes(30)),
        (2.000, client, server, _stun(0x0001, b"c" * 12, "srv2:cli2")),
        (2.001, server, client, _stun(0x0101, b"c" * 12)),
    ]
    path = tmp_path / "conversation.pcap"
    write_pcap(path, records)
    evidence = wire.session_evidence(wire.read_pcap(path), "srv1:cli1", "srv2:cli2")
    assert (evidence.checks, evidence.successes) == (1, 1)
    assert (evidence.restart_checks, evidence.restart_successes) == (1, 1)
    assert evidence.server_hello == wire.ServerHello("DTLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                                                     "SRTP_AEAD_AES_128_GCM")
    assert evidence.handshake_done == pytest.approx(1.040)
    assert (evidence.rtp_to_server, evidence.rtp_from_server) == (1, 1)
    assert evidence.tuples == ["127.0.0.1:50000 -> 127.0.0.1:3478"]


def test_read_pcap_takes_any_classic_pcap_and_refuses_the_rest(tmp_path):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import CookedLinux
    from scapy.packet import Raw
    from scapy.utils import PcapWriter, wrpcapng

    datagram = IP(src="127.0.0.1", dst="127.0.0.2") / UDP(sport=5000, dport=3478) / Raw(b"payload")
    datagram.time = 12.345678901
    cooked = CookedLinux(proto=0x0800) / datagram
    cooked.time = 13.5
    for name, linktype, frame, nano, endianness in (("raw", 101, datagram, True, ">"),
                                                    ("cooked", 113, cooked, False, "<")):
        path = tmp_path / f"{name}.pcap"
        with PcapWriter(str(path), linktype=linktype, nano=nano, endianness=endianness) as writer:
            writer.write_header(None)
            writer.write_packet(frame)
        [read] = wire.read_pcap(path)
        assert (read.src, read.dst, read.data) == (("127.0.0.1", 5000), ("127.0.0.2", 3478), b"payload")
        assert read.t == pytest.approx(float(frame.time), abs=1e-9 if nano else 1e-6)
    wrpcapng(str(tmp_path / "capture.pcapng"), [datagram])
    (tmp_path / "junk.pcap").write_bytes(b"not a capture at all, just text\n")
    for name, why in (("capture.pcapng", "is pcapng"), ("junk.pcap", "is not a pcap file"),
                      ("absent.pcap", "is not a pcap file")):
        with pytest.raises(wire.CaptureError, match=why):
            wire.read_pcap(tmp_path / name)
