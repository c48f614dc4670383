from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import rdpcap

from toolkit.capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    CaptureError,
    CaptureRecord,
    SrtpDirection,
    decode_hint,
    decrypt_records,
    key_log_line,
    write_decrypted_pcap,
    write_key_log,
    write_pcap,
    write_srtp_keys,
)
from toolkit.crafters.dtls import client_hello_flight
from toolkit.crafters.rtp import Rtp
from toolkit.crafters.srtp import SrtpContext
from toolkit.crafters.stun import ice_check

PEER = ("192.0.2.10", 50000)
SERVER = ("198.51.100.1", 3478)
PEER6 = ("2001:db8::10", 50000)
SERVER6 = ("2001:db8::1", 3478)


def conversation() -> list[CaptureRecord]:
    return [
        CaptureRecord(1.5, PEER, SERVER, bytes(ice_check("srv:cli", "pw"))),
        CaptureRecord(1.25, SERVER, PEER, b"\x01\x01\x00\x00" + bytes(16)),
        CaptureRecord(2.0, PEER6, SERVER6, bytes(client_hello_flight()[0])),
        CaptureRecord(3.000001, PEER, SERVER, bytes(Rtp(ssrc=7) / Raw(b"odd-length!"))),
    ]


@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_RAW])
def test_pcap_parses_back_with_addresses_ports_payloads_and_checksums(tmp_path, linktype):
    records = conversation()
    path = write_pcap(tmp_path / "conv.pcap", records, linktype=linktype)
    packets = rdpcap(str(path))
    assert len(packets) == len(records)
    for packet, record in zip(packets, records):
        ip = packet[IPv6] if IPv6 in packet else packet[IP]
        assert (ip.src, packet[UDP].sport) == record.src and (ip.dst, packet[UDP].dport) == record.dst
        assert bytes(packet[UDP].payload) == record.data
        assert float(packet.time) == pytest.approx(record.timestamp, abs=1e-6)
        assert (Ether in packet) == (linktype == LINKTYPE_ETHERNET)
        # scapy recomputes deleted checksums: ours must equal its.
        stripped = ip.copy()
        del stripped[UDP].chksum
        if IP in packet:
            del stripped.chksum
        rebuilt = type(ip)(bytes(stripped))
        assert rebuilt[UDP].chksum == ip[UDP].chksum
        if IP in packet:
            assert rebuilt.chksum == ip.chksum


def test_tuples_are_records_and_bad_addresses_are_refused(tmp_path):
    write_pcap(tmp_path / "t.pcap", [(0.0, PEER, SERVER, b"x")])
    assert bytes(rdpcap(str(tmp_path / "t.pcap"))[0][UDP].payload) == b"x"
    with pytest.raises(CaptureError, match="'localhost' is not an IPv4 or IPv6 literal"):
        write_pcap(tmp_path / "bad.pcap", [(0.0, ("localhost", 1), SERVER, b"x")])
    with pytest.raises(CaptureError, match="goes from IPv4 192.0.2.10 to IPv6 2001:db8::1"):
        write_pcap(tmp_path / "bad.pcap", [(0.0, PEER, SERVER6, b"x")])


@pytest.mark.skipif(shutil.which("tshark") is None and os.environ.get("CI") != "true",
                    reason="tshark is not installed (scripts/install-clients.sh installs it; CI requires it)")
def test_tshark_decodes_stun_dtls_and_rtp(tmp_path):
    path = write_pcap(tmp_path / "conv.pcap", conversation())
    command = decode_hint(SERVER[1]).replace("CAPTURE.pcap", str(path)).split()
    out = subprocess.run(
        [*command, "-T", "fields", "-e", "frame.protocols", "-e", "stun.att.username"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()
    assert out[0].endswith(":stun\tsrv:cli")
    assert out[2].split("\t")[0].endswith(":dtls")
    assert out[3].split("\t")[0].endswith(":rtp")


def test_key_log_and_srtp_keys_files(tmp_path):
    line = key_log_line(bytes(range(32)), b"\xaa" * 48)
    assert line == f"CLIENT_RANDOM {bytes(range(32)).hex()} {'aa' * 48}"
    log = write_key_log(tmp_path / "keys.log", [line, b"CLIENT_RANDOM 00 11\n"])
    assert log.read_text().splitlines() == [line, "CLIENT_RANDOM 00 11"]
    with pytest.raises(CaptureError, match="32-byte client random and a 48-byte master secret"):
        key_log_line(b"x", b"y")
    keys = write_srtp_keys(tmp_path / "srtp.txt", [
        SrtpDirection.from_key_and_salt(PEER, SERVER, "SRTP_AES128_CM_SHA1_80", bytes(range(30)))
    ])
    text = keys.read_text()
    assert "[192.0.2.10:50000 -> 198.51.100.1:3478]" in text
    assert f"master_key = {bytes(range(16)).hex()}" in text and f"master_salt = {bytes(range(16, 30)).hex()}" in text


def test_decrypted_pcap_holds_plain_media(tmp_path):
    direction = SrtpDirection(PEER, SERVER, "SRTP_AEAD_AES_128_GCM", bytes(range(16)), bytes(range(12)))
    sender = SrtpContext.from_keys(direction.profile, direction.master_key, direction.master_salt)
    plain = [bytes(Rtp(sequence=n, ssrc=9) / Raw(b"media%d" % n)) for n in range(3)]
    stun = bytes(ice_check("srv:cli", "pw"))
    records = [(0.0, PEER, SERVER, stun)]
    records += [(0.02 * n, PEER, SERVER, sender.protect_rtp(p)) for n, p in enumerate(plain)]
    records.append((1.0, SERVER, PEER, records[1][3]))  # the other direction has no keys: kept as is
    out, decrypted = decrypt_records(records, [direction])
    assert decrypted == 3
    assert [r.data for r in out] == [stun, *plain, records[1][3]]
    assert write_decrypted_pcap(tmp_path / "plain.pcap", records, [direction]) == 3
    payloads = [bytes(p[UDP].payload) for p in rdpcap(str(tmp_path / "plain.pcap"))]
    assert payloads == [stun, *plain, records[1][3]]


@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_RAW])
def test_pcap_header_names_the_link_type_and_an_empty_conversation_is_a_valid_file(tmp_path, linktype):
    path = write_pcap(tmp_path / "empty.pcap", [], linktype=linktype)
    header = path.read_bytes()
    assert len(header) == 24 and header[:4] == bytes.fromhex("d4c3b2a1")  # classic pcap, microseconds
    assert int.from_bytes(header[20:24], "little") == linktype
    assert len(rdpcap(str(path))) == 0


def test_times_before_1970_are_clamped_and_refused_records_leave_no_file(tmp_path):
    path = write_pcap(tmp_path / "early.pcap", [(-2.5, PEER, SERVER, b"a"), (0.25, SERVER, PEER, b"b")])
    assert [float(packet.time) for packet in rdpcap(str(path))] == [0.0, 0.25]
    with pytest.raises(CaptureError, match="does not fit in one UDP packet"):
        write_pcap(tmp_path / "big.pcap", [(0.0, PEER, SERVER, b"a"), (0.1, PEER, SERVER, bytes(70_000))])
    assert not (tmp_path / "big.pcap").exists()
    with pytest.raises(CaptureError, match="linktype 113"):
        write_pcap(tmp_path / "cooked.pcap", [], linktype=113)
