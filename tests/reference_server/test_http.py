"""The HTTP signaling surface of a running `rtcgate serve`, and one real session over loopback."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from toolkit.peer import ProbePeer, RtpReceived
from toolkit.peer.shell.udp import connect_whip
from toolkit.peer.shell.whip import whip_patch


def run(coro):
    return asyncio.run(coro)


async def request(method, url, *, body=None, content_type="application/sdp", headers=None):
    async with aiohttp.ClientSession() as http:
        hdrs = {"Content-Type": content_type, **(headers or {})} if body is not None else dict(headers or {})
        async with http.request(method, url, data=body, headers=hdrs) as response:
            return response.status, dict(response.headers), await response.text()


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_whip_post_returns_201_location_and_a_lite_answer(rtcgate_server):
    offer = ProbePeer().create_offer()
    for endpoint in (rtcgate_server.whip_url, rtcgate_server.calls_url):
        status, headers, answer = run(request("POST", endpoint, body=offer))
        assert status == 201
        assert headers["Content-Type"].startswith("application/sdp")
        assert headers["Location"].startswith(endpoint.split("//", 1)[1].split("/", 1)[1] and "/")
        assert headers["Access-Control-Allow-Origin"] == "*"
        for needle in ("a=ice-lite", "a=setup:passive", "a=fingerprint:sha-256 ", "a=rtcp-mux",
                       "a=group:BUNDLE", "opus/48000/2", f" {rtcgate_server.udp_port} typ host"):
            assert needle in answer
        status, _, _ = run(request("DELETE", rtcgate_server.http_url + headers["Location"]))
        assert status == 200
        status, _, body = run(request("DELETE", rtcgate_server.http_url + headers["Location"]))
        assert status == 404 and "no session" in body


def test_bad_requests_get_clear_4xx(rtcgate_server):
    status, _, body = run(request("POST", rtcgate_server.whip_url, body="v=0\r\n", content_type="text/plain"))
    assert status == 415 and "application/sdp" in body
    status, _, body = run(request("POST", rtcgate_server.whip_url, body="hello"))
    assert status == 400 and "not of the form" in body
    status, _, body = run(request("POST", rtcgate_server.whip_url, body="v=0\r\n" + "a=x\r\n" * 20000))
    assert status == 413
    offer = ProbePeer().create_offer()
    no_fingerprint = "\r\n".join(line for line in offer.split("\r\n") if not line.startswith("a=fingerprint"))
    status, _, body = run(request("POST", rtcgate_server.whip_url, body=no_fingerprint))
    assert status == 400 and "fingerprint" in body
    status, _, body = run(request("PATCH", rtcgate_server.whip_url + "/nosuch", body="a=ice-ufrag:abcd\r\n",
                                  content_type="application/trickle-ice-sdpfrag"))
    assert status == 404


def test_cors_preflight(rtcgate_server):
    status, headers, _ = run(request("OPTIONS", rtcgate_server.whip_url, headers={
        "Origin": "http://example.test", "Access-Control-Request-Method": "POST"}))
    assert status == 204
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Location" in headers["Access-Control-Expose-Headers"]


def test_real_session_echo_restart_and_metrics(rtcgate_server):
    async def scenario():
        connection = await connect_whip(rtcgate_server.whip_url)
        try:
            for i in range(20):
                connection.send_rtp(b"\xf8\xff\xfe" + bytes([i]), timestamp=960 * i)
            echoed = [await connection.wait_for(RtpReceived, 5.0) for _ in range(20)]
            assert [e.packet[12:] for e in echoed] == [b"\xf8\xff\xfe" + bytes([i]) for i in range(20)]
            # ICE restart through WHIP PATCH: new credentials, same DTLS and SRTP.
            status, body = await whip_patch(connection.location,
                                            "a=ice-ufrag:rstr\r\na=ice-pwd:restartrestartrestart1234\r\n")
            assert status == 200 and "a=ice-ufrag:" in body and "typ host" in body
            creds = dict(line.split(":", 1) for line in body.splitlines() if line.startswith(("a=ice-ufrag", "a=ice-pwd")))
            check = connection.peer.binding_request(username=f"{creds['a=ice-ufrag']}:rstr",
                                                    password=creds["a=ice-pwd"])
            connection.send_raw(check)
            connection.send_rtp(b"after-restart", timestamp=960 * 21)
            echoed = await connection.wait_for(RtpReceived, 5.0)
            assert echoed.packet[12:] == b"after-restart"
            _, _, text = await request("GET", rtcgate_server.metrics_url)
            assert metric(text, "rtcgate_sessions") == 1
            assert metric(text, 'rtcgate_packets_received_total{kind="rtp"}') >= 21
            assert metric(text, 'rtcgate_setup_phase_seconds_count{phase="signaling_to_first_srtp"}') == 1
        finally:
            await connection.close()
        await asyncio.sleep(0.2)
        _, _, text = await request("GET", rtcgate_server.metrics_url)
        assert metric(text, "rtcgate_sessions") == 0
        status, _, health = await request("GET", rtcgate_server.http_url + "/healthz")
        assert status == 200 and '"ok"' in health

    run(scenario())


def test_keylog_file_gets_the_dtls_secrets(tmp_path):
    from tests.support.server_process import start_server

    keylog = tmp_path / "keys.log"
    server = start_server("--keylog", str(keylog))

    async def scenario():
        connection = await connect_whip(server.whip_url)
        server_lines = keylog.read_bytes().splitlines()
        assert server_lines and set(server_lines) == set(connection.peer.keylog_lines)
        await connection.close()

    try:
        run(scenario())
    finally:
        server.stop()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="this system has no /proc")
def test_metrics_endpoint_is_prometheus_text_with_the_servers_resident_memory(rtcgate_server):
    from prometheus_client.parser import text_string_to_metric_families

    _, headers, text = run(request("GET", rtcgate_server.metrics_url))
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["rtcgate_sessions"].type == "gauge"
    assert families["rtcgate_drops"].type == "counter"  # the parser names a counter without _total
    assert families["rtcgate_setup_phase_seconds"].type == "histogram"
    standard = families["process_resident_memory_bytes"].samples[0].value
    ours = families["rtcgate_process_resident_bytes"].samples[0].value
    assert 1 << 20 < ours < 1 << 40
    assert ours == standard  # one read of /proc serves both names
