"""rtcgate as its users get it: built into a wheel and an sdist, installed into a fresh venv, run elsewhere.

The module builds both archives from a copy of the checkout with `python -m build` (which builds
the wheel from the sdist, so a file missing from the sdist is missing from the wheel too),
checks what they hold, installs the wheel (not editable) and pytest into a venv under tmp_path,
and then, from a project folder outside the checkout and with no PYTHONPATH, runs what a user
runs: `rtcgate --version`, `rtcgate check --reference`, a short fuzz campaign on a built-in target
and one on the user's own target file, `rtcgate load --reference`, and an outside pytest project
using the plugin's options and fixtures. Every command and the tail of its output go to the
terminal, so the CI log shows them. Whatever a run writes lands under the project folder;
the installed package's file listing must be the same at the end as after the install.

pip reuses its cache, so after the first run on a machine the install costs seconds, not a download.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.user_tests import USER_TEST_NAMES, USER_TESTS

pytestmark = pytest.mark.installed

CHECKOUT = Path(__file__).resolve().parents[2]
TAIL_LINES = 25
PACKAGES = ("toolkit", "reference_server")
# Not part of the source: build output, caches, environments, run results, npm's installs.
NOT_SOURCE = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist",
              ".mypy_cache", ".ruff_cache"}


@dataclass
class Installed:
    venv: Path
    site_packages: Path
    project: Path  # the user's folder every command runs in
    env: dict[str, str]
    version: str
    listing: dict[str, tuple[int, int]]  # the installed package tree right after the install


def show(config: pytest.Config, text: str) -> None:
    """Write to the terminal past pytest's capture, so the CI log shows each command as it runs."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        if reporter is None:
            print(text, flush=True)
        else:
            reporter.ensure_newline()
            reporter.write_line(text)


def run(config: pytest.Config, command: list[str], *, cwd: Path, env: dict[str, str],
        timeout: float) -> subprocess.CompletedProcess:
    """Run a command, show it and the tail of what it printed, return the result (output in .stdout)."""
    show(config, f"\n$ (cd {cwd} && {shlex.join(command)})")
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
    # pip's notes about this machine's unreachable extra indexes say nothing about rtcgate
    lines = [line for line in result.stdout.rstrip().splitlines() if not line.startswith("WARNING: Location ")]
    if len(lines) > TAIL_LINES:
        lines = [f"[... {len(lines) - TAIL_LINES} lines ...]", *lines[-TAIL_LINES:]]
    show(config, "\n".join(f"  | {line}" for line in lines))
    show(config, f"  exit {result.returncode} after {time.monotonic() - started:.1f} s")
    return result


def clean_environment(extra_path: Path | None = None, **variables: str) -> dict[str, str]:
    """This environment without anything that points Python or pytest at the checkout."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "PYTEST_", "VIRTUAL_ENV", "__PYVENV"))}
    if extra_path is not None:
        env["PATH"] = os.pathsep.join([str(extra_path), env.get("PATH", "")])
    env.update(variables)
    return env


def listing(site_packages: Path) -> dict[str, tuple[int, int]]:
    """Every installed file and folder of rtcgate's packages; files with size and modification time.
    Bytecode caches aside: the interpreter writes those (and so touches their folders), not rtcgate."""
    entries = {}
    for package in PACKAGES:
        for path in (site_packages / package).rglob("*"):
            if "__pycache__" not in path.parts:
                stat = path.lstat()
                entries[str(path.relative_to(site_packages))] = (0, 0) if path.is_dir() else (stat.st_size,
                                                                                           stat.st_mtime_ns)
    return entries


def assert_package_unchanged(installed: Installed) -> None:
    now = listing(installed.site_packages)
    added = sorted(set(now) - set(installed.listing))
    removed = sorted(set(installed.listing) - set(now))
    changed = sorted(name for name in set(now) & set(installed.listing) if now[name] != installed.listing[name])
    assert not (added or removed or changed), (
        f"the run wrote into the installed package {installed.site_packages}: added {added[:10]}, "
        f"removed {removed[:10]}, changed {changed[:10]}")


def copy_source(destination: Path) -> Path:
    """The checkout's source files (working tree, not only what is committed), without run output."""
    def ignored(folder: str, names: list[str]) -> set[str]:
        skip = {name for name in names if name in NOT_SOURCE or name.endswith(".egg-info")}
        if Path(folder) == CHECKOUT:  # what `rtcgate fuzz` run in the checkout grew (git ignores it)
            skip |= {"corpora"} & set(names)
        if Path(folder) == CHECKOUT / "reports":  # generated reports; the committed ones are Markdown
            skip |= {name for name in names if not name.endswith(".md")}
        return skip

    shutil.copytree(CHECKOUT, destination, ignore=ignored, symlinks=True)
    return destination


