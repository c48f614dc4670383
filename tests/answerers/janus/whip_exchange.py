"""The probe peer's WHIP signaling against an endpoint, without media: POST, PATCH, DELETE.

POSTs the offer `toolkit.peer.ProbePeer(datachannel=True)` makes, PATCHes the resource with a
trickled candidate and then with an ICE restart fragment (new ufrag and pwd, as the
conformance check ICE-07 sends), DELETEs it twice, POSTs an SDP that is no offer, and prints
one JSON line with every status and body. It runs where the endpoint's address is reachable
(`ip netns exec NAME python .../whip_exchange.py URL`). Exit 2 with one line on stderr when
the first POST fails.
"""

from __future__ import annotations

import asyncio
import json
import sys

from toolkit.peer import PeerError, ProbePeer, whip_delete, whip_patch, whip_post

RESTART_UFRAG = "rtcgRstr"
RESTART_PWD = "rtcgate-restart-password"
TRICKLED = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
NOT_AN_OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def status_and_body(request) -> tuple[int, str]:
    """A WHIP request's status and body, refusals (PeerError) included."""
    try:
        reply = await request
    except PeerError as exc:
        return exc.status, exc.body or str(exc)
    return reply if isinstance(reply, tuple) else (reply, "")


async def exchange(url: str) -> dict:
    peer = ProbePeer(datachannel=True)
    answer, location = await whip_post(url, peer.create_offer())
    fragment = (f"a=ice-ufrag:{RESTART_UFRAG}\r\na=ice-pwd:{RESTART_PWD}\r\n"
                f"m=audio 9 UDP/TLS/RTP/SAVPF {peer.audio_pt}\r\na=mid:0\r\n")
    trickle_status, trickle_body = await status_and_body(whip_patch(location, TRICKLED, headers={"If-Match": "*"}))
    patch_status, patch_body = await status_and_body(whip_patch(location, fragment, headers={"If-Match": "*"}))
    delete_status, _ = await status_and_body(whip_delete(location))
    second_delete_status, _ = await status_and_body(whip_delete(location))
    bad_post_status, bad_post_body = await status_and_body(whip_post(url, NOT_AN_OFFER))
    return {"answer": answer, "location": location, "trickle_status": trickle_status, "trickle_body": trickle_body,
            "patch_status": patch_status, "patch_body": patch_body, "delete_status": delete_status,
            "second_delete_status": second_delete_status, "bad_post_status": bad_post_status,
            "bad_post_body": bad_post_body}


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
