"""What both state machines share: the example database and a hostile DTLS record."""
from __future__ import annotations

from pathlib import Path

from hypothesis.database import DirectoryBasedExampleDatabase

DATABASE = DirectoryBasedExampleDatabase(str(Path(__file__).resolve().parents[2] / ".hypothesis" / "examples"))
"""Failing sequences are saved under the repository's git-ignored .hypothesis/ and replayed first."""

CLIENT_HELLO = bytes.fromhex("16fefd0000000000000000003c") + b"\x01" + b"\0" * 59
"""A DTLS 1.2 handshake record that looks like the start of a ClientHello."""
