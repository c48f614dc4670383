"""Voice services as targets of `rtcgate check`, and WHIP headers (authentication).

A realtime voice target never echoes our media: the first sanity conversation learns that
(`Target.echoes`), checks that judge by echoes SKIP with the reason, the others judge by
what any media server does (consent answers, RTCP reports on our stream). `--header` goes with
every WHIP request and never into a report.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from tests.support.http_app import serve_app
from tests.support.server_process import start_server
from toolkit.commands.arguments import http_header
from toolkit.conformance.liveness import Sign, counts_sequence, report_blocks
from toolkit.conformance.targets import CallsTarget, TargetError, WhipTarget, make_target

pytest_plugins = ["pytester"]

SECRET = "s3cr3t-token-rtcgate"
AUTHORIZATION = f"Bearer {SECRET}"


def rtcgate(*args: str, timeout: float = 400.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "check", *args], capture_output=True, text=True,
                          timeout=timeout)


# -- liveness ---------------------------------------------------------------------------------


def test_report_blocks_read_sr_and_rr_blocks_of_a_compound_packet():
    from toolkit.crafters.rtp import RtcpReceiverReport, RtcpReportBlock, RtcpSenderReport

    sr = RtcpSenderReport(ssrc=1, reports=[RtcpReportBlock(ssrc=0xAABBCCDD, packets_lost=3, highest_sequence=70000,
                                                           jitter=215)])
    rr = RtcpReceiverReport(ssrc=2, reports=[RtcpReportBlock(ssrc=7, highest_sequence=12), RtcpReportBlock(ssrc=8)])
    assert report_blocks(bytes(sr) + bytes(rr)) == [(0xAABBCCDD, 3, 70000), (7, 0, 12), (8, 0, 0)]
    assert report_blocks(bytes(rr)[:-5]) == [(7, 0, 12)]  # a truncated block ends the walk


def test_a_report_counts_a_sequence_number_across_the_wrap():
    report = Sign("report", "", "main", highest_sequence=(1 << 16) + 2)  # one cycle, then sequence 2
    assert counts_sequence(report, 65534)
    assert counts_sequence(report, 2)
    assert not counts_sequence(report, 3)
    assert not counts_sequence(Sign("consent", "", "main"), 1)


# -- headers ----------------------------------------------------------------------------------


def test_header_arguments_are_parsed_and_errors_never_show_the_value():
    assert http_header("Authorization: Bearer abc") == ("Authorization", "Bearer abc")
    assert http_header("X-Key:v") == ("X-Key", "v")
    for bad in (f"Authorization {AUTHORIZATION}", f"Bad Name: {SECRET}", f"X-Key: {SECRET}\r\nX-Evil: 1",
                "X-Key:   ", f": {SECRET}"):
        with pytest.raises(argparse.ArgumentTypeError) as caught:
            http_header(bad)
        assert SECRET not in str(caught.value)


def test_headers_go_with_http_targets_only_and_replays_name_them_without_values():
    target = make_target(whip="http://127.0.0.1:9/whip", headers=[("Authorization", AUTHORIZATION)])
    assert target.headers == {"Authorization": AUTHORIZATION}
    assert target.replay_args == ["--whip", "http://127.0.0.1:9/whip", "--header", "Authorization: …"]
    calls = make_target(calls_url="http://127.0.0.1:9/calls", headers=[("X-Key", SECRET)])
    assert isinstance(calls, CallsTarget) and calls.replay_args[-2:] == ["--header", "X-Key: …"]
    with pytest.raises(TargetError, match="--header goes with --whip or --calls-url"):
        make_target(reference=True, headers=[("X-Key", SECRET)])


def test_check_rejects_a_malformed_header_in_one_line_with_exit_2():
    done = rtcgate("--whip", "http://127.0.0.1:9/whip", "--header", f"Authorization {AUTHORIZATION}", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("a header must be 'Name: value' (its value is not shown here)")
    assert SECRET not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


class AuthProxy:
    """A WHIP proxy on loopback in front of the reference server: answers 401 to any request
    without the bearer token, forwards the others, and records (method, authorized) of each."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, bool]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        authorized = request.headers.get("Authorization") == AUTHORIZATION
        self.requests.append((request.method, authorized))
        if not authorized:
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        headers = {name: value for name, value in request.headers.items()
                   if name.lower() in ("content-type", "if-match")}
        async with ClientSession() as client:
            async with client.request(request.method, self.upstream + request.path_qs, data=await request.read(),
                                      headers=headers) as reply:
                body = await reply.read()
                kept = {name: value for name, value in reply.headers.items()
                        if name.lower() in ("content-type", "location", "etag")}
                return web.Response(status=reply.status, body=body, headers=kept)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.url = await serve_app(app)

    def __enter__(self) -> AuthProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def test_whip_target_sends_its_headers_on_post_patch_and_delete():
    server = start_server(media="echo")
    try:
        with AuthProxy(server.http_url) as proxy:
            async def play() -> None:
                from toolkit.peer import ProbePeer

                target = WhipTarget(proxy.url + "/whip", headers={"Authorization": AUTHORIZATION})
                answer, location = await target.offer(ProbePeer().create_offer(), timeout=10)
                assert "a=ice-ufrag" in answer and location.startswith(proxy.url)
                await target.restart(location, "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", timeout=10)
                await target.close(location, timeout=10)

            asyncio.run(play())
            assert proxy.requests == [("POST", True), ("PATCH", True), ("DELETE", True)]
    finally:
        server.stop()


