"""GStreamer webrtcbin (libnice, OpenSSL) in the interop matrix: the same scenario as
toolkit/interop/js/scenario.mjs, written for webrtcbin.

Run with the system Python, which has `gi` (PyGObject) and GStreamer's typelibs; stdlib only,
and its neighbour scenario_record.py (shared with the aiortc client):
`/usr/bin/python3 webrtcbin_client.py CONFIG.json`. The report goes to config["report"].

Microphone: an appsrc fed 20 ms of the driver's PCM at a time on an absolute schedule (silence
until the script starts) → opusenc → rtpopuspay → webrtcbin. Ear: webrtcbin's src pad →
rtpopusdepay → opusdec → appsink (48 kHz mono S16LE), kept while listening. Packets are counted
by probes on webrtcbin's pads. The GLib main loop runs in the main thread; the scenario runs in
a worker thread and waits on what the signal handlers report.

webrtcbin 1.22 cannot restart ICE: its offers take no ice-restart option and keep the
session's credentials, so the restart step is reported as unsupported.
"""
from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from urllib.parse import urljoin

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

# This file's neighbour, found beside it (see the module docstring).
from scenario_record import (  # noqa: E402
    BINARY_MESSAGE,
    CONNECT_TIMEOUT,
    DATACHANNEL_MESSAGES,
    Deadline,
    describe_message,
    event_entry,
    now_ms,
)

FRAME_SAMPLES = 960
FRAME_BYTES = 2 * FRAME_SAMPLES
RESTART_REASON = ("webrtcbin 1.22 has no ICE restart: create-offer takes no ice-restart option and a new offer "
                  "keeps the session's ICE credentials")
PIPELINE = (
    "webrtcbin name=w bundle-policy=max-bundle "
    "appsrc name=mic is-live=true format=time do-timestamp=true "
    "caps=audio/x-raw,format=S16LE,rate=48000,channels=1,layout=interleaved ! "
    "audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! "
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! w."
)


def until(seconds: float, what: str, predicate, every: float = 0.01):
    deadline = Deadline(seconds, what)
    while not (value := predicate()):
        deadline.check()
        time.sleep(every)
    return value


def body_excerpt(body: str) -> str:
    """The first line of an HTTP error body that says something, HTML tags dropped, at most 200
    characters: toolkit/peer/shell/whip.py's body_excerpt (this script runs outside the toolkit)."""
    for line in re.sub(r"<[^>]*>", " ", body).splitlines():
        text = " ".join(line.split())
        if text:
            return text if len(text) <= 200 else text[:199] + "…"
    return ""


def http(method: str, url: str, body: str | None, content_type: str | None) -> tuple[int, str, dict]:
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


def wait_promise(promise: Gst.Promise, what: str, seconds: float = 5.0) -> Gst.Structure | None:
    deadline = time.monotonic() + seconds
    while promise.wait() == Gst.PromiseResult.PENDING:  # wait() blocks; the loop guards spurious returns
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: no reply within {seconds:g} s")
    return promise.get_reply()


