"""How each third-party answerer of tests/answerers is started: aiortc (passive, and its own
default a=setup:active) and werift behind the WHIP echo servers in this folder, and Janus
EchoTest behind its WHIP shim inside a network namespace (janus/netns.py says why).

`started(name, workdir)` is a context manager that starts one, yields an `Answerer` (its process,
whose ready line names its WHIP URL, and the prefix that runs a command where it can be reached),
and stops it (by PID) on the way out.
A missing answerer fails the test in CI and skips it elsewhere (`missing`); one that does not come
up fails it.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.answerers.janus.janus_config import JanusNotInstalled, find_janus_libraries
from tests.answerers.janus.netns import Namespace, NamespaceError, network_namespace
from toolkit.children import read_until_ready, start_child, stop_child

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
JANUS_DIR = HERE / "janus"
READY_LINE = re.compile(r"listening whip=(?P<url>\S+)")
START_TIMEOUT = 20.0


def missing(what: str) -> None:
    """A missing answerer fails the run in CI (where it must be installed) and skips elsewhere."""
    message = f"{what}; run scripts/install-clients.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def aiortc_command(setup: str = "passive") -> list[str]:
    return [sys.executable, "-m", "tests.answerers.aiortc_whip", "--setup", setup]


def werift_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    if not (HERE / "node_modules" / "werift").is_dir():
        missing("werift is not installed in tests/answerers/node_modules")
    return [node, str(HERE / "werift_whip.mjs")]


ANSWERERS = {
    "aiortc": aiortc_command,
    "aiortc-default": lambda: aiortc_command("default"),  # aiortc's own a=setup:active
    "werift": werift_command,
}
"""The answerers that run on loopback, by name: each one's command line."""
JANUS = "janus"


class AnswererProcess:
    """One answerer process: started, its WHIP URL read from its ready line, stopped by its PID;
    started again on the same port if it died (werift: DC-03 ends its process)."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.url = ""
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> str:
        """Start it (on the port it had, if it had one) in the checkout, where `python -m tests...`
        finds it; its WHIP URL."""
        port = urlsplit(self.url).port if self.url else None
        command = [*self.command, "--port", str(port)] if port else self.command
        self.process, self.output = start_child(command, cwd=ROOT), []
        ready = read_until_ready(self.process, READY_LINE, START_TIMEOUT, self.output)
        assert ready, f"{' '.join(command)} printed no ready line within {START_TIMEOUT:g} s:\n{''.join(self.output[-20:])}"
        self.url = ready["url"]
        return self.url

    def stop(self) -> None:
        if self.process is not None:
            stop_child(self.process)


@contextmanager
def answerer(command: list[str]) -> Iterator[AnswererProcess]:
    """Start an answerer, yield it (its WHIP URL is `.url`), then stop it."""
    process = AnswererProcess(command)
    try:
        process.start()
        yield process
    finally:
        process.stop()


@dataclass(frozen=True)
class Answerer:
    name: str
    description: str
    """What is running, for the test's output."""
    process: AnswererProcess
    run_prefix: tuple[str, ...] = ()
    """Prepended to a command to run it where the answerer can be reached (Janus: in its namespace)."""

    @property
    def url(self) -> str:
        return self.process.url


@contextmanager
def janus_in_namespace(workdir: Path) -> Iterator[tuple[Namespace, AnswererProcess]]:
    """Janus + its WHIP shim running in a namespace of their own: (namespace, their process); Janus's
    configuration, log and PID file go into `workdir`."""
    if shutil.which("ip") is None:
        missing("ip (iproute2) is not installed")
    if shutil.which("janus") is None:
        missing("janus is not installed")
    try:
        find_janus_libraries()
    except JanusNotInstalled as exc:
        missing(str(exc))
    with ExitStack() as stack:
        try:
            namespace = stack.enter_context(network_namespace())
        except NamespaceError as exc:
            missing(f"cannot make a network namespace (root and veth support needed): {exc}")
        stack.callback(stop_leftover_janus, workdir / "janus.pid")
        command = [*namespace.run_prefix, sys.executable, "-m", "tests.answerers.janus.janus_whip", "--workdir",
                   str(workdir)]
        yield namespace, stack.enter_context(answerer(command))


def stop_leftover_janus(pid_file: Path) -> None:
    """Janus is the launcher's child and dies with it; if it outlived it, end it by its PID."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, ValueError):
        return
    if command.endswith(b"janus"):
        os.kill(pid, signal.SIGKILL)


@contextmanager
def started(name: str, workdir: Path) -> Iterator[Answerer]:
    """Start the answerer called `name` (one of ANSWERERS, or JANUS), yield it, stop it."""
    if name == JANUS:
        with janus_in_namespace(workdir) as (namespace, process):
            yield Answerer(name, f"janus EchoTest ICE-lite netns {namespace.name}", process, tuple(namespace.run_prefix))
        return
    command = ANSWERERS[name]()
    with answerer(command) as process:
        yield Answerer(name, " ".join(Path(part).name for part in command), process)
