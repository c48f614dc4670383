"""Janus (Debian's 1.1 build) as a third-party conformance target: EchoTest, ICE-lite, behind the
WHIP shim in janus/, inside a network namespace the test makes (janus/netns.py says why).

First the arrangement is proved without the gate: Janus answers the probe peer's offer through
the shim with an ICE-lite answer whose only candidate is the namespace's 127.0.0.2, restarts
ICE on a WHIP PATCH, and a real aiortc offerer gets its tone and its data-channel message
echoed. Then the whole catalog runs against it (test_third_party.run_catalog), held to
expected/janus.txt.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.answerers.janus.janus_config import JanusNotInstalled, find_janus_libraries
from tests.answerers.janus.netns import ADDRESS, Namespace, NamespaceError, network_namespace
from tests.answerers.test_third_party import answerer, missing, run_catalog

pytestmark = pytest.mark.interop

JANUS_DIR = Path(__file__).parent / "janus"
CLIENT_TIMEOUT = 60.0
ECHO_SECONDS = 3.0
MIN_LOUD_FRAMES = 25
"""Half a second of the 20 ms tone frames back, out of the ~150 sent: Janus echoes, not drips."""


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    if shutil.which("ip") is None:
        missing("ip (iproute2) is not installed")
    with ExitStack() as stack:
        try:
            made = stack.enter_context(network_namespace())
        except NamespaceError as exc:
            missing(f"cannot make a network namespace (root and veth support needed): {exc}")
        yield made


@pytest.fixture
def janus_whip(namespace: Namespace, tmp_path: Path) -> Iterator[tuple[Namespace, str, Path]]:
    """Janus + shim running in the namespace: (namespace, WHIP URL, Janus's work folder)."""
    if shutil.which("janus") is None:
        missing("janus is not installed")
    try:
        find_janus_libraries()
    except JanusNotInstalled as exc:
        missing(str(exc))
    workdir = tmp_path / "janus"
    command = [*namespace.run_prefix, sys.executable, "-m", "tests.answerers.janus.janus_whip", "--workdir", str(workdir)]
    try:
        with answerer(command) as url:
            yield namespace, url, workdir
    finally:
        stop_leftover_janus(workdir / "janus.pid")


def stop_leftover_janus(pid_file: Path) -> None:
    """Janus is the launcher's child and dies with it; if it outlived it, end it by its PID."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, ValueError):
        return
    if command.endswith(b"janus"):
        os.kill(pid, signal.SIGKILL)


def in_namespace(namespace: Namespace, script: str, *args: str) -> dict:
    """Run one of janus/'s client scripts inside the namespace; its JSON line."""
    done = subprocess.run([*namespace.run_prefix, sys.executable, str(JANUS_DIR / script), *args],
                          capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def sdp_values(sdp: str, attribute: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in sdp.splitlines() if line.startswith(f"a={attribute}:")]


def test_janus_answers_the_probe_offer_as_an_ice_lite_agent_on_the_namespace_address(janus_whip):
    namespace, url, workdir = janus_whip
    result = in_namespace(namespace, "whip_exchange.py", url)
    answer = result["answer"]
    assert "a=ice-lite" in answer.splitlines(), answer
    candidates = [value.split() for value in sdp_values(answer, "candidate")]
    assert candidates, f"no candidate in the answer:\n{answer}"
    assert {(fields[2].lower(), fields[4], fields[7]) for fields in candidates} == {("udp", ADDRESS, "host")}, answer
    assert len({fields[5] for fields in candidates}) == 1, f"Janus bundles on one port:\n{answer}"
    assert set(sdp_values(answer, "setup")) <= {"active", "passive"}, answer
    assert result["location"].startswith(url + "/")
    # RFC 9725 §4.4.1 ICE restart: Janus renegotiated with the new credentials, new ones back.
    assert result["patch_status"] == 200, result["patch_body"]
    assert set(sdp_values(result["patch_body"], "ice-ufrag")) - set(sdp_values(answer, "ice-ufrag")), result["patch_body"]
    assert sdp_values(result["patch_body"], "candidate"), result["patch_body"]
    assert result["delete_status"] == 200
    # What the shim refuses: trickle ICE (RFC 9725 §4.3.1), a gone resource, an SDP that is no offer.
    assert result["trickle_status"] == 405, result["trickle_body"]
    assert result["second_delete_status"] == 404
    assert result["bad_post_status"] == 400 and result["bad_post_body"].startswith("cannot answer this offer: Janus error"), \
        result["bad_post_body"]
    log = (workdir / "janus.log").read_text()
    assert "ICE restart detected" in log
    # The project's configuration, not the system's: one plugin, one transport, ICE-lite.
    assert [line.split("'")[1] for line in log.splitlines() if "Loading plugin '" in line] == ["libjanus_echotest.so"]
    assert [line.split("'")[1] for line in log.splitlines() if "Loading transport plugin '" in line] == ["libjanus_http.so"]
    assert "Lite mode" in log


def test_an_aiortc_offerer_gets_its_tone_and_data_channel_message_echoed_by_janus(janus_whip):
    namespace, url, _ = janus_whip
    result = in_namespace(namespace, "aiortc_echo_client.py", url, "--seconds", str(ECHO_SECONDS))
    assert result["connection"] == "connected", result
    assert result["loud_frames"] >= MIN_LOUD_FRAMES, result
    assert result["datachannel_state"] == "open", result
    assert (result["datachannel_echo"] or "").endswith("rtcgate-janus-echo"), result
    assert result["delete_status"] == 200, result


def test_the_whole_catalog_runs_against_janus(janus_whip, tmp_path, record_property):
    namespace, url, _ = janus_whip
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    run_catalog("janus", ["janus", "EchoTest", "ICE-lite", f"netns {namespace.name}"], url, report_dir,
                record_property, run_prefix=namespace.run_prefix)
