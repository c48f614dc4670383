"""Start `rtcgate serve` as a child process on free ports, the way a user runs it."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

READY_LINE = re.compile(r"listening udp=(?P<udp_host>\S+):(?P<udp_port>\d+) http=(?P<http>\S+)")


@dataclass
class ServerProcess:
    process: subprocess.Popen
    udp_host: str
    udp_port: int
    http_url: str
    output: list[str] = field(default_factory=list)

    @property
    def whip_url(self) -> str:
        return f"{self.http_url}/whip"

    @property
    def calls_url(self) -> str:
        return f"{self.http_url}/v1/realtime/calls"

    @property
    def metrics_url(self) -> str:
        return f"{self.http_url}/metrics"

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM the process we started (by PID), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(*extra_args: str, host: str = "127.0.0.1", media: str = "echo", timeout: float = 20.0) -> ServerProcess:
    """Run the CLI on port 0 and parse the ready line it prints.

    Most tests verify the transport with the echo (`media="echo"`); voice tests ask for "voice"."""
    cmd = [sys.executable, "-m", "toolkit.cli", "serve", "--host", host, "--port", "0",
           "--http-port", "0", "--media", media, *extra_args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], left)
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = READY_LINE.search(line)
        if match:
            return ServerProcess(process, match["udp_host"], int(match["udp_port"]), match["http"], lines)
    process.kill()
    process.wait()
    raise RuntimeError("rtcgate serve did not report its ports:\n" + "".join(lines))
