"""Seeds from real clients: `python -m toolkit.fuzz.capture [CORPORA_DIR] [--client aiortc|chromium]`.

A WebRTC stack nobody on this team wrote connects over loopback UDP to a reference server
running in this process: aiortc (an audio track), or headless Chromium running the interop
scenario (toolkit/interop: audio, the data channel "rtcgate-echo" and its messages, an ICE
restart). Everything the server receives and sends is recorded where the server sees it in
the clear: each datagram, each SRTP/SRTCP packet as it decrypts, each SCTP packet its DTLS
hands to the data channel, each offer. A few of each are then filed under the targets that
parse them, in the targets' own input layouts:

    demux, stun_parse         datagrams as they are
    ice_request               the client's checks, fix-up byte 7 (re-addressed to the fuzz session)
    dtls_records              the client's DTLS datagrams as steps on a fresh endpoint
    rtp_parse, rtcp_parse     decrypted packets
    sdp_offer                 the client's offers
    sctp_dcep                 the client's SCTP packets, on a fresh association: its INIT as it is,
                              the server's cookie echoed, the rest re-addressed
    server_receive            the client's datagram sequence as raw steps from one address

Files are named `<client>-<content hash>`, so running this again adds only what is new.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import struct
import tempfile
from pathlib import Path
from unittest import mock

from toolkit import resources

from .campaign import MAX_LEN
from .framing import encode

CLIENTS = ("aiortc", "chromium")
COOKIE_ECHO = 10
MAX_STEPS = 16  # server_receive and sctp_dcep read at most this many steps


async def record(client: str, seconds: float, workdir: Path) -> dict[str, list[bytes]]:
    """Run one session of `client` against an in-process reference server; what it saw."""
    from reference_server.shell.datachannel import DataChannelAssociation
    from reference_server.shell.server import ReferenceServer, ServerConfig
    from reference_server.srtp import SrtpSession

    seen: dict[str, list[bytes]] = {kind: [] for kind in ("received", "sent", "rtp", "rtcp", "sctp", "offer")}
    server = ReferenceServer(ServerConfig(host="127.0.0.1", port=0, http_port=0))
    await server.start()
    core = server.core
    receive, outbox, create_session = core.receive_datagram, core.datagrams_to_send, core.create_session

    def recording_receive(data, address, now):
        seen["received"].append(bytes(data))
        receive(data, address, now)

    def recording_outbox():
        out = outbox()
        seen["sent"].extend(data for data, _ in out)
        return out

    def recording_create_session(offer, now):
        seen["offer"].append(offer.encode())
        return create_session(offer, now)

    def recording(kind, method):
        def recorded(self, packet):
            result = method(self, packet)
            seen[kind].append(bytes(result if kind != "sctp" else packet))
            return result
        return recorded

    core.receive_datagram, core.datagrams_to_send = recording_receive, recording_outbox
    core.create_session = recording_create_session
    host, port = server.http_address
    whip_url = f"http://{host}:{port}/whip"
    with mock.patch.object(SrtpSession, "unprotect_rtp", recording("rtp", SrtpSession.unprotect_rtp)), \
            mock.patch.object(SrtpSession, "unprotect_rtcp", recording("rtcp", SrtpSession.unprotect_rtcp)), \
            mock.patch.object(DataChannelAssociation, "receive", recording("sctp", DataChannelAssociation.receive)):
        try:
            if client == "aiortc":
                await _aiortc(whip_url, seconds)
            else:
                await _chromium(whip_url, workdir)
        finally:
            await server.stop()
    return seen


async def _aiortc(whip_url: str, seconds: float) -> None:
    import aioice.ice
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack

    from toolkit.peer.shell.whip import whip_post

    # aioice leaves 127.0.0.1 out of the addresses it gathers; keep aiortc on loopback.
    with mock.patch.object(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"]):
        connection = RTCPeerConnection()
        connection.addTrack(AudioStreamTrack())
        channel = connection.createDataChannel("oai-events")
        channel.on("open", lambda: channel.send("hello from aiortc"))
        try:
            await connection.setLocalDescription(await connection.createOffer())
            answer, _ = await whip_post(whip_url, connection.localDescription.sdp)
            await connection.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            await asyncio.sleep(seconds)
        finally:
            await connection.close()


async def _chromium(whip_url: str, workdir: Path) -> None:
    """The interop scenario's echo phase in headless Chromium (toolkit.interop.drivers.chromium)."""
    from toolkit.interop.drivers.base import Material, Targets
    from toolkit.interop.drivers.chromium import ChromiumDriver

    driver = ChromiumDriver()
    driver.version()  # ClientMissing, with how to install it, when Chromium is not here
    material = Material.write(workdir / "material")
    report = await driver.session(Targets(echo_url=whip_url, voice_url=None), material, workdir)
    if report.get("echo", {}).get("error"):
        print(f"chromium's scenario reported: {report['echo']['error']}")


