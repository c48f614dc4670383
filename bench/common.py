"""What every benchmark in bench/ shares: its command line, its child processes, CPU accounting,
machine facts, the server's /metrics, and where its figures are written.

The contract: a benchmark runs from a checkout as `python -m bench.<name>` and prints figures
measured in that same run. Every child process is started through `Children`, logs to a
temporary folder, and is stopped by its own PID (SIGTERM, then SIGKILL) however the run ends.
A run that cannot measure raises `BenchError`; `run_benchmark` turns that into one line on stderr
and exit status 1 (Ctrl-C: 130; a bad argument: 2, from the shared `ArgumentParser`). Figures go
to one JSON file, by default `reports/bench/<name>.json`, written by `write_results`.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns

import uvloop
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from toolkit.commands.arguments import ArgumentParser
from toolkit.percentiles import nearest_rank

ROOT = pathlib.Path(__file__).resolve().parents[1]
"""The checkout: children run here, so `-m toolkit.cli` and `-m bench.<name>` find this code."""
REPORTS = ROOT / "reports" / "bench"
START_TIMEOUT = 20.0
READY_LINE = re.compile(rb"listening udp=(?P<host>[^\s:]+):(?P<port>\d+)(?: http=(?P<http>\S+))?")
"""What `rtcgate serve` (and srtp_echo's raw echo server) prints once it listens."""
DROP_COUNTERS = ("rtcgate_drops_total", "rtcgate_relay_drops_total")
"""The server's drops by reason, and a relay's in front of workers."""
BUSY_MACHINE = 0.25
"""CPU share of other processes from which a run's figures are not to be trusted."""
CLIENT_BOUND = 0.95
"""Client CPU share from which a figure says more about the client than the server."""


class BenchError(Exception):
    """The benchmark cannot run: a server did not start or a session did not connect."""


# -- command line and results --------------------------------------------------------------------


def benchmark_parser(module_file: str, doc: str) -> ArgumentParser:
    """The shared parser (toolkit.commands.arguments), named as the benchmark is run, its
    description the docstring's first paragraph, with `--json`: where the figures go."""
    name = pathlib.Path(module_file).stem
    parser = ArgumentParser(prog=f"python -m bench.{name}", description=" ".join(doc.split("\n\n")[0].split()))
    parser.add_argument("--json", type=pathlib.Path, default=REPORTS / f"{name}.json", help="where to write the figures")
    return parser


def shown_path(path: pathlib.Path) -> str:
    """`path` relative to the checkout when it is inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_results(path: pathlib.Path, document: dict) -> None:
    """The figures as indented JSON (paths as text), and a line saying where they went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"written to {shown_path(path)}")


def run_benchmark(name: str, main: Callable[[], int]) -> int:
    """`main`'s exit status; a BenchError is one line on stderr and status 1, Ctrl-C status 130."""
    try:
        return main()
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


# -- child processes -----------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A process this benchmark started; its output goes to a log file."""

    name: str
    process: subprocess.Popen
    log: pathlib.Path
    ready: re.Match | None = None
    """The line that said it was ready."""
    udp_port: int = 0
    http_url: str | None = None

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM our own child by PID, SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Children:
    """The processes a benchmark starts, as a `with` block: their logs in a temporary folder,
    every one stopped when the block ends (or earlier, by `stop_all`)."""

    def __enter__(self) -> Children:
        self._folder = tempfile.TemporaryDirectory(prefix="rtcgate-bench-")
        self.log_dir = pathlib.Path(self._folder.name)
        self.running: list[Child] = []
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()
        self._folder.cleanup()

    def start(self, name: str, command: list[str], cpu: int | None = None,
              ready: re.Pattern[bytes] = READY_LINE) -> Child:
        """Run `command` in the checkout, pinned to `cpu`; wait until its output matches `ready`.
        The `host`, `port` and `http` groups of the match, when it has them, fill `udp_port`
        and `http_url`."""
        log = self.log_dir / f"{name.replace(' ', '_')}.log"
        with open(log, "ab") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
                                       env=dict(os.environ, PYTHONUNBUFFERED="1"))
        child = Child(name, process, log)
        self.running.append(child)
        if cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = ready.search(log.read_bytes())
            if match:
                child.ready = match
                found = match.groupdict()
                if found.get("port"):
                    child.udp_port = int(found["port"])
                if found.get("http"):
                    child.http_url = found["http"].decode()
                return child
            if process.poll() is not None:
                raise BenchError(f"{name} exited with status {process.returncode} before it was ready:\n"
                                 f"{child.log_tail()}")
            time.sleep(0.02)
        raise BenchError(f"{name} printed no ready line within {START_TIMEOUT:g} s:\n"
                         f"{child.log_tail()}")

    def stop_all(self) -> None:
        for child in self.running:
            child.stop()
        self.running.clear()

    def cpu_seconds(self) -> float:
        """CPU time of every running child, together."""
        return sum(child.cpu_seconds() for child in self.running)


