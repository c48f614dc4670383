"""From one client's raw report (and the wire, when captured) to the matrix's cells.

Every client reports the same JSON (see toolkit/interop/js/scenario.mjs): an `echo` phase against
an echo-mode server and a `voice` phase against a voice-mode one. The judgement is the same for
all clients and rests on what can be checked, not on what a client claims:
- ICE: the client says connected, and the server answered its checks on the wire;
- DTLS: the client says connected, and the wire shows the handshake finished; the cell names the
  version, cipher suite and SRTP profile from the ServerHello;
- audio to server: the client sent RTP, and the server demonstrably got it (our tone came back
  from the echo, or the voice server heard our speech start);
- audio back: what the client heard (decoded PCM, or Opus payloads decoded here) is our tone;
- data channel: every message came back, in order, with its type, length and checksum;
- voice turn: speech started/stopped, a completed response, and audible response audio;
- ICE restart: the PATCH answered new credentials, the server answered checks carrying the new
  username on the wire, and media kept coming back afterwards.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

from toolkit.interop import audio
from toolkit.interop.wire import SessionWire

CELLS = (
    ("ice", "ICE connected"),
    ("dtls", "DTLS connected"),
    ("audio_to_server", "audio to server"),
    ("audio_back", "audio back"),
    ("datachannel", "data channel both ways"),
    ("voice_turn", "voice turn"),
    ("ice_restart", "ICE restart"),
)
CELL_NAMES = tuple(name for name, _ in CELLS)
PASS, FAIL, NOT_APPLICABLE, SKIP, XFAIL, XPASS = "PASS", "FAIL", "N/A", "SKIP", "XFAIL", "XPASS"
RESTART_MIN_SHARE = 0.5  # of the packets expected back in the listening window after a restart
RESPONSE_MIN_FRAMES = 10  # audible 20 ms frames of response audio (200 ms)


@dataclass
class Cell:
    status: str
    evidence: str

    def as_dict(self) -> dict:
        return {"status": self.status, "evidence": self.evidence}


@dataclass
class Judgement:
    cells: dict[str, Cell]
    timings: dict[str, float | None]
    dtls: dict[str, str | None] = field(default_factory=dict)
    wire: dict[str, dict | None] = field(default_factory=dict)


def heard_pcm(recording: dict | None):
    """The 48 kHz mono samples a client recorded: its PCM, or its Opus payloads decoded here."""
    if not recording:
        return None
    if recording.get("opus") is not None:
        return audio.decode_opus([base64.b64decode(p) for p in recording["opus"]])
    if recording.get("pcm") is not None:
        return audio.pcm_from_bytes(base64.b64decode(recording["pcm"]), int(recording.get("sampleRate") or 48000),
                                    int(recording.get("channels") or 1))
    return None


def _span(later, earlier) -> float | None:
    if later is None or earlier is None:
        return None
    return round(float(later) - float(earlier), 1)


def _failure(phase: dict | None, what: str) -> str:
    if phase is None:
        return f"{what}: the client reported no such phase"
    error = phase.get("error")
    return f"{what}: {error_line(error)}" if error else what


def error_line(error: str) -> str:
    """The line of a client's error report that says what went wrong: a Python traceback's last
    ('RuntimeError: WHIP POST answered 404: Not Found'), a JavaScript stack's first."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _username(phase: dict, offer_key: str = "offer", answer_key: str = "answer") -> str | None:
    def ufrag(sdp: str | None) -> str | None:
        for line in (sdp or "").splitlines():
            if line.startswith("a=ice-ufrag:"):
                return line.split(":", 1)[1].strip()
        return None
    client, server = ufrag(phase.get(offer_key)), ufrag(phase.get(answer_key))
    return f"{server}:{client}" if client and server else None


def usernames(phase: dict | None) -> tuple[str | None, str | None]:
    """The STUN USERNAMEs of a phase's checks: before, and after its ICE restart."""
    if not phase:
        return None, None
    restart = phase.get("restart") or {}
    after = None
    if restart.get("newLocal") and restart.get("newRemote"):
        after = f"{restart['newRemote']['ufrag']}:{restart['newLocal']['ufrag']}"
    return _username(phase), after


