"""The fuzzing machinery itself: targets, replay and triage, the harnesses under libFuzzer
(standalone, -fork, -merge, -minimize_crash; run through the interpreter, without their run
bit, as from an installed wheel), and the CLI end to end."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aioice import stun as aioice_stun

from tests.fuzz.sample_targets import FrameError, fuzz_frame
from tests.support import rfc5769
from toolkit import resources
from toolkit.cli import main as cli
from toolkit.fuzz import builtin_targets, check, fuzz_target, replay, resolve
from toolkit.fuzz.campaign import HARNESSES, Campaign, command
from toolkit.fuzz.framing import Steps, encode
from toolkit.fuzz.harness import harness_command
from toolkit.fuzz.registry import TargetError, exception_class, target_name
from toolkit.fuzz.stunkit import authenticated_ufrag, with_fingerprint, with_integrity, with_username

ROOT = Path(__file__).resolve().parents[2]
CORPORA = resources.corpora()
needs_atheris = pytest.mark.skipif(importlib.util.find_spec("atheris") is None and os.environ.get("CI") != "true",
                                   reason="atheris is not installed (a Linux dependency; CI requires it)")
SAMPLE = "tests.fuzz.sample_targets:fuzz_frame"


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def without_run_bit(harness: Path, into: Path) -> Path:
    """A copy of a harness as a wheel installs it: mode 0644, so only `python harness.py` runs it."""
    copy = into / harness.name
    shutil.copyfile(harness, copy)
    copy.chmod(0o644)
    assert not os.access(copy, os.X_OK)
    return copy


# --- targets and replay -----------------------------------------------------------------------------


def test_declared_errors_pass_and_anything_else_is_a_finding():
    assert check(fuzz_frame, b"\x01").error is None  # FrameError is declared
    outcome = check(fuzz_frame, b"\x07\x00")
    assert outcome.error == "IndexError"
    assert outcome.frames[-1][2] == "parse_frame" and outcome.frames[-1][0].endswith("sample_targets.py")
    assert outcome.signature == check(fuzz_frame, b"\x07\x00xyz").signature  # same bug, other input
    assert check(fuzz_frame, b"\x07\x01x").error is None
    assert fuzz_frame.expect == (FrameError,) and fuzz_frame.name == "frame"


def test_decorator_without_arguments_declares_nothing():
    @fuzz_target
    def fuzz_divide(data: bytes) -> None:
        1 / len(data)

    assert fuzz_divide.name == "divide" and fuzz_divide.expect == ()
    assert check(fuzz_divide, b"").error == "ZeroDivisionError"


def test_resolve_module_function_and_file_specs(tmp_path):
    target = resolve("json:loads", expect=["ValueError"])
    assert target.name == "json.loads" and target.expect == (ValueError,)
    assert check(target, b"{").error is None and check(target, b"\xff").error is None
    assert resolve(SAMPLE).expect == (FrameError,)
    from_file = resolve(f"{ROOT}/tests/fuzz/sample_targets.py:parse_frame", expect=[])
    assert check(from_file, b"").error.endswith("FrameError")
    assert target_name("aiortc.rtp:RtpPacket.parse") == "aiortc.rtp.RtpPacket.parse"
    assert exception_class("aioice.stun.TransactionFailed").__name__ == "TransactionFailed"
    for bad in ("no_such_target", "json:nope", "no.such.module:f"):
        with pytest.raises(TargetError):
            resolve(bad)
    with pytest.raises(TargetError, match="cannot import no.such"):
        resolve("json:loads", expect=["no.such.Error"])
    broken = tmp_path / "broken_at_import.py"
    broken.write_text("raise RuntimeError('no import for you')\n")
    with pytest.raises(TargetError, match="RuntimeError: no import for you"):
        resolve(f"{broken}:f")
    with pytest.raises(TargetError, match="not an exception class"):
        exception_class("json.loads")


def test_replay_reports_each_file(tmp_path):
    (tmp_path / "ok").write_bytes(b"\x01\x00")
    (tmp_path / "bug").write_bytes(b"\x07\x00")
    (tmp_path / "frame.dict").write_text('"\\x07"\n')  # dictionaries are not inputs
    outcomes = {Path(o.path).name: o.error for o in replay(fuzz_frame, [tmp_path])}
    assert outcomes == {"bug": "IndexError", "ok": None}


def test_every_builtin_target_has_a_harness_seeds_and_a_dictionary():
    for name in builtin_targets():
        harness = HARNESSES / f"{name}_fuzzer.py"
        assert harness.is_file() and "toolkit.fuzz.harness import main" in harness.read_text()
        assert any((CORPORA / name).iterdir())
        assert (CORPORA / f"{name}.dict").is_file()


# --- helpers the stateful targets rely on -----------------------------------------------------------


def test_stunkit_resigns_messages_that_aioice_verifies():
    assert authenticated_ufrag(rfc5769.REQUEST, {"evtj": rfc5769.SHORT_TERM_PASSWORD.decode()}) == "evtj"
    assert authenticated_ufrag(rfc5769.REQUEST, {"evtj": "wrong"}) is None
    renamed = with_username(rfc5769.REQUEST, b"abcd:efgh")
    assert authenticated_ufrag(renamed, {"abcd": rfc5769.SHORT_TERM_PASSWORD.decode()}) is None  # MI and FP are now stale
    signed = with_fingerprint(with_integrity(renamed, b"secret"))
    assert authenticated_ufrag(signed, {"abcd": "secret"}) == "abcd"
    message = aioice_stun.parse_message(signed)  # checks FINGERPRINT
    assert message.check_message_integrity(b"secret") and message.attributes["USERNAME"] == "abcd:efgh"
    assert with_integrity(b"\x00\x01junk", b"k") == b"\x00\x01junk"


def test_framing_round_trip():
    data = encode(((1, 2), b"abc"), ((3, 4), b""), prefix=b"\x09")
    steps = Steps(data)
    assert steps.choice(2) == 1
    assert [steps.choice(10), steps.choice(10), steps.payload()] == [1, 2, b"abc"]
    assert [steps.choice(10), steps.choice(10), steps.payload()] == [3, 4, b""]
    assert not steps and steps.choice(5) == 0 and steps.payload() == b""


# --- harness executables under libFuzzer ---------------------------------------------------------------


def run_harness(harness: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*harness_command(harness), *args], cwd=cwd, env=environment(**env), capture_output=True,
                          text=True, timeout=120)


@needs_atheris
def test_harness_runs_standalone_and_under_fork_and_merge_without_its_run_bit(tmp_path):
    harness = without_run_bit(HARNESSES / "demux_fuzzer.py", tmp_path)  # fork and merge re-run argv[0]
    seeds = CORPORA / "demux"
    done = run_harness(harness, "-runs=3000", str(tmp_path), str(seeds), cwd=tmp_path)
    assert done.returncode == 0 and "Done 3000 runs" in done.stderr, done.stderr[-2000:]
    done = run_harness(harness, "-fork=1", "-max_total_time=4", f"-artifact_prefix={tmp_path}/", str(tmp_path),
                       cwd=tmp_path)
    assert done.returncode == 0 and "-fork=1: fuzzing in separate process" in done.stderr, done.stderr[-2000:]
    merged = tmp_path / "merged"
    merged.mkdir()
    done = run_harness(harness, "-merge=1", str(merged), str(seeds), cwd=tmp_path)
    assert done.returncode == 0 and "MERGE-OUTER" in done.stderr and any(merged.iterdir()), done.stderr[-2000:]


@needs_atheris
def test_minimize_crash_shrinks_through_the_generic_harness_without_its_run_bit(tmp_path):
    big = tmp_path / "crash"
    big.write_bytes(b"\x07\x00 and a trailer")
    out = tmp_path / "small"
    harness = without_run_bit(HARNESSES / "any_target.py", tmp_path)  # every -minimize_crash step re-runs argv[0]
    done = run_harness(harness, "-minimize_crash=1", "-runs=20000", f"-exact_artifact_path={out}",
                       str(big), cwd=tmp_path, RTCGATE_FUZZ_TARGET=SAMPLE)
    assert out.is_file() and len(out.read_bytes()) < len(big.read_bytes()), done.stderr[-2000:]
    assert check(fuzz_frame, out.read_bytes()).error == "IndexError"


def test_fuzz_list_names_every_target(capsys):
    assert cli(["fuzz", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(builtin_targets())


def test_campaign_command_line_uses_seeds_dictionary_and_fork(tmp_path):
    campaign = Campaign(spec="stun_parse", seconds=30, jobs=2)
    flags = command(campaign, tmp_path, tmp_path)
    assert flags[:2] == [sys.executable, str(HARNESSES / "stun_parse_fuzzer.py")]  # no run bit needed
    assert "-fork=2" in flags and "-ignore_crashes=1" in flags
    assert not any(flag.startswith("-fork") for flag in command(Campaign(spec="demux"), tmp_path, tmp_path))
    assert f"-dict={CORPORA / 'stun_parse.dict'}" in flags and str(CORPORA / "stun_parse") in flags
    assert flags[flags.index(str(tmp_path), 1)] == str(tmp_path)  # the working corpus comes before the seeds
