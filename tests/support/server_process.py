"""Start `rtcgate serve` as a child process on free ports, the way a user runs it.

Its output is kept in `ServerProcess.output`: the lines up to the ready line, then the rest as
it comes (a thread reads it, so a full pipe never blocks the server)."""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field

from toolkit.children import read_until_ready, start_child, stop_child

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
        return stop_child(self.process, timeout)


def start_server(*extra_args: str, host: str = "127.0.0.1", media: str = "echo", timeout: float = 20.0) -> ServerProcess:
    """Run the CLI on port 0 and parse the ready line it prints.

    Most tests verify the transport with the echo (`media="echo"`); voice tests ask for "voice"."""
    process = start_child([sys.executable, "-m", "toolkit.cli", "serve", "--host", host, "--port", "0",
                           "--http-port", "0", "--media", media, *extra_args])
    output: list[str] = []
    match = read_until_ready(process, READY_LINE, timeout, output)
    if match is None:
        stop_child(process, 0)
        raise RuntimeError("rtcgate serve did not report its ports:\n" + "".join(output))
    return ServerProcess(process, match["udp_host"], int(match["udp_port"]), match["http"], output)