def judge(raw: dict, *, cannot: dict[str, str], wire: dict[str, SessionWire | None], wire_note: str | None,
          tone_hz: float, restart_listen_ms: float, voice_expected: bool, echo_expected: bool) -> Judgement:
    """`wire` maps "echo"/"voice" to the captured session (None when not found or not captured;
    `wire_note` says why there is no capture at all)."""
    echo, voice = raw.get("echo"), raw.get("voice")
    cells: dict[str, Cell] = {}
    echo_wire, voice_wire = wire.get("echo"), wire.get("voice")
    on_wire = wire_note is None

    def wire_missing(phase_wire: SessionWire | None) -> str | None:
        if not on_wire:
            return None
        if phase_wire is None or not phase_wire.checks:
            return "no check with this session's ICE username on the wire"
        return None

    # ---- transport: from the echo phase when there is one, else from the voice phase
    transport_phase, transport_wire = (echo, echo_wire) if echo_expected else (voice, voice_wire)
    if transport_phase is None or not (echo_expected or voice_expected):
        for name in ("ice", "dtls"):
            cells[name] = Cell(SKIP, "no server to connect to")
    else:
        cells["ice"] = _ice(transport_phase, transport_wire, on_wire, wire_missing(transport_wire))
        cells["dtls"] = _dtls(transport_phase, transport_wire, on_wire)

    if echo_expected:
        tone = _tone(echo, tone_hz)
        cells["audio_to_server"] = _audio_to_server(echo, voice, echo_wire, on_wire, tone, tone_hz)
        cells["audio_back"] = _audio_back(echo, tone, tone_hz)
        cells["datachannel"] = _datachannel(echo)
        if "ice_restart" in cannot:
            cells["ice_restart"] = Cell(NOT_APPLICABLE, cannot["ice_restart"])
        else:
            cells["ice_restart"] = _restart(echo, echo_wire, on_wire, restart_listen_ms)
    else:
        for name in ("audio_to_server", "audio_back", "datachannel", "ice_restart"):
            cells[name] = Cell(SKIP, "no echo-mode server given")
    if "voice_turn" in cannot:
        cells["voice_turn"] = Cell(NOT_APPLICABLE, cannot["voice_turn"])
    elif voice_expected:
        cells["voice_turn"] = _voice_turn(voice)
    else:
        cells["voice_turn"] = Cell(SKIP, "no voice-mode server given")

    judgement = Judgement(cells, _timings(transport_phase or {}, transport_wire))
    judgement.dtls = _dtls_parameters(transport_phase or {}, transport_wire)
    judgement.wire = {phase: (w.as_dict() if w else None) for phase, w in wire.items()}
    return judgement


def _ice(phase: dict, wire: SessionWire | None, on_wire: bool, missing: str | None) -> Cell:
    if not phase.get("iceConnected"):
        return Cell(FAIL, _failure(phase, "ICE never connected"))
    evidence = f"connected {_span(phase['iceConnected'], phase.get('answerApplied'))} ms after the answer"
    pair = (phase.get("transport") or {}).get("selectedPair")
    if pair:
        evidence += f"; pair {pair.get('local')} → {pair.get('remote')}"
    if on_wire:
        if missing:
            return Cell(FAIL, f"{evidence}, but {missing}")
        if not wire.successes:
            return Cell(FAIL, f"{evidence}, but the server answered none of its {wire.checks} checks on the wire")
        evidence += f"; server answered {wire.successes} of {wire.checks} checks ({', '.join(wire.tuples)})"
    return Cell(PASS, evidence)


def _dtls_parameters(phase: dict, wire: SessionWire | None) -> dict[str, str | None]:
    transport = phase.get("transport") or {}
    hello = wire.server_hello if wire else None
    return {"version": hello.version if hello else None,
            "cipher": hello.cipher if hello else transport.get("dtlsCipher"),
            "srtp_profile": hello.srtp_profile if hello else transport.get("srtpCipher"),
            "client_says_cipher": transport.get("dtlsCipher"), "client_says_srtp": transport.get("srtpCipher")}


def _dtls(phase: dict, wire: SessionWire | None, on_wire: bool) -> Cell:
    if not phase.get("dtlsConnected"):
        return Cell(FAIL, _failure(phase, "DTLS never connected"))
    parameters = _dtls_parameters(phase, wire)
    said = f"connected {_span(phase['dtlsConnected'], phase.get('iceConnected'))} ms after ICE"
    if on_wire:
        if wire is None or wire.server_hello is None:
            return Cell(FAIL, f"{said}, but no ServerHello of this session on the wire")
        if wire.handshake_done is None:
            return Cell(FAIL, f"{said}, but the wire shows no ChangeCipherSpec from both sides")
        named = f"{parameters['version']}, {parameters['cipher']}, {parameters['srtp_profile'] or 'no use_srtp'}"
        return Cell(PASS, f"{named} (ServerHello on the wire); {said}")
    named = ", ".join(v for v in (parameters["cipher"], parameters["srtp_profile"]) if v) or "cipher not reported"
    return Cell(PASS, f"{named} (as the client reports it; no capture); {said}")


def _tone(echo: dict | None, tone_hz: float) -> tuple[float, float] | None:
    """(dominant frequency, level) of what came back in the echo phase, or None."""
    try:
        pcm = heard_pcm((echo or {}).get("audio"))
    except audio.AudioError:
        return None
    if pcm is None or pcm.size < audio.FRAME_SAMPLES:
        return None
    return audio.dominant_frequency(pcm), audio.level_dbfs(pcm)