def serve_command(media: str, *options: str) -> list[str]:
    """`rtcgate serve` of this checkout on free loopback ports, with `options` after."""
    return [sys.executable, "-m", "toolkit.cli", "serve", "--host", "127.0.0.1", "--port", "0",
            "--http-port", "0", "--media", media, *options]


# -- CPU accounting ------------------------------------------------------------------------------


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent on anything but idling and waiting for I/O (Linux /proc/stat)."""
    ticks = [int(value) for value in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU time so far of this process, the server under test and the whole machine."""

    wall: float
    client: float
    server: float
    machine: float

    @classmethod
    def take(cls, server) -> CpuSnapshot:
        """`server`: anything with `cpu_seconds()` (a Child, or a group of them)."""
        return cls(perf_counter_ns() / 1e9, cpu_seconds_self(), server.cpu_seconds(), machine_busy_seconds())

    def share_since(self, start: CpuSnapshot) -> dict[str, float]:
        """CPU used per second of wall time by the client, the server and everything else."""
        wall = self.wall - start.wall
        client = (self.client - start.client) / wall
        server = (self.server - start.server) / wall
        others = max(0.0, (self.machine - start.machine) / wall - client - server)
        return {"client": client, "server": server, "others": others}


def cpu_split() -> tuple[int, int] | None:
    """(client CPU, server CPU), or None when there is only one CPU to run on."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def pin_client() -> tuple[int, int] | None:
    """Pin this process to the client's CPU of `cpu_split`; the servers go on the other one."""
    pinned = cpu_split()
    if pinned is not None:
        os.sched_setaffinity(0, {pinned[0]})
    return pinned


def server_cpu(pinned: tuple[int, int] | None) -> int | None:
    return None if pinned is None else pinned[1]


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


# -- figures -------------------------------------------------------------------------------------


def percentile(values_ns: list[int], fraction: float) -> float | None:
    """Nearest rank (toolkit.percentiles), nanoseconds in, milliseconds out; None for no values."""
    return nearest_rank(values_ns, fraction)[0] / 1e6 if values_ns else None


def machine_facts(pinned: tuple[int, int] | None) -> dict:
    model = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "uvloop": uvloop.__version__,
        "pylibsrtp": importlib.metadata.version("pylibsrtp"),
        "kernel": f"{platform.system()} {platform.release()}",
        "pinned_cpus": None if pinned is None else {"client": pinned[0], "servers": pinned[1]},
    }


def machine_line(machine: dict, *libraries: str, kernel: bool = True) -> str:
    """'machine: N CPUs (model), Python x.y.z', then each library's version, then the kernel."""
    return (f"machine: {machine['cpu_count']} CPUs ({machine['cpu_model']}), Python {machine['python']}"
            + "".join(f", {library} {machine[library]}" for library in libraries)
            + (f", {machine['kernel']}" if kernel else ""))


def pinning_line(pinned: dict | None) -> str:
    return "cores: " + (f"client on CPU {pinned['client']}, servers on CPU {pinned['servers']}" if pinned
                        else "not pinned (fewer than 2 CPUs available)")


def metric_samples(http_url: str) -> list[Sample]:
    """Every sample on the server's /metrics page."""
    try:
        with urllib.request.urlopen(f"{http_url}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError as exc:
        raise BenchError(f"cannot read {http_url}/metrics: {exc}") from None
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def drop_counts(samples: list[Sample]) -> Counter:
    """Drops by reason, summed over the relay and every worker (their other labels)."""
    drops: Counter = Counter()
    for sample in samples:
        if sample.name in DROP_COUNTERS and "reason" in sample.labels:
            drops[sample.labels["reason"]] += int(sample.value)
    return drops
