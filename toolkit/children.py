"""Child processes the toolkit starts: a server that says on its output when it is ready, stopped
by its own PID.

The contract: `start_child` runs a command with stdout and stderr merged into one text pipe
(unbuffered, so a Python child's ready line is not held back); `read_until_ready` reads its lines
into a list until one matches the ready pattern, then keeps reading the rest in a daemon thread so
a full pipe never blocks the child; `stop_child` sends SIGTERM and, after a grace period, SIGKILL.
Nothing here signals any process but the one it is given.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Sequence


def start_child(command: Sequence[str], **popen: object) -> subprocess.Popen:
    """`command` running, its output (stdout and stderr together) in `.stdout` as text lines."""
    return subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), **popen)


def read_until_ready(process: subprocess.Popen, ready: re.Pattern[str], timeout: float,
                     output: list[str]) -> re.Match[str] | None:
    """Read `process`'s output lines into `output` until one matches `ready`, for at most `timeout`
    seconds; from then on a daemon thread appends the rest. None: no line matched in time, or the
    output ended first (the process is left as it is, for the caller to stop)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([process.stdout], [], [], left)[0]:
            break
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        match = ready.search(line)
        if match:
            threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
            return match
    return None


def stop_child(process: subprocess.Popen, grace: float = 5.0) -> int:
    """SIGTERM the child if it still runs, SIGKILL it if it lingers past `grace` seconds; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