def _tone_matches(tone: tuple[float, float] | None, tone_hz: float) -> bool:
    return tone is not None and abs(tone[0] - tone_hz) <= audio.TONE_TOLERANCE_HZ and tone[1] > audio.AUDIBLE_DBFS


def _audio_to_server(echo: dict | None, voice: dict | None, wire: SessionWire | None, on_wire: bool,
                     tone: tuple[float, float] | None, tone_hz: float) -> Cell:
    recording = (echo or {}).get("audio") or {}
    sent = recording.get("packetsSent", 0)
    proofs = []
    if _tone_matches(tone, tone_hz):
        proofs.append(f"the echo returned our {tone_hz:g} Hz tone")
    speech = [e for e in (voice or {}).get("events", []) if e["type"] == "input_audio_buffer.speech_started"]
    if speech and voice.get("micStarted"):
        proofs.append(f"the voice server heard our speech start {_span(speech[0]['t'], voice['micStarted'])} ms "
                      "into the script")
    if not sent and not (on_wire and wire and wire.rtp_to_server):
        return Cell(FAIL, _failure(echo, "the client sent no RTP"))
    count = f"{wire.rtp_to_server} SRTP packets to the server on the wire" if on_wire and wire else f"{sent} RTP packets sent"
    if on_wire and wire and not wire.rtp_to_server:
        return Cell(FAIL, f"the client says it sent {sent} packets, but none reached the server's port on the wire")
    if not proofs:
        return Cell(FAIL, f"{count}, but nothing shows the server decoded them (no echo of our tone, no speech_started)")
    return Cell(PASS, f"{count}; " + "; ".join(proofs))


def _audio_back(echo: dict | None, tone: tuple[float, float] | None, tone_hz: float) -> Cell:
    recording = (echo or {}).get("audio")
    if recording is None:
        return Cell(FAIL, _failure(echo, "no audio came back"))
    received = recording.get("packetsReceived", 0)
    if tone is None:
        why = echo.get("audioError") or "the client heard no audio to analyse"
        return Cell(FAIL, f"{received} RTP packets received: {why}")
    frequency, level = tone
    heard = f"heard {frequency:.0f} Hz at {level:.1f} dBFS ({received} packets)"
    if not _tone_matches(tone, tone_hz):
        return Cell(FAIL, f"{heard}; expected our {tone_hz:g} Hz tone above {audio.AUDIBLE_DBFS:g} dBFS")
    return Cell(PASS, f"our {tone_hz:g} Hz tone came back: {heard}")


def _datachannel(echo: dict | None) -> Cell:
    channel = (echo or {}).get("datachannel")
    if channel is None:
        return Cell(FAIL, _failure(echo, "the data channel never opened"))
    sent, received = channel.get("sent", []), channel.get("received", [])
    kinds = ", ".join(f"{m['type']} {m['length']}" for m in sent)
    if received == sent:
        latency = _span(echo.get("dcFirstEcho"), echo.get("dcOpen"))
        return Cell(PASS, f"{len(sent)} messages ({kinds}) came back in order, type and checksum intact; "
                          f"first echo {latency} ms after open")
    missing = len(sent) - len(received)
    detail = channel.get("error") or (f"{missing} of {len(sent)} not echoed" if missing > 0 else "content differs")
    return Cell(FAIL, f"sent {kinds}; got back {len(received)}: {detail}")