def shipped_sources(source: Path) -> set[str]:
    """The run-time files that are not Python modules, as paths inside the package tree."""
    data = [path for path in (source / "toolkit" / "corpora").rglob("*") if path.is_file()]
    interop = source / "toolkit" / "interop"
    data += [*interop.glob("js/*"), *interop.glob("node/*.mjs"), interop / "node" / "package.json",
             interop / "node" / "package-lock.json", *interop.glob("gst/*.py"),
             *(source / "toolkit" / "fuzz" / "harnesses").glob("*.py"),
             *(source / "toolkit" / "reports" / "templates").glob("*")]
    return {str(path.relative_to(source)) for path in data if "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> tuple[Path, Path, set[str]]:
    """(wheel, sdist, the shipped data files expected in both), built from a copy of the checkout."""
    root = tmp_path_factory.mktemp("build")
    source = copy_source(root / "source")
    result = run(pytestconfig, [sys.executable, "-m", "build", "--quiet", "--outdir", str(root / "dist"), str(source)],
                 cwd=root, env=clean_environment(), timeout=600)
    assert result.returncode == 0, f"python -m build failed (is `build` installed? it is in the test extra):\n" \
                                   f"{result.stdout[-3000:]}"
    (wheel,) = (root / "dist").glob("rtcgate-*.whl")
    (sdist,) = (root / "dist").glob("rtcgate-*.tar.gz")
    return wheel, sdist, shipped_sources(source)


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Installed:
    """The wheel and pytest in a fresh venv outside the checkout, and the user's empty project folder."""
    wheel = built[0]
    root = tmp_path_factory.mktemp("user")
    venv = root / "venv"
    started = time.monotonic()
    run(pytestconfig, [sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root,
        env=clean_environment(), timeout=120).check_returncode()
    python = venv / "bin" / "python"
    # This interpreter's pip installs into the new venv (--python): no pip bootstrap per venv, and
    # pip's cache makes the dependencies a copy rather than a download. --no-compile: byte-compiling
    # every dependency up front costs more (~20 s) than compiling what the commands import.
    result = run(pytestconfig, [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                                "--no-compile", "--disable-pip-version-check", str(wheel), "pytest>=8"],
                 cwd=root, env=clean_environment(), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    show(pytestconfig, f"  venv with rtcgate installed in {time.monotonic() - started:.1f} s")
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        capture_output=True, text=True, check=True, env=clean_environment(),
                                        cwd=root).stdout.strip())
    project = root / "project"
    project.mkdir()
    env = clean_environment(venv / "bin", XDG_CACHE_HOME=str(root / "cache"), PYTHONUNBUFFERED="1")
    version = wheel.name.split("-")[1]
    return Installed(venv, site_packages, project, env, version, listing(site_packages))


def rtcgate(installed: Installed, config: pytest.Config, *args: str,
            timeout: float = 300) -> subprocess.CompletedProcess:
    return run(config, [str(installed.venv / "bin" / "rtcgate"), *args], cwd=installed.project, env=installed.env,
               timeout=timeout)


def test_the_wheel_and_the_sdist_ship_every_run_time_file_and_the_licence(built):
    wheel, sdist, expected = built
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert expected, "no shipped data found in the checkout"
    assert sorted(expected - in_wheel) == [], "missing from the wheel"
    assert sorted(expected - in_sdist) == [], "missing from the sdist"
    # Nested folders and files without an extension (committed fuzz reproducers) included.
    assert any(re.match(r"toolkit/corpora/regressions/[^/]+/[^./]+$", name) for name in in_wheel)
    assert "toolkit/corpora/audio/speech_en.ogg" in in_wheel
    for name in (*in_wheel, *in_sdist):
        assert "node_modules" not in name and "__pycache__" not in name and not name.endswith(".pyc"), name
    assert "LICENSE" in in_sdist
    dist_info = f"rtcgate-{wheel.name.split('-')[1]}.dist-info"
    licence = zipfile.ZipFile(wheel).read(f"{dist_info}/licenses/LICENSE").decode()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert "Classifier: Framework :: Pytest" in metadata


def test_the_installed_package_runs_from_site_packages_with_its_shipped_files(built, installed, pytestconfig):
    """The interop drivers, the fuzz corpora and the speech sample all resolve inside the install,
    and the node clients' working folder is in the user's cache, not in the package."""
    probe = textwrap.dedent("""\
        import json, toolkit, reference_server
        from toolkit import resources
        from toolkit.interop import node_clients
        from toolkit.interop.drivers import DRIVERS
        print(json.dumps({
            "toolkit": toolkit.__file__, "reference_server": reference_server.__file__,
            "corpora": sum(1 for p in resources.corpora().rglob("*") if p.is_file()),
            "speech": str(resources.speech_sample()),
            "gst": str(resources.shipped("interop", "gst", "webrtcbin_client.py")),
            "page": str(resources.shipped("interop", "js", "page.html")),
            "node": str(node_clients.prepare()),
        }))
    """)
    result = run(pytestconfig, [str(installed.venv / "bin" / "python"), "-c", probe], cwd=installed.project,
                 env=installed.env, timeout=120)
    assert result.returncode == 0, result.stdout
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("toolkit", "reference_server", "speech", "gst", "page"):
        assert Path(found[key]).is_relative_to(installed.site_packages), (key, found[key])
        assert Path(found[key]).is_file(), (key, found[key])
    assert found["corpora"] == sum(1 for name in built[2] if name.startswith("toolkit/corpora/"))
    node_folder = Path(found["node"])
    assert node_folder.is_relative_to(Path(installed.env["XDG_CACHE_HOME"]) / "rtcgate")
    assert (node_folder / "werift_client.mjs").is_file() and (node_folder.parent / "js" / "scenario.mjs").is_file()
    assert_package_unchanged(installed)


def test_version(installed, pytestconfig):
    result = rtcgate(installed, pytestconfig, "--version", timeout=60)
    assert result.returncode == 0, result.stdout
    assert re.search(rf"\b{re.escape(installed.version)}\b", result.stdout), result.stdout


def test_check_reference_passes_and_writes_its_reports_here(installed, pytestconfig):
    result = rtcgate(installed, pytestconfig, "check", "--reference", timeout=280)
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((installed.project / "reports" / "rtcgate.json").read_text())
    statuses = {entry["id"]: entry["status"] for entry in report["results"]}
    assert len(statuses) > 70
    # ICE-10 judges full ICE agents; the reference server is ICE-lite, so it SKIPs by design.
    not_passed = {check: status for check, status in statuses.items() if status != "PASS"}
    assert not_passed == {"ICE-10": "SKIP"}, not_passed
    for name in ("rtcgate.html", "rtcgate-junit.xml", "rtcgate.sarif"):
        assert (installed.project / "reports" / name).is_file()
    assert_package_unchanged(installed)


def findings_under(project: Path, target: str) -> dict:
    reports = [path for path in project.rglob("findings.json") if json.loads(path.read_text())["target"] == target]
    assert len(reports) == 1, f"findings.json of {target} under {project}: {reports}"
    return json.loads(reports[0].read_text())


def test_fuzz_a_builtin_target_writes_under_the_run_folder(installed, pytestconfig):
    result = rtcgate(installed, pytestconfig, "fuzz", "stun_parse", "--time", "5", timeout=180)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "no findings" in result.stdout
    report = findings_under(installed.project, "stun_parse")
    assert report["execs"] > 0 and report["findings"] == []
    assert_package_unchanged(installed)


USER_TARGET = '''
def parse_header(data: bytes) -> int:
    """A two-byte header: version 2, then flags whose low nibble divides the high one."""
    if len(data) < 2:
        raise ValueError("short header")
    version, flags = data[0], data[1]
    if version != 2:
        raise ValueError(f"unknown version {version}")
    return (flags >> 4) // (flags & 0x0F)  # the bug a fuzzer finds: ZeroDivisionError when the low nibble is 0
'''


def test_fuzz_the_users_own_target_stores_and_replays_its_finding_under_the_run_folder(installed, pytestconfig):
    (installed.project / "my_parsers.py").write_text(USER_TARGET)
    result = rtcgate(installed, pytestconfig, "fuzz", "--target", "my_parsers.py:parse_header",
                     "--expect", "ValueError", "--time", "5", "--minimize-time", "2", timeout=240)
    assert result.returncode == 1, result.stdout[-3000:]  # 1: findings
    assert "ZeroDivisionError" in result.stdout
    report = findings_under(installed.project, "my_parsers.parse_header")
    assert [finding["error"] for finding in report["findings"]] == ["ZeroDivisionError"]
    finding = report["findings"][0]
    reproducer = (installed.project / finding["reproducer"]).resolve()
    assert reproducer.is_relative_to(installed.project) and reproducer.is_file(), finding["reproducer"]
    assert_package_unchanged(installed)
    replay = rtcgate(installed, pytestconfig, *shlex.split(finding["replay"])[1:], timeout=120)
    assert replay.returncode == 1 and "ZeroDivisionError" in replay.stdout, replay.stdout[-2000:]


def test_load_reference_briefly(installed, pytestconfig):
    result = rtcgate(installed, pytestconfig, "load", "--reference", "--sessions", "2", "--duration", "1", "--quiet",
                     "--report-dir", "load-reports", timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((installed.project / "load-reports" / "load.json").read_text())
    assert report["setup"]["sessions"] == 2 and report["setup"]["failed"] == 0
    assert report["scenarios"][0]["media"]["sent"] > 0
    assert (installed.project / "load-reports" / "load.html").is_file()
    assert_package_unchanged(installed)


def test_pytest_plugin_in_an_outside_project(installed, pytestconfig, tmp_path):
    project = tmp_path / "my-server-tests"
    project.mkdir()
    (project / "test_my_server.py").write_text(USER_TESTS)
    result = run(pytestconfig, [str(installed.venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider",
                                "--rtc-reference", "--rtc-only", "STUN-01", "--junitxml=junit.xml", "-q"],
                 cwd=project, env=installed.env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b5 passed\b", result.stdout), result.stdout[-2000:]
    cases = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in ET.parse(project / "junit.xml").getroot().iter("testcase")}
    assert set(cases) == {*USER_TEST_NAMES, "SANITY-before", "STUN-01", "SANITY-after"}
    assert cases["test_wrong_password_is_refused"]["rfc"] == "RFC 8489 §9.1.3"
    assert cases["STUN-01"]["profile"] == "core"
    assert_package_unchanged(installed)


def test_nothing_was_written_into_the_installed_package(installed):
    assert_package_unchanged(installed)
