"""Seeds from a real client: `python -m toolkit.fuzz.capture [CORPORA_DIR] [--seconds S]`.

aiortc (a WebRTC stack nobody on this team wrote) connects over loopback UDP to a reference
server running in this process; every datagram the server receives and sends is recorded,
and so is what SRTP decrypts to, then filed under the targets that parse it: demux,
stun_parse, rtp_parse, rtcp_parse, sdp_offer (aiortc's offer), and raw datagram steps for
dtls_records and server_receive. Files are named by content hash.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
from pathlib import Path
from unittest import mock

from .campaign import repository_root
from .framing import encode


async def _session(seconds: float) -> dict[str, list[bytes]]:
    import aiohttp
    import aioice.ice
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack

    from reference_server.server import ReferenceServer, ServerConfig
    from reference_server.srtp import SrtpSession

    seen: dict[str, list[bytes]] = {"received": [], "sent": [], "rtp": [], "rtcp": [], "offer": []}
    server = ReferenceServer(ServerConfig(host="127.0.0.1", port=0, http_port=0))
    await server.start()
    core = server.core
    receive, outbox = core.receive_datagram, core.datagrams_to_send

    def recording_receive(data, address, now):
        seen["received"].append(bytes(data))
        receive(data, address, now)

    def recording_outbox():
        out = outbox()
        seen["sent"].extend(data for data, _ in out)
        return out

    def recording(kind, method):
        def unprotect(self, packet):
            plain = method(self, packet)
            seen[kind].append(plain)
            return plain
        return unprotect

    core.receive_datagram, core.datagrams_to_send = recording_receive, recording_outbox
    # aioice leaves 127.0.0.1 out of the addresses it gathers; keep aiortc on loopback.
    with mock.patch.object(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"]), \
            mock.patch.object(SrtpSession, "unprotect_rtp", recording("rtp", SrtpSession.unprotect_rtp)), \
            mock.patch.object(SrtpSession, "unprotect_rtcp", recording("rtcp", SrtpSession.unprotect_rtcp)):
        connection = RTCPeerConnection()
        connection.addTrack(AudioStreamTrack())
        try:
            await connection.setLocalDescription(await connection.createOffer())
            seen["offer"].append(connection.localDescription.sdp.encode())
            host, port = server.http_address
            async with aiohttp.ClientSession() as http:
                async with http.post(f"http://{host}:{port}/whip", data=connection.localDescription.sdp,
                                     headers={"Content-Type": "application/sdp"}) as response:
                    answer = await response.text()
            await connection.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            await asyncio.sleep(seconds)
        finally:
            await connection.close()
            await server.stop()
    return seen


def store(corpora: Path, seen: dict[str, list[bytes]], per_kind: int = 8) -> dict[str, int]:
    """File a few of each kind under the targets that parse them."""
    stun = [d for d in seen["received"] + seen["sent"] if d and d[0] < 4]
    dtls = [d for d in seen["received"] if d and 20 <= d[0] <= 63]
    srtp = [d for d in seen["received"] if d and d[0] >= 128]
    picks = {
        "demux": stun[:2] + dtls[:2] + srtp[:4],
        "stun_parse": stun[:per_kind],
        "rtp_parse": seen["rtp"][:per_kind],
        "rtcp_parse": seen["rtcp"][:per_kind],
        "sdp_offer": seen["offer"],
        "dtls_records": [encode(*[((0,), flight) for flight in dtls[:3]], prefix=b"\x00")] if dtls else [],
        "server_receive": [encode(*[((2, 0, 0, 0), datagram) for datagram in stun[:2] + dtls[:1] + srtp[:2]])],
    }
    written = {}
    for name, items in picks.items():
        folder = corpora / name
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            (folder / hashlib.sha1(item).hexdigest()).write_bytes(item)
        written[name] = len(items)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="?", type=Path, default=repository_root() / "corpora")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the session runs (default 3)")
    args = parser.parse_args()
    seen = asyncio.run(_session(args.seconds))
    print({kind: len(items) for kind, items in seen.items()})
    for name, count in store(args.corpora, seen).items():
        print(f"{name}: {count} seeds from aiortc")


if __name__ == "__main__":
    main()
