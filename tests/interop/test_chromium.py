"""Headless Chromium (libwebrtc) publishes its fake microphone to the reference server over WHIP.

No browser driver (see tests/interop/chromium.py): the page does the WebRTC work and POSTs its
getStats() back, and the test judges that report.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.interop.chromium import run_page

pytestmark = pytest.mark.interop

PAGE = Path(__file__).with_name("chromium_page.html")
SESSION_TIMEOUT = 45.0  # the page bounds its own steps well inside this
MIN_PACKETS = 50  # the page listens for 3 s: ~150 packets at 20 ms


@pytest.mark.timeout(180)
def test_chromium_three_sessions_send_and_receive_audio(chromium, rtcgate_server, tmp_path):
    for attempt in range(3):
        report = asyncio.run(run_page(chromium, PAGE, {"whip": rtcgate_server.whip_url}, tmp_path / f"profile{attempt}",
                                      timeout=SESSION_TIMEOUT))
        context = f"session {attempt + 1}: {json.dumps(report, indent=1)}"
        assert "error" not in report, context
        transport = report["transport"]
        assert report["connectionState"] == "connected", context
        assert report["iceConnectionState"] in ("connected", "completed"), context
        assert transport["iceState"] in ("connected", "completed"), context
        assert transport["dtlsState"] == "connected", context
        assert transport["srtpCipher"], context
        assert transport["tlsVersion"], context
        pair = transport["selectedCandidatePair"]
        assert (pair["remote"]["address"], pair["remote"]["port"]) == ("127.0.0.1", rtcgate_server.udp_port), context
        assert report["outbound"]["packetsSent"] > MIN_PACKETS, context
        inbound = report["inbound"]
        assert inbound["packetsReceived"] > MIN_PACKETS, context
        assert inbound["totalSamplesReceived"] - inbound["concealedSamples"] > 0, context
        assert report["deleteStatus"] == 200, context