class Phase:
    """One webrtcbin session: pipeline, microphone, ear, data channel, states and counters."""

    def __init__(self, pcm: bytes, label: str) -> None:
        self.pipeline = Gst.parse_launch(PIPELINE)
        self.webrtc = self.pipeline.get_by_name("w")
        self.mic = self.pipeline.get_by_name("mic")
        self.pcm = pcm
        self.label = label
        self.playing = False
        self.listening = False
        self.heard = bytearray()
        self.packets_sent = 0
        self.packets_received = 0
        self.channel = None
        self.messages: list[tuple[int, str | bytes]] = []
        self.opened: int | None = None
        self.negotiation = threading.Event()
        self.stop_feeding = threading.Event()
        # libnice leaves loopback out; the agent must stay referenced or PyGObject frees it.
        self.agent = self.webrtc.get_property("ice-agent")
        self.agent.emit("add-local-ip-address", "127.0.0.1")
        self.webrtc.connect("on-negotiation-needed", self._on_negotiation_needed)
        self.webrtc.connect("pad-added", self._on_pad_added)
        self.feeder = threading.Thread(target=self._feed, daemon=True)

    def start(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)
        for pad in self.webrtc.sinkpads:
            pad.add_probe(Gst.PadProbeType.BUFFER, self._count_sent)
        self.feeder.start()

    def close(self) -> None:
        self.stop_feeding.set()
        self.pipeline.set_state(Gst.State.NULL)

    # -- signal handlers (streaming threads)

    def _on_negotiation_needed(self, element) -> None:
        channel = element.emit("create-data-channel", self.label, None)
        if channel is not None:
            self._watch_channel(channel)
        self.negotiation.set()

    def _watch_channel(self, channel) -> None:
        self.channel = channel
        channel.connect("on-open", lambda c: setattr(self, "opened", now_ms()))
        channel.connect("on-message-string", lambda c, text: self.messages.append((now_ms(), text)))
        channel.connect("on-message-data", lambda c, data: self.messages.append((now_ms(), bytes(data.get_data()))))

    def _count_sent(self, pad, info):
        self.packets_sent += 1
        return Gst.PadProbeReturn.OK

    def _count_received(self, pad, info):
        self.packets_received += 1
        return Gst.PadProbeReturn.OK

    def _on_pad_added(self, element, pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        pad.add_probe(Gst.PadProbeType.BUFFER, self._count_received)
        ear = Gst.parse_bin_from_description(
            "rtpopusdepay ! opusdec ! audioconvert ! audioresample ! "
            "audio/x-raw,format=S16LE,rate=48000,channels=1 ! appsink name=ear emit-signals=true sync=false", True)
        self.pipeline.add(ear)
        ear.get_by_name("ear").connect("new-sample", self._on_sample)
        ear.sync_state_with_parent()
        pad.link(ear.get_static_pad("sink"))

    def _on_sample(self, sink) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if self.listening:
            buffer = sample.get_buffer()
            ok, info = buffer.map(Gst.MapFlags.READ)
            if ok:
                self.heard += bytes(info.data)
                buffer.unmap(info)
        return Gst.FlowReturn.OK

    def _feed(self) -> None:
        """20 ms of PCM at a time on an absolute schedule: silence until playing, then the script."""
        start = time.monotonic()
        offset = 0
        frame = 0
        silence = bytes(FRAME_BYTES)
        while not self.stop_feeding.is_set():
            chunk = silence
            if self.playing and offset + FRAME_BYTES <= len(self.pcm):
                chunk = self.pcm[offset:offset + FRAME_BYTES]
                offset += FRAME_BYTES
            self.mic.emit("push-buffer", Gst.Buffer.new_wrapped(chunk))
            frame += 1
            delay = start + frame * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    # -- what the scenario asks

    def ice_state(self) -> str:
        return self.webrtc.get_property("ice-connection-state").value_nick

    def connection_state(self) -> str:
        return self.webrtc.get_property("connection-state").value_nick

    def dtls_state(self) -> str | None:
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transport = transceiver.get_property("receiver").get_property("transport") if transceiver else None
        return transport.get_property("state").value_nick if transport else None

    def local_sdp(self) -> str:
        return self.webrtc.get_property("local-description").sdp.as_text()


def watch_states(phase: Phase, record: dict, stop: threading.Event) -> threading.Thread:
    record["states"] = {"ice": [], "connection": []}

    def seen(name: str, value: str) -> None:
        entries = record["states"][name]
        if not entries or entries[-1]["state"] != value:
            entries.append({"state": value, "t": now_ms()})

    def run() -> None:
        while not stop.is_set():
            seen("ice", phase.ice_state())
            seen("connection", phase.connection_state())
            time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def connect(phase: Phase, url: str, record: dict) -> str:
    """Offer, WHIP POST, answer, and wait for ICE and DTLS; returns the WHIP resource URL."""
    if not phase.negotiation.wait(10):
        raise TimeoutError("on-negotiation-needed: not within 10000 ms")
    promise = Gst.Promise.new()
    phase.webrtc.emit("create-offer", None, promise)
    reply = wait_promise(promise, "create-offer")
    if reply is None or not reply.has_field("offer"):
        raise RuntimeError(f"create-offer returned no offer: {reply.to_string() if reply else None}")
    offer = reply.get_value("offer")
    promise = Gst.Promise.new()
    phase.webrtc.emit("set-local-description", offer, promise)
    wait_promise(promise, "set-local-description")
    until(5, "ICE gathering", lambda: phase.webrtc.get_property("ice-gathering-state").value_nick == "complete")
    record["offerReady"] = now_ms()
    record["offer"] = phase.local_sdp()
    record["posted"] = now_ms()
    status, answer, headers = http("POST", url, record["offer"], "application/sdp")
    record["answered"] = now_ms()
    record["whipStatus"] = status
    if status != 201:
        raise RuntimeError(f"WHIP POST answered {status}: {body_excerpt(answer)}")
    record["answer"] = answer
    ok, sdp = GstSdp.SDPMessage.new_from_text(answer)
    if ok != GstSdp.SDPResult.OK:
        raise RuntimeError(f"the answer does not parse as SDP ({ok})")
    promise = Gst.Promise.new()
    phase.webrtc.emit("set-remote-description",
                      GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp), promise)
    wait_promise(promise, "set-remote-description")
    record["answerApplied"] = now_ms()
    until(CONNECT_TIMEOUT, "ICE connected", lambda: phase.ice_state() in ("connected", "completed"))
    record["iceConnected"] = now_ms()
    until(CONNECT_TIMEOUT, "DTLS connected (connection-state connected)", lambda: phase.connection_state() == "connected")
    record["dtlsConnected"] = now_ms()
    return urljoin(url, headers.get("Location", ""))


