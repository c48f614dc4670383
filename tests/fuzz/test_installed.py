"""`rtcgate fuzz` as an installed tool, used from a user's own directory: it writes only
there (or where --report-dir and --corpus-dir say), its printed replay commands work when
pasted there, a file target resolves against it, it exits 2 with a one-line reason when it
proved nothing, and the pytest plugin (not a conftest of this checkout) brings --rtc-fuzz-time."""
from __future__ import annotations

import importlib.util
import os
import shlex
from pathlib import Path

import pytest

from tests.fuzz.sample_targets import fuzz_frame
from toolkit import resources
from toolkit.cli import main as cli
from toolkit.fuzz import check
from toolkit.fuzz.campaign import Campaign

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "tests.fuzz.sample_targets:fuzz_frame"
NAME = "tests.fuzz.sample_targets.fuzz_frame"
needs_atheris = pytest.mark.skipif(importlib.util.find_spec("atheris") is None and os.environ.get("CI") != "true",
                                   reason="atheris is not installed (a Linux dependency; CI requires it)")
PLANTED_TLV = '''
from toolkit.fuzz import fuzz_target


@fuzz_target(expect=ValueError)
def fuzz_tlv(data: bytes) -> None:
    """A planted bug: a tag byte 0x41 followed by anything is looked up in an empty table."""
    if len(data) >= 2 and data[0] == 0x41:
        {}[data[1]]
'''


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A user's project folder, the current directory for the test. The harness children find
    this checkout's sample targets through PYTHONPATH, as a user's would find their package."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return folder


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()} if folder.is_dir() else set()


def pasted(out: str) -> list[str]:
    """The printed replay command, split as a shell would; checked to start with `rtcgate fuzz`."""
    line = next(line.strip() for line in out.splitlines() if line.strip().startswith("replay: "))
    words = shlex.split(line.removeprefix("replay: "))
    assert words[:2] == ["rtcgate", "fuzz"], line
    return words[1:]


@needs_atheris
def test_outputs_go_under_the_current_directory_and_the_replay_command_works_there(project, capsys):
    shipped = files_under(resources.corpora())
    checkout_reports = files_under(ROOT / "reports" / "fuzz" / NAME)
    code = cli(["fuzz", "--target", SAMPLE, "--runs", "200000", "--minimize-time", "5"])
    out = capsys.readouterr().out
    assert code == 1 and "found: IndexError" in out, out  # announced as found, before triage
    stored = list((project / "corpora" / "regressions" / NAME).iterdir())
    assert len(stored) == 1 and stored[0].name.startswith("IndexError-")
    assert check(fuzz_frame, stored[0].read_bytes()).error == "IndexError"
    assert (project / "reports" / "fuzz" / NAME / "findings.json").is_file()
    assert list((project / "reports" / "fuzz" / NAME).glob("fuzz-*.log"))
    assert files_under(resources.corpora()) == shipped  # nothing written into the package
    assert files_under(ROOT / "reports" / "fuzz" / NAME) == checkout_reports
    command = pasted(out)
    assert command[-1] == f"corpora/regressions/{NAME}/{stored[0].name}"  # relative to where it ran
    assert cli(command) == 1 and "IndexError" in capsys.readouterr().out


