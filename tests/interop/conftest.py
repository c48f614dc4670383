"""Fixtures that find the real clients, and keep aiortc on loopback."""
from __future__ import annotations

import os
from pathlib import Path

import aioice.ice
import pytest

# Debian's binary; the /usr/bin/chromium wrapper adds flags of its own.
CHROMIUM = Path("/usr/lib/chromium/chromium")
INSTALL_HINT = "run scripts/install-clients.sh"


def missing_client(name: str) -> None:
    """A missing client fails the run in CI (where it must be installed) and skips elsewhere."""
    message = f"{name} is not installed; {INSTALL_HINT}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def chromium() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        missing_client("Chromium")
    return CHROMIUM


@pytest.fixture
def loopback_aiortc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make aiortc gather 127.0.0.1 only.

    aioice skips 127.0.0.1 when it lists host addresses, so by default an aiortc
    client checks from the machine's other addresses. The interop tests stay on loopback.
    """
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
