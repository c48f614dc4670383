"""What every client driver shares: the targets, the audio material, the scenario's pacing, and
running a client program in its own process group with a bounded wait.

A driver knows three things about its client: whether it is installed (`version()`), how to
launch it against the targets (`session()` returns the client's raw report, the same JSON shape
for every client: see toolkit/interop/js/scenario.mjs), and what it cannot do (`cannot`, cell
name → reason). Judging the report is the same for all of them (toolkit/interop/judge.py).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.interop import audio

SCENARIO_PACING = {
    "warmupMs": 500,  # after the first packet back, before listening: jitter buffers settle
    "listenMs": 1500,  # how much of the echo is recorded
    "restartListenMs": 2000,  # media must keep flowing this long after the restart answer is applied
    "voiceTurnMs": 12000,  # from the microphone's start to response.done
    "lingerMs": 300,  # after response.done, so the last packets are heard
}
ECHO_SECONDS = 20.0  # longer than any echo phase: the tone never runs out


class ClientMissing(Exception):
    """The client is not installed here; the message says what is missing and how to install it."""


class ClientFailed(Exception):
    """The client ran but gave no report (crashed, hung, or was killed at its deadline)."""


@dataclass(frozen=True, slots=True)
class Targets:
    """WHIP URLs: an echo-mode server for the transport columns, a voice-mode one for the voice turn."""

    echo_url: str | None
    voice_url: str | None


@dataclass
class Material:
    """The audio each client sends, written once per run in every form a client takes."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def write(cls, directory: Path) -> Material:
        directory.mkdir(parents=True, exist_ok=True)
        material = cls(directory)
        for phase, pcm in (("echo", audio.echo_script(ECHO_SECONDS)), ("voice", audio.voice_script())):
            material.files[f"{phase}.wav"] = audio.write_wav(directory / f"{phase}.wav", pcm)
            material.files[f"{phase}.s16"] = audio.write_raw(directory / f"{phase}.s16", pcm)
            packets = audio.opus_packets(pcm)
            path = directory / f"{phase}.opus"
            path.write_bytes(b"".join(struct.pack("!H", len(p)) + p for p in packets))
            material.files[f"{phase}.opus"] = path
        return material

    def config(self, targets: Targets) -> dict:
        """The scenario's configuration as a client program reads it (JSON)."""
        return {"echoUrl": targets.echo_url, "voiceUrl": targets.voice_url, "toneHz": audio.ECHO_TONE_HZ,
                **SCENARIO_PACING,
                "wav": {p: str(self.files[f"{p}.wav"]) for p in ("echo", "voice")},
                "pcm": {p: str(self.files[f"{p}.s16"]) for p in ("echo", "voice")},
                "opus": {p: str(self.files[f"{p}.opus"]) for p in ("echo", "voice")}}


class Driver:
    """One real client. Subclasses set the class attributes and implement version() and session()."""

    name = ""  # the --clients key
    title = ""  # for reports
    stack = ""  # what the client's WebRTC is made of
    needs_host_address = False  # True: the server must advertise a non-loopback address of this machine
    cannot: dict[str, str] = {}  # cell → why this client cannot do it (not attempted: N/A)
    known_failures: dict[str, str] = {}  # cell → a defect of this client that makes it fail (XFAIL; XPASS once fixed)
    deadline = 90.0  # seconds for the whole client run, launch included

    def version(self) -> str:
        raise NotImplementedError

    async def session(self, targets: Targets, material: Material, workdir: Path) -> dict:
        raise NotImplementedError


def tool_version(command: list[str], missing: str) -> str:
    """The first line `command` prints, or ClientMissing(missing) when it cannot run."""
    if shutil.which(command[0]) is None and not os.access(command[0], os.X_OK):
        raise ClientMissing(missing)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClientMissing(f"{missing} ({exc})") from None
    output = (result.stdout or result.stderr).strip()
    if result.returncode != 0 or not output:
        raise ClientMissing(f"{missing} ({' '.join(command)} exited with {result.returncode}: {output[-200:]})")
    return output.splitlines()[0].strip()


def log_tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


async def stop_group(process: asyncio.subprocess.Process, grace: float = 2.0) -> None:
    """End a client we started, and its helpers, by its own process group (never by name)."""
    if process.returncode is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), grace)
    except (TimeoutError, ProcessLookupError):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await process.wait()


async def run_program(command: list[str], *, config: dict, workdir: Path, name: str, deadline: float,
                      env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run a client program that reads its configuration from argv[1] and writes its report to
    config["report"]; returns the report."""
    report = workdir / f"{name}.report.json"
    config = dict(config, report=str(report))
    config_path = workdir / f"{name}.config.json"
    config_path.write_text(json.dumps(config, indent=1))
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, str(config_path), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, env=env, cwd=cwd)
    try:
        await asyncio.wait_for(process.wait(), deadline)
    except TimeoutError:
        await stop_group(process)
        raise ClientFailed(f"{name} still running after {deadline:g} s; killed. Log tail:\n{log_tail(log_path)}") from None
    finally:
        await stop_group(process)
    if not report.exists():
        raise ClientFailed(f"{name} exited with {process.returncode} and wrote no report. Log tail:\n"
                           f"{log_tail(log_path)}")
    return json.loads(report.read_text())
