"""`python -m tests.conformance.allowed_servers NAME [rtcgate serve options]`: the reference server
with one behaviour that differs from it in a way the RFCs allow.

The zoo's twins: a zoo variant has a bug a check must FAIL; a server here has none, and the check
that once mistook its behaviour for a bug must PASS it (test_check_judgements.py). Same options
and ready line as `rtcgate serve`.
"""

from __future__ import annotations

import argparse
import struct
import sys

from OpenSSL import crypto

from reference_server.certificate import fingerprint_of_der
from tests.zoo import _builder
from tests.zoo.seams import Datagram, ZooSrtpSession, intercept, per_instance
from tests.zoo.variants_dc import DATA_CHANNEL_OPEN, PPID_DCEP, SctpFilterCore, data_chunks
from tests.zoo.variants_dtls import AnyCertificateEndpoint
from toolkit.commands import serve


class LargeReplayWindow(ZooSrtpSession):
    """A 4096-packet SRTP replay window (RFC 3711 §3.3.2: "MAY be set to a higher value" than 64)."""

    replay_window = 4096


@intercept("_receive_dtls")
def media_in_flight_at_close(datagram: Datagram) -> bytes:
    """Has one SRTP packet on its way out when a close_notify arrives (sent before reading it)."""
    session = datagram.session
    if session is not None and session.srtp is not None and datagram.data[:1] == b"\x15":
        packet = struct.pack("!BBHII", 0x80, 111, 1, 960, 0x5EED) + bytes(40)
        datagram.core._send(session.srtp.protect_rtp(packet), session.selected or datagram.source, "srtp")
    return datagram.data


class FingerprintCheckedAfterHandshake(AnyCertificateEndpoint):
    """Completes the handshake with any client certificate, then compares it with the offer's
    a=fingerprint and, on a mismatch, closes at once (RFC 5763 §5: "tear down the media session
    immediately")."""

    def _advance_handshake(self) -> None:
        was = self.state
        super()._advance_handshake()
        if was != "connected" and self.state == "connected":
            der = crypto.dump_certificate(crypto.FILETYPE_ASN1, self._connection.get_peer_certificate())
            if not any(fingerprint_of_der(der, name) == value for name, value in self._peer_check.fingerprints):
                self.close(self._now)


class ReopenDisturbsChannel(SctpFilterCore):
    """A second DATA_CHANNEL_OPEN on a stream in use leaves that stream's channel broken: its later
    messages are lost (RFC 8832 gives the receiver no rule for it)."""

    _opened: dict[tuple[str, int], int] = per_instance(dict)

    def drop(self, session_id: str, packet: bytes) -> bool:
        for _, stream, ppid, data, _ in data_chunks(packet):
            key = (session_id, stream)
            if ppid == PPID_DCEP and data[:1] == bytes([DATA_CHANNEL_OPEN]):
                self._opened[key] = self._opened.get(key, 0) + 1
            elif self._opened.get(key, 0) > 1:
                return True
        return False


SERVERS = {
    "large-replay-window": LargeReplayWindow,
    "media-in-flight-at-close": media_in_flight_at_close,
    "tears-down-after-handshake": FingerprintCheckedAfterHandshake,
    "reopen-disturbs-channel": ReopenDisturbsChannel,
}


def command(name: str) -> list[str]:
    """The command line that serves `name` (for ReferenceTarget)."""
    return [sys.executable, "-m", "tests.conformance.allowed_servers", name]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SERVERS:
        print(f"usage: python -m tests.conformance.allowed_servers {{{','.join(SERVERS)}}} [rtcgate serve options]",
              file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"python -m tests.conformance.allowed_servers {argv[0]}")
    commands = parser.add_subparsers(dest="command")
    serve.register(commands)
    args = parser.parse_args(["serve", *argv[1:]])
    return serve.run(args, commands.choices["serve"], server_factory=_builder(SERVERS[argv[0]]))


if __name__ == "__main__":
    sys.exit(main())
