"""Network mutation fuzzing against the reference server as a real process."""
from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.server_process import start_server
from toolkit.cli import build_parser
from toolkit.commands.fuzz import run as run_fuzz_command
from toolkit.fuzz.network import mutate_live


@pytest.fixture
def server():
    process = start_server()
    try:
        yield process
    finally:
        process.stop()


def test_live_server_survives_mutated_batches_and_is_checked_after_each(server, tmp_path):
    lines: list[str] = []
    result = asyncio.run(mutate_live(server.whip_url, batches=3, batch_size=30, seed=1,
                                     report_dir=tmp_path, progress=lines.append))
    assert result.finding is None and result.unreachable is None
    assert result.batches_run == 3
    assert result.datagrams_sent >= 3 * 30
    assert result.sanity_checks == 4  # one before fuzzing, one after each batch
    assert not list(tmp_path.iterdir())
    assert server.process.poll() is None


def test_target_that_dies_after_a_batch_is_a_finding_with_its_reproducer(server, tmp_path):
    def kill_in_batch_1(batch: int) -> None:
        if batch == 1:
            server.process.kill()
            server.process.wait()

    result = asyncio.run(mutate_live(server.whip_url, batches=3, batch_size=8, seed=5, report_dir=tmp_path,
                                     progress=lambda line: None, after_send=kill_in_batch_1))
    finding = result.finding
    assert finding is not None and finding.batch == 1
    assert result.batches_run == 2  # stopped at the finding
    assert finding.report == tmp_path / "finding-1.json"
    record = json.loads(finding.report.read_text())
    assert record["seed"] == 5 and record["batch"] == 1
    assert len(record["mutations"]) == 8
    assert {m["layer"] for m in record["mutations"]} == {"stun", "srtp", "srtcp", "dtls"}
    assert all(bytes.fromhex(d) for m in record["mutations"] for d in m["datagrams"])
    assert record["replay"].startswith(f"rtcgate fuzz --whip {server.whip_url} --seed 5 --only-batch 1")
    assert "sanity session did not connect" in record["reason"]


def test_cli_exits_2_when_the_target_is_unreachable(server, capsys):
    url = server.whip_url
    server.stop()
    parser = build_parser()
    args = parser.parse_args(["fuzz", "--whip", url, "--batches", "1", "--batch-size", "1"])
    assert run_fuzz_command(args, parser) == 2
    assert "target unreachable" in capsys.readouterr().err