def _sctp_steps(packets: list[bytes]) -> list[bytes]:
    """sctp_dcep inputs. On a fresh association: the client's INIT as it came, the server's
    cookie echoed (with whatever the client bundled behind its own COOKIE ECHO), then its
    next packets' chunks behind a header the fuzz association accepts, so its DATA arrives in
    TSN order. On the established one: its later packets' chunks, re-addressed."""
    inits = [p for p in packets if len(p) > 12 and p[12] == 1]
    if not inits:
        return []
    steps: list[tuple[tuple[int, ...], bytes]] = [((0,), inits[0])]
    for packet in packets:
        if packet is inits[0] or len(packet) <= 12:
            continue
        if packet[12] == COOKIE_ECHO:
            length = struct.unpack_from("!H", packet, 14)[0]
            steps.append(((4,), packet[12 + length + (-length % 4):]))
        else:
            steps.append(((2,), packet[12:]))
    limit = MAX_LEN["sctp_dcep"] - 1
    fresh = _fit(steps, limit)
    seeds = [encode(*fresh, prefix=b"\x00")]
    rest = [step for step in steps[len(fresh):] if step[0] == (2,)]
    while rest and len(seeds) < 4:
        chosen = _fit(rest, limit)
        seeds.append(encode(*chosen, prefix=b"\x01"))
        rest = rest[len(chosen):]
    return seeds


def _fit(steps: list, limit: int) -> list:
    """The longest prefix of `steps` that fits `limit` bytes and the step budget (at least one step)."""
    chosen, size = [], 0
    for choices, payload in steps[:MAX_STEPS]:
        size += len(choices) + 2 + len(payload)
        if size > limit and chosen:
            break
        chosen.append((choices, payload))
    return chosen


def pick(seen: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
    """A few of each kind, under the targets that parse them."""
    stun = [d for d in seen["received"] + seen["sent"] if d and d[0] < 4]
    checks = [d for d in seen["received"] if d and d[0] < 4 and d[:2] == b"\x00\x01"]
    dtls = [d for d in seen["received"] if d and 20 <= d[0] <= 63]
    srtp = [d for d in seen["received"] if d and d[0] >= 128]
    received = seen["received"]
    return {
        "demux": stun[:2] + dtls[:2] + srtp[:2],
        "stun_parse": stun[:2] + [d for d in stun if d[:2] == b"\x01\x01"][:1] + checks[-1:],
        "ice_request": [b"\x07" + check for check in checks[:1] + checks[-1:]],
        "dtls_records": [encode(*[((0,), flight) for flight in dtls[:3]], prefix=b"\x00")] if dtls else [],
        "rtp_parse": seen["rtp"][:2] + seen["rtp"][-1:],
        "rtcp_parse": seen["rtcp"][:3],
        "sdp_offer": seen["offer"][:2],
        "sctp_dcep": _sctp_steps(seen["sctp"]),
        "server_receive": [encode(*_fit([((2, 0, 0, 0), d) for d in received], MAX_LEN["server_receive"])),
                           encode(*_fit([((2, 0, 0, 0), d) for d in checks[:1] + dtls + srtp[:4]],
                                        MAX_LEN["server_receive"]))] if received else [],
    }


def store(corpora: Path, client: str, picks: dict[str, list[bytes]]) -> dict[str, int]:
    """Write each pick as corpora/<target>/<client>-<sha1>; return how many per target."""
    written = {}
    for name, items in picks.items():
        folder = corpora / name
        folder.mkdir(parents=True, exist_ok=True)
        unique = list(dict.fromkeys(item for item in items if item))
        for item in unique:
            (folder / f"{client}-{hashlib.sha1(item).hexdigest()}").write_bytes(item)
        written[name] = len(unique)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="?", type=Path, default=resources.corpora())
    parser.add_argument("--client", choices=CLIENTS, default="aiortc")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long an aiortc session runs (default 3)")
    parser.add_argument("--workdir", type=Path, help="keep the client's logs and report here (default: a temporary one)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        seen = asyncio.run(record(args.client, args.seconds, workdir))
    print({kind: len(items) for kind, items in seen.items()})
    for name, count in store(args.corpora, args.client, pick(seen)).items():
        print(f"{name}: {count} seeds from {args.client}")


if __name__ == "__main__":
    main()
