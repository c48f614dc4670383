"""The probe peer's WHIP signaling against an endpoint, without media: POST, PATCH, DELETE.

POSTs the offer `toolkit.peer.ProbePeer(datachannel=True)` makes, PATCHes the resource with an
ICE restart fragment (new ufrag and pwd, as the conformance check ICE-07 sends), DELETEs it,
and prints one JSON line: the answer, the PATCH status and body, the DELETE status. It runs
where the endpoint's address is reachable (`ip netns exec NAME python .../whip_exchange.py URL`).
Exit 2 with one line on stderr when the POST fails.
"""

from __future__ import annotations

import asyncio
import json
import sys

from toolkit.peer import PeerError, ProbePeer, whip_delete, whip_patch, whip_post

RESTART_UFRAG = "rtcgRstr"
RESTART_PWD = "rtcgate-restart-password"


async def exchange(url: str) -> dict:
    peer = ProbePeer(datachannel=True)
    answer, location = await whip_post(url, peer.create_offer())
    fragment = (f"a=ice-ufrag:{RESTART_UFRAG}\r\na=ice-pwd:{RESTART_PWD}\r\n"
                f"m=audio 9 UDP/TLS/RTP/SAVPF {peer.audio_pt}\r\na=mid:0\r\n")
    try:
        patch_status, patch_body = await whip_patch(location, fragment, headers={"If-Match": "*"})
    except PeerError as exc:
        patch_status, patch_body = exc.status, str(exc)
    return {"answer": answer, "location": location, "patch_status": patch_status, "patch_body": patch_body,
            "delete_status": await whip_delete(location)}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: whip_exchange.py WHIP_URL")
    try:
        result = asyncio.run(exchange(sys.argv[1]))
    except PeerError as exc:
        print(f"whip-exchange: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
