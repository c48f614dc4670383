from __future__ import annotations

import pytest

from tests.support.server_process import ServerProcess, start_server


@pytest.fixture
def rtcgate_server() -> ServerProcess:
    """A reference server on free loopback ports, stopped after the test."""
    server = start_server()
    yield server
    server.stop()