@needs_atheris
def test_report_dir_and_corpus_dir_take_the_outputs_and_seeds_come_from_the_corpus_dir(project, tmp_path, capsys):
    elsewhere = tmp_path / "ci-artifacts"
    (project / "mine" / NAME).mkdir(parents=True)
    (project / "mine" / NAME / "seed").write_bytes(b"\x07\x03abcdefgh")
    campaign = Campaign(spec=SAMPLE, corpus_dir=project / "mine")
    assert campaign.seeds == [project / "mine" / NAME]  # the sample has no shipped corpus
    code = cli(["fuzz", "--target", SAMPLE, "--runs", "200000", "--minimize-time", "0",
                "--report-dir", str(elsewhere), "--corpus-dir", "mine"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert (elsewhere / "fuzz" / NAME / "findings.md").is_file()
    assert list((project / "mine" / "regressions" / NAME).iterdir())
    assert not (project / "reports").exists() and not (project / "corpora").exists()
    assert pasted(out)[-1].startswith(f"mine/regressions/{NAME}/")
    # A replay reads the corpus dir's seeds and regressions too.
    assert cli(["fuzz", "--target", SAMPLE, "--replay", "--corpus-dir", "mine"]) == 1
    assert "IndexError" in capsys.readouterr().out


@needs_atheris
def test_a_relative_py_target_resolves_against_the_current_directory(project, capsys):
    (project / "fuzzing").mkdir()
    (project / "fuzzing" / "tlv_targets.py").write_text(PLANTED_TLV)
    code = cli(["fuzz", "--target", "fuzzing/tlv_targets.py:fuzz_tlv", "--runs", "200000", "--minimize-time", "0"])
    out = capsys.readouterr().out
    assert code == 1 and "KeyError" in out, out
    command = pasted(out)
    assert command[1:3] == ["--target", "fuzzing/tlv_targets.py:fuzz_tlv"]
    assert cli(command) == 1


@pytest.mark.parametrize("argv, reason", [
    (["--target", "nonexistent_module_for_rtcgate:fn", "--runs", "10"], "cannot import nonexistent_module_for_rtcgate"),
    (["--target", "json:no_such_function", "--runs", "10"], "'no_such_function' not found"),
    (["--target", "json:loads", "--expect", "no.such.Error", "--runs", "10"], "cannot import no.such"),
    (["--target", "missing/targets.py:fuzz_x", "--runs", "10"], "no such file missing/targets.py"),
    (["--target", SAMPLE, "--replay"], "nothing to replay"),
    (["--replay", "demux", "--input", "no-such-reproducer"], "no such file or directory"),
])
def test_errors_exit_2_with_a_one_line_reason(project, capsys, argv, reason):
    assert cli(["fuzz", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("rtcgate fuzz: ") and captured.err.count("\n") == 1, captured.err
    assert reason in captured.err
    assert "no findings" not in captured.out and "0 failing" not in captured.out


@needs_atheris
def test_a_harness_that_runs_no_input_exits_2(project, capsys):
    (project / "breaks_in_harness.py").write_text(
        "import os\n"
        "if os.environ.get('RTCGATE_FUZZ_TARGET'):\n"
        "    raise RuntimeError('this module refuses the harness')\n"
        "def fuzz_x(data):\n"
        "    pass\n")
    assert cli(["fuzz", "--target", "breaks_in_harness.py:fuzz_x", "--time", "30"]) == 2
    err = capsys.readouterr().err
    assert "ran no input" in err and "this module refuses the harness" in err, err
    assert err.count("\n") == 1


def test_help_documents_exit_codes_and_where_outputs_go(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(["fuzz", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    out = " ".join(out.split())  # the help is wrapped to the terminal's width
    for text in ("exit status:", "0 no findings", "1 findings", "2 bad usage", "--report-dir", "--corpus-dir",
                 "<corpus-dir>/regressions/<target>/"):
        assert text in out


def test_rtc_fuzz_time_comes_with_the_installed_pytest_plugin(pytester):
    """pytester runs pytest in a fresh directory, where no conftest of this checkout is in play."""
    pytester.makepyfile(test_uses_it="def test_value(rtc_fuzz_time, pytestconfig):\n"
                                     "    assert rtc_fuzz_time == float(pytestconfig.getoption('expected'))\n")
    pytester.makeconftest("def pytest_addoption(parser):\n    parser.addoption('--expected')\n")
    pytester.runpytest("-p", "no:cacheprovider", "--rtc-fuzz-time", "2.5", "--expected", "2.5").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nrtc_fuzz_time = 4\n")
    pytester.runpytest("-p", "no:cacheprovider", "--expected", "4").assert_outcomes(passed=1)