def _voice_turn(voice: dict | None) -> Cell:
    if voice is None:
        return Cell(FAIL, "the client reported no voice phase")
    events = voice.get("events", [])
    types = [e["type"] for e in events]
    errors = [e for e in events if e["type"] == "error"]
    if errors:
        return Cell(FAIL, f"the server sent error events: {errors[:2]}")
    wanted = ("session.created", "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
              "response.created", "response.done")
    missing = [t for t in wanted if t not in types]
    if missing:
        return Cell(FAIL, _failure(voice, f"no {', '.join(missing)}"))
    done = next(e for e in events if e["type"] == "response.done")
    if done.get("status") != "completed":
        return Cell(FAIL, f"response.done with status {done.get('status')}")
    try:
        pcm = heard_pcm(voice.get("responseAudio"))
    except audio.AudioError as exc:
        return Cell(FAIL, f"response audio does not decode: {exc}")
    received = (voice.get("responseAudio") or {}).get("packetsReceived", 0)
    frames = audio.audible_frames(pcm) if pcm is not None else []
    stopped = next(e["t"] for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    turn = f"speech_stopped → response.done {_span(done['t'], stopped)} ms"
    if len(frames) < RESPONSE_MIN_FRAMES:
        return Cell(FAIL, f"{turn}, but only {len(frames) * 20} ms of audible response audio heard "
                          f"({received} packets)")
    tones = audio.frame_tones(pcm)
    top = ", ".join(f"{hz} Hz ×{n}" for hz, n in list(tones.items())[:3])
    return Cell(PASS, f"{turn}; heard {len(frames) * 20} ms of response audio ({top}; {received} packets)")


def _restart(echo: dict | None, wire: SessionWire | None, on_wire: bool, listen_ms: float) -> Cell:
    restart = (echo or {}).get("restart")
    if restart is None:
        return Cell(FAIL, _failure(echo, "the restart step was not reached"))
    if not restart.get("supported"):
        return Cell(NOT_APPLICABLE, restart.get("reason") or "the client cannot restart ICE")
    if restart.get("patchStatus") != 200:
        return Cell(FAIL, _failure(echo, f"WHIP PATCH answered {restart.get('patchStatus')}"))
    old_local, new_local = restart.get("oldLocal") or {}, restart.get("newLocal") or {}
    old_remote, new_remote = restart.get("oldRemote") or {}, restart.get("newRemote") or {}
    if not new_local.get("ufrag") or new_local.get("ufrag") == old_local.get("ufrag"):
        return Cell(FAIL, f"the restart offer kept ICE ufrag {old_local.get('ufrag')}")
    if not new_remote.get("ufrag") or new_remote.get("ufrag") == old_remote.get("ufrag"):
        return Cell(FAIL, f"the PATCH answer kept the server's ufrag {old_remote.get('ufrag')}")
    if "after" not in restart:
        return Cell(FAIL, _failure(echo, "the restart never completed"))
    # Media must keep flowing: back to the client, or (when nothing ever came back, a failure of
    # its own cell) out from it.
    direction = "back" if restart["before"].get("packetsReceived", 0) else "sent"
    key = "packetsReceived" if direction == "back" else "packetsSent"
    flowed = restart["after"].get(key, 0) - restart["before"].get(key, 0)
    expected = listen_ms / 20
    states = restart.get("states") or {}
    evidence = (f"PATCH 200 in {_span(restart.get('answered'), restart.get('patched'))} ms; "
                f"{flowed} packets {direction} in the {listen_ms / 1000:g} s after; ICE {states.get('ice')}")
    if states.get("connection") != "connected" or states.get("ice") not in ("connected", "completed"):
        return Cell(FAIL, f"{evidence}; not connected after the restart")
    if flowed < RESTART_MIN_SHARE * expected:
        return Cell(FAIL, f"{evidence}; expected about {expected:.0f}")
    if on_wire:
        if wire is None or not wire.restart_checks:
            return Cell(FAIL, f"{evidence}; but no check with the new username on the wire")
        if not wire.restart_successes:
            return Cell(FAIL, f"{evidence}; but the server answered none of the {wire.restart_checks} checks "
                              "with the new username")
        evidence += (f"; server answered {wire.restart_successes} of {wire.restart_checks} checks with the new "
                     f"username, first {_span(wire.first_restart_success * 1000, restart.get('patched'))} ms after "
                     "the PATCH")
    return Cell(PASS, evidence)


def _phase_span(later, earlier) -> float | None:
    """A span between two client-side moments; states are polled every 10 ms, so an event that
    fires before the polled state it follows would show as a small negative span: that is 0."""
    span = _span(later, earlier)
    return None if span is None else max(span, 0.0)


def _timings(phase: dict, wire: SessionWire | None) -> dict[str, float | None]:
    """Setup phases in ms, each from the end of the previous one. The client's clock, except for
    the first audio back, which the capture times from the end of the DTLS handshake on the wire."""
    if wire and wire.first_rtp_from_server and wire.handshake_done:
        first_audio = _span(wire.first_rtp_from_server * 1000, wire.handshake_done * 1000)
    else:
        first_audio = _phase_span(phase.get("firstAudio"), phase.get("dtlsConnected"))
    timings = {
        "offer": _phase_span(phase.get("offerReady"), phase.get("t0")),
        "whip": _phase_span(phase.get("answered"), phase.get("posted")),
        "ice": _phase_span(phase.get("iceConnected"), phase.get("answerApplied")),
        "dtls": _phase_span(phase.get("dtlsConnected"), phase.get("iceConnected")),
        "datachannel": _phase_span(phase.get("dcOpen"), phase.get("dtlsConnected")),
        "first_audio": first_audio,
        "total": _phase_span(phase.get("dtlsConnected"), phase.get("t0")),
    }
    if wire and wire.first_check and wire.first_success:
        timings["wire_ice"] = _span(wire.first_success * 1000, wire.first_check * 1000)
    if wire and wire.client_hello and wire.handshake_done:
        timings["wire_dtls"] = _span(wire.handshake_done * 1000, wire.client_hello * 1000)
    return timings