def test_the_pytest_plugin_sends_rtc_header_and_keeps_it_out_of_the_junit_report(pytester):
    server = start_server(media="echo")
    try:
        with AuthProxy(server.http_url) as proxy:
            result = pytester.runpytest_subprocess("--rtc-whip", proxy.url + "/whip", "--rtc-header",
                                                   f"Authorization: {AUTHORIZATION}", "--rtc-only", "STUN-01",
                                                   "--junitxml=out.xml", "-p", "no:cacheprovider")
            requests = list(proxy.requests)
    finally:
        server.stop()
    result.assert_outcomes(passed=3)  # sanity before, STUN-01, sanity after
    assert requests and all(authorized for _, authorized in requests), requests
    junit = (pytester.path / "out.xml").read_text()
    assert SECRET not in junit
    assert "Authorization: …" in junit  # the replay property names the header
    bad = pytester.runpytest_subprocess("--rtc-whip", proxy.url, "--rtc-header", f"Authorization {AUTHORIZATION}",
                                        "-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert SECRET not in "\n".join(bad.outlines + bad.errlines)


# -- end to end ---------------------------------------------------------------------------------

VOICE_SUBSET = ("DEMUX-01", "DEMUX-04", "DEMUX-07", "STUN-02", "STUN-03", "ICE-07", "SRTP-02", "DC-03", "VOICE-01",
                "VOICE-02", "VOICE-03", "VOICE-04", "VOICE-05", "PERF-01", "PERF-04")


def test_a_voice_target_behind_authentication_is_gated_and_no_report_holds_the_secret(tmp_path):
    """The default `rtcgate serve` (voice) behind a bearer-token proxy: exit 0; the run says the
    target does not echo; checks that only an echo can judge SKIP saying why, the others PASS (judged
    through consent answers and RTCP reports); every WHIP request
    (POST, PATCH for ICE-07, DELETE) carried the header; no report file holds the secret."""
    server = start_server(media="voice")
    try:
        with AuthProxy(server.http_url) as proxy:
            done = rtcgate("--whip", proxy.url + "/whip", "--header", f"Authorization: {AUTHORIZATION}",
                           "--only", *VOICE_SUBSET, "--seed", "3", "--report-dir", str(tmp_path))
            requests = list(proxy.requests)
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "target echoes: no" in done.stdout
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    assert report["target_echoes"] is False
    statuses = {result["id"]: (result["status"], result["message"]) for result in report["results"]}
    for check_id in ("DEMUX-01", "DEMUX-04", "DEMUX-07", "STUN-03", "ICE-07", "SRTP-02", "DC-03", "VOICE-01", "VOICE-02",
                     "VOICE-03", "VOICE-04", "VOICE-05", "PERF-04"):
        assert statuses[check_id][0] == "PASS", (check_id, statuses[check_id])
    for check_id in ("STUN-02", "PERF-01"):
        status, message = statuses[check_id]
        assert status == "SKIP" and "does not echo" in message, (check_id, statuses[check_id])
    assert any("RTCP report on our stream counts" in note for result in report["results"]
               if result["id"] == "DEMUX-01" for note in result["notes"])
    assert "target echoes: no" in " ".join(report["sanity"][0]["notes"])
    assert 'name="target_echoes" value="no"' in (tmp_path / "rtcgate-junit.xml").read_text()
    assert {method for method, _ in requests} >= {"POST", "PATCH", "DELETE"}
    assert [request for request in requests if not request[1]] == []
    assert all("--header 'Authorization: …'" in result["replay"] for result in report["results"])
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in done.stdout + done.stderr


def test_an_echo_target_by_url_runs_the_echo_checks(tmp_path):
    server = start_server(media="echo")
    try:
        done = rtcgate("--whip", server.whip_url, "--only", "DEMUX-04", "STUN-02", "SRTP-02", "DEMUX-01",
                       "--seed", "3", "--report-dir", str(tmp_path))
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "rtcgate.json").read_text())
    assert report["target_echoes"] is True
    assert report["summary"] == {"PASS": 4}


def test_expect_echo_stops_the_run_against_a_voice_target(tmp_path):
    server = start_server(media="voice")
    try:
        done = rtcgate("--whip", server.whip_url, "--expect-echo", "--only", "STUN-01", "--report-dir", str(tmp_path),
                       timeout=120)
    finally:
        server.stop()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no echo of session main's media" in done.stderr


