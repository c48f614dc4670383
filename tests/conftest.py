from __future__ import annotations

import threading

import pytest

from tests.support.server_process import ServerProcess, start_server


@pytest.fixture
def rtcgate_server() -> ServerProcess:
    """A reference server on free loopback ports, stopped after the test."""
    server = start_server()
    drain = threading.Thread(target=lambda: [server.output.append(l) for l in server.process.stdout], daemon=True)
    drain.start()
    yield server
    server.stop()