def delete(resource: str | None, record: dict) -> None:
    if not resource:
        return
    try:
        record["deleteStatus"] = http("DELETE", resource, None, None)[0]
    except OSError as exc:
        record["deleteError"] = str(exc)


def echo_phase(config: dict) -> dict:
    record: dict = {"t0": now_ms()}
    with open(config["pcm"]["echo"], "rb") as source:
        phase = Phase(source.read(), "rtcgate-echo")
    stop = threading.Event()
    resource = None
    try:
        phase.start()
        watch_states(phase, record, stop)
        resource = connect(phase, config["echoUrl"], record)
        phase.playing = True
        record["micStarted"] = now_ms()
        until(10, "data channel open", lambda: phase.opened)
        record["dcOpen"] = phase.opened
        sent = [*DATACHANNEL_MESSAGES, BINARY_MESSAGE]
        record["datachannel"] = {"sent": [describe_message(m) for m in sent], "received": []}
        for message in DATACHANNEL_MESSAGES:
            phase.channel.emit("send-string", message)
        phase.channel.emit("send-data", GLib.Bytes.new(BINARY_MESSAGE))
        try:
            until(5, "data channel echo", lambda: len(phase.messages) >= len(sent))
        except TimeoutError as exc:
            record["datachannel"]["error"] = str(exc)
        record["datachannel"]["received"] = [describe_message(m) for _, m in phase.messages]
        if phase.messages:
            record["dcFirstEcho"] = phase.messages[0][0]
        try:
            until(5, "first audio packet back", lambda: phase.packets_received > 0)
            record["firstAudio"] = now_ms()
        except TimeoutError as exc:
            record["audioError"] = str(exc)
        time.sleep(config["warmupMs"] / 1000)
        phase.listening = True
        time.sleep(config["listenMs"] / 1000)
        phase.listening = False
        record["audio"] = {"pcm": base64.b64encode(bytes(phase.heard)).decode(), "sampleRate": 48000, "channels": 1,
                           "packetsSent": phase.packets_sent, "packetsReceived": phase.packets_received}
        record["transport"] = {"dtlsState": phase.dtls_state(), "iceState": phase.ice_state()}
        record["restart"] = {"supported": False, "reason": RESTART_REASON}
    except Exception:  # noqa: BLE001 — every failure goes into the report
        record["error"] = traceback.format_exc()
    finally:
        stop.set()
        record["finalStates"] = {"ice": phase.ice_state(), "connection": phase.connection_state()}
        delete(resource, record)
        phase.close()
    return record


def voice_phase(config: dict) -> dict:
    record: dict = {"t0": now_ms(), "events": []}
    with open(config["pcm"]["voice"], "rb") as source:
        phase = Phase(source.read(), "oai-events")
    stop = threading.Event()
    resource = None

    def types() -> list[str]:
        return [event["type"] for event in record["events"]]

    def on_event(channel, text: str) -> None:
        entry = event_entry(text)
        record["events"].append(entry)
        if entry["type"] == "response.created":
            phase.listening = True

    try:
        phase.start()
        watch_states(phase, record, stop)
        if not phase.negotiation.wait(10):
            raise TimeoutError("on-negotiation-needed: not within 10000 ms")
        phase.channel.connect("on-message-string", on_event)
        resource = connect(phase, config["voiceUrl"], record)
        until(10, "session.created", lambda: "session.created" in types())
        phase.playing = True
        record["micStarted"] = now_ms()
        until(config["voiceTurnMs"] / 1000, "response.done", lambda: "response.done" in types(), 0.02)
        time.sleep(config["lingerMs"] / 1000)
        phase.listening = False
        record["responseAudio"] = {"pcm": base64.b64encode(bytes(phase.heard)).decode(), "sampleRate": 48000,
                                   "channels": 1, "packetsSent": phase.packets_sent,
                                   "packetsReceived": phase.packets_received}
    except Exception:  # noqa: BLE001
        record["error"] = traceback.format_exc()
    finally:
        stop.set()
        delete(resource, record)
        phase.close()
    return record


def main() -> int:
    with open(sys.argv[1]) as source:
        config = json.load(source)
    Gst.init(None)
    loop = GLib.MainLoop()
    report: dict = {"client": f"GStreamer {Gst.version_string().split()[-1]}", "started": now_ms()}

    def scenario() -> None:
        try:
            if config.get("echoUrl"):
                report["echo"] = echo_phase(config)
            if config.get("voiceUrl"):
                report["voice"] = voice_phase(config)
        except Exception:  # noqa: BLE001
            report["error"] = traceback.format_exc()
        report["ended"] = now_ms()
        GLib.idle_add(loop.quit)

    threading.Thread(target=scenario, daemon=True).start()
    loop.run()
    with open(config["report"], "w") as out:
        json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