def test_a_target_without_echo_or_sign_of_life_fails_sanity(monkeypatch):
    """A target that connects, then neither echoes nor shows any sign of life (here: the signs are
    hidden from the step) is not taken for a voice target: the first sanity conversation fails."""
    import toolkit.conformance.steps as steps
    from toolkit.conformance.checks import SANITY
    from toolkit.conformance.model import Settings, Status
    from toolkit.conformance.runner import run_check
    from toolkit.conformance.targets import ReferenceTarget

    async def no_sign(*args, **kwargs):
        return None

    monkeypatch.setattr(steps, "wait_for_sign", no_sign)
    monkeypatch.setattr(steps, "signs_since", lambda session, since: [])
    with ReferenceTarget(media="voice") as target:
        result = asyncio.run(run_check(target, SANITY, Settings(reply_timeout=0.5, report_timeout=0.5)))
    assert result.status is Status.FAIL
    assert "no sign of life" in result.message
    assert target.echoes is None


# -- not blind: zoo variants in voice mode --------------------------------------------------------

VOICE_ZOO = (
    ("packets-behind-window-accepted", "SRTP-03", "FAIL"),  # the old packet's replay lowers the loss again
    ("replay-not-checked", "SRTP-03", "FAIL"),  # the report's cumulative loss drops by one
    ("garbage-ends-session", "DEMUX-02", "FAIL"),  # judged by consent answers: the session is gone
    ("use-candidate-after-integrity", "STUN-06", "FAIL"),  # the target's RTCP report went to the other socket
    ("client-hello-resets-session", "DTLS-07", "FAIL"),  # no RTCP report counts our media any more
    ("crash-on-malformed-rtcp", "SRTP-08", "FAIL"),
    ("srtp-tag-not-checked", "SRTP-02", "FAIL"),  # the report counts the forged packet
    ("auth-failure-burns-index", "SRTP-02", "FAIL"),  # the report counts the originals as lost
    ("plain-rtp-fallback", "SRTP-06", "FAIL"),
    ("rollover-counter-stuck", "SRTP-04", "FAIL"),  # no report counts the packets past the wrap
    ("crash-on-runt-srtp", "SRTP-05", "FAIL"),
    ("rtp-rtcp-by-trial-decryption", "DEMUX-07", "FAIL"),  # the report counts RTP with second byte 200
    ("rtcp-range-unbounded", "DEMUX-04", "FAIL"),  # no report counts RTP with second byte 239
    ("media-refreshes-consent", "ICE-06", "FAIL"),  # still answers a check past the consent timeout
    ("rollover-guess-ignores-reordering", "SRTP-10", "FAIL"),  # the report counts packets across the wrap lost
    ("binds-before-integrity", "STUN-02", "SKIP"),  # only an echo shows which address media is taken from
)
"""(variant, check, verdict); the longest first (SRTP-03 waits out four RTCP report intervals), so
the last lane to finish is not the one that started last."""
VOICE_LANES = 8
"""Variants played at once: each mostly waits for the server's RTCP reports (every 5 s), so the
probe and 8 servers use a fraction of one core; starting many more at once makes start-up slow."""


def test_zoo_variants_in_voice_mode_fail_or_skip_never_pass():
    """A bug variant serving the voice loop (no echo): the first sanity conversation learns that,
    then the check FAILs through what a voice target shows, or SKIPs when only an echo would tell."""
    from tests.zoo import variants
    from toolkit.conformance.checks import BY_ID, SANITY
    from toolkit.conformance.model import Level, Settings, Status
    from toolkit.conformance.runner import run_check
    from toolkit.conformance.targets import ReferenceTarget

    hardened = Settings(seed=1, strict=Level.POLICY)  # POLICY bugs FAIL too, as in the zoo
    zoo = variants()
    assert all(check_id in zoo[name].checks for name, check_id, _ in VOICE_ZOO)

    async def play(name: str, check_id: str):
        target = ReferenceTarget(media="voice", command=[sys.executable, "-m", "tests.zoo.serve", name])
        await asyncio.to_thread(target.start)
        try:
            sanity = await run_check(target, SANITY, hardened)
            return sanity, target.echoes, await run_check(target, BY_ID[check_id], hardened)
        finally:
            await asyncio.to_thread(target.stop)

    async def all_of_them():
        lanes = asyncio.Semaphore(VOICE_LANES)

        async def one(name: str, check_id: str):
            async with lanes:
                return await play(name, check_id)

        return await asyncio.gather(*(one(name, check_id) for name, check_id, _ in VOICE_ZOO))

    for (name, check_id, expected), (sanity, echoes, result) in zip(VOICE_ZOO, asyncio.run(all_of_them())):
        assert sanity.status is Status.PASS and echoes is False, (name, sanity.message)
        assert result.status.value == expected, (name, check_id, result.status, result.message)
        if expected == "SKIP":
            assert "does not echo" in result.message
