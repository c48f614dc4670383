"""The probe peer's package surface: its shell's names load on first use, so importing the sans-IO
peer loads no I/O library (the import rules themselves are tests/test_architecture.py's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import toolkit.peer


def test_importing_the_sans_io_peer_loads_no_io_library():
    """A fuzz harness or a fake-clock test that imports ProbePeer pulls in neither aiohttp nor
    aiortc; the shell's names still resolve from the package when asked for."""
    program = (
        "import sys, toolkit.peer, toolkit.peer.core\n"
        "loaded = sorted(m for m in ('aiohttp', 'aiortc', 'toolkit.peer.shell') if m in sys.modules)\n"
        "print(loaded)\n"
        "from toolkit.peer import connect_whip, whip_post\n"
        "import toolkit.peer.shell.udp as udp, toolkit.peer.shell.whip as whip\n"
        "print(connect_whip is udp.connect_whip and whip_post is whip.whip_post)\n"
    )
    root = str(Path(toolkit.peer.__file__).parents[2])  # this toolkit, wherever it was imported from
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                          env=environment)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        toolkit.peer.nothing_here  # noqa: B018
