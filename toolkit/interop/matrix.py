"""The interop matrix: each real client, one after another, against the reference server (or a
server given by URL), judged cell by cell.

By default the runner starts the reference server itself, in echo mode (the transport columns)
and in voice mode (the voice turn). Chromium (with --allow-loopback-in-peer-connection),
GStreamer and werift (with a loopback host candidate), aiortc (loopback only) and @roamhq/wrtc
(which checks 127.0.0.1 from this machine's own address) get servers on 127.0.0.1. Firefox
neither gathers a loopback candidate nor checks a remote one, so it gets servers bound to and
advertising this machine's non-loopback address (traffic to it never leaves the machine: Linux
routes it over `lo`).

While the clients run, `dumpcap` records the servers' UDP ports on `lo` (when it can: root and
Wireshark's dumpcap); the judge reads each session out of that capture by its ICE usernames.
"""
from __future__ import annotations

import asyncio
import ipaddress
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.conformance.targets import ReferenceTarget, TargetError
from toolkit.interop import audio, wire
from toolkit.interop.drivers import DRIVERS
from toolkit.interop.drivers.base import SCENARIO_PACING, ClientFailed, ClientMissing, Driver, Material, Targets
from toolkit.interop.judge import CELL_NAMES, FAIL, PASS, XFAIL, XPASS, Cell, Judgement, error_line, judge, usernames
from toolkit.peer import PeerError
from toolkit.peer.shell.whip import whip_reachable

CONSENT_TIMEOUT = 30.0  # the reference server's default: browsers check consent every few seconds


class MatrixSetupError(RuntimeError):
    """The matrix cannot run: a server does not start, a client name is unknown, no usable address."""


@dataclass
class ClientResult:
    name: str
    title: str
    stack: str
    version: str | None
    server: str  # which servers it ran against
    cells: dict[str, Cell] = field(default_factory=dict)
    timings: dict[str, float | None] = field(default_factory=dict)
    dtls: dict[str, str | None] = field(default_factory=dict)
    wire: dict[str, dict | None] = field(default_factory=dict)
    duration: float = 0.0
    error: str | None = None  # the client did not run or gave no report
    missing: str | None = None  # not installed: why, and how to install it
    workdir: str | None = None

    @property
    def green(self) -> bool:
        """Every cell the client supports passed (or failed as expected)."""
        return self.missing is None and all(cell.status not in (FAIL, XPASS) for cell in self.cells.values())

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "stack": self.stack, "version": self.version,
                "server": self.server, "green": self.green, "duration_s": round(self.duration, 2),
                "error": self.error, "missing": self.missing, "cells": {k: c.as_dict() for k, c in self.cells.items()},
                "timings_ms": self.timings, "dtls": self.dtls, "wire": self.wire, "artifacts": self.workdir}


@dataclass
class MatrixResult:
    clients: list[ClientResult]
    started: float
    duration: float
    servers: dict[str, str]
    capture: str | None
    capture_note: str | None

    @property
    def green(self) -> bool:
        return all(client.green for client in self.clients)

    @property
    def missing(self) -> list[ClientResult]:
        return [client for client in self.clients if client.missing]


def host_address() -> str:
    """A non-loopback IPv4 address of this machine (for clients that refuse loopback)."""
    ip = shutil.which("ip")
    if ip:
        output = subprocess.run([ip, "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                                text=True, timeout=10).stdout
        for line in output.splitlines():
            parts = line.split()
            if "inet" in parts:
                return parts[parts.index("inet") + 1].split("/")[0]
    raise MatrixSetupError("this machine has no non-loopback IPv4 address (Firefox needs one: "
                           "give one with --host-address)")


class ReferenceServer(ReferenceTarget):
    """`rtcgate serve` bound to (and so advertising) `host`, in echo or voice mode."""

    def __init__(self, host: str, media: str) -> None:
        super().__init__(consent_timeout=CONSENT_TIMEOUT, media=media, host=host)


class Servers:
    """The reference servers the chosen clients need, started on free ports, stopped together."""

    def __init__(self, loopback: bool, host: str | None) -> None:
        self.started: dict[tuple[str, str], ReferenceServer] = {}
        hosts = (["127.0.0.1"] if loopback else []) + ([host] if host else [])
        for address in hosts:
            for media in ("echo", "voice"):
                self.started[(address, media)] = ReferenceServer(address, media)

    def start(self) -> None:
        try:
            for server in self.started.values():
                server.start()
        except TargetError as exc:
            self.stop()
            raise MatrixSetupError(str(exc)) from None

    def stop(self) -> None:
        for server in self.started.values():
            server.stop()

    def targets(self, address: str) -> Targets:
        return Targets(self.started[(address, "echo")].whip_url, self.started[(address, "voice")].whip_url)

    def ports(self) -> list[int]:
        return [server.udp_port for server in self.started.values()]

    def describe(self) -> dict[str, str]:
        return {f"{media} on {address}": server.whip_url for (address, media), server in self.started.items()}


async def _reachable(urls: list[str]) -> None:
    """A given server that nothing answers at is a setup error, not a column of failed cells."""
    for url in urls:
        try:
            await whip_reachable(url)
        except PeerError as exc:
            raise MatrixSetupError(f"the WHIP server {url} cannot be reached: {exc}") from None


def _expected_failure(cells: dict[str, Cell], client: str, expected: dict[tuple[str, str], str]) -> None:
    for (name, cell_name), reason in expected.items():
        if name != client or cell_name not in cells:
            continue
        cell = cells[cell_name]
        if cell.status == FAIL:
            cells[cell_name] = Cell(XFAIL, f"expected to fail ({reason}): {cell.evidence}")
        elif cell.status == PASS:
            cells[cell_name] = Cell(XPASS, f"passed, but expected to fail ({reason}); remove the expectation: "
                                           f"{cell.evidence}")


async def run_matrix(clients: list[str], *, report_dir: Path, whip: str | None = None, voice_whip: str | None = None,
                     host: str | None = None, expected: dict[tuple[str, str], str] | None = None,
                     progress: Callable[[str], None] = print) -> MatrixResult:
    """Run `clients` (DRIVERS keys) in order and judge them. With `whip`, the clients go to that
    server (its echo mode serves the transport columns); `voice_whip` names a voice-mode server for
    the voice turn (without either URL the reference servers are started here)."""
    unknown = [name for name in clients if name not in DRIVERS]
    if unknown:
        raise MatrixSetupError(f"unknown client(s) {', '.join(unknown)}; known: {', '.join(DRIVERS)}")
    expected = expected or {}
    started = time.time()
    report_dir.mkdir(parents=True, exist_ok=True)
    workroot = report_dir / "interop"
    if workroot.exists():
        shutil.rmtree(workroot)
    workroot.mkdir()
    drivers: list[Driver] = [DRIVERS[name]() for name in clients]
    versions: dict[str, str | ClientMissing] = {}
    for driver in drivers:
        try:
            versions[driver.name] = await asyncio.to_thread(driver.version)
        except ClientMissing as exc:
            versions[driver.name] = exc
            progress(f"{driver.name}: not installed: {exc}")
    installed = [d for d in drivers if not isinstance(versions[d.name], ClientMissing)]
    material = Material.write(workroot / "material")

    servers = None
    if whip is None and voice_whip is None and installed:
        needs_host = any(d.needs_host_address for d in installed)
        address = host or (host_address() if needs_host else None)
        if address is not None:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise MatrixSetupError(f"--host-address {address!r} is not an IP address") from None
        servers = Servers(loopback=any(not d.needs_host_address for d in installed), host=address)
        progress(f"starting the reference server ({', '.join(sorted({a for a, _ in servers.started}))}; echo and voice)")
        servers.start()
        server_info = servers.describe()
    elif whip or voice_whip:
        if installed:
            await _reachable([url for url in (whip, voice_whip) if url])
        server_info = {"echo": whip or "(none)", "voice": voice_whip or "(none)"}
    else:
        server_info = {}

    capture_path = workroot / "interop.pcap"
    capture = wire.Capture(capture_path, servers.ports() if servers else None)
    capture_note = capture.available() if installed else "no client to capture"
    results: list[tuple[ClientResult, dict | None, Driver]] = []
    try:
        if capture_note is None:
            try:
                await capture.start()
            except wire.CaptureError as exc:
                capture_note = str(exc)
        if capture_note and installed:
            progress(f"no packet capture ({capture_note}); cells rest on what the clients report")
        for index, driver in enumerate(drivers, 1):
            version = versions[driver.name]
            if isinstance(version, ClientMissing):
                results.append((ClientResult(driver.name, driver.title, driver.stack, None, "–", missing=str(version)),
                                None, driver))
                continue
            if servers is not None:
                address = host_address_for(driver, servers)
                targets = servers.targets(address)
                where = f"reference server on {address}"
            else:
                targets = Targets(whip, voice_whip)
                where = "given server"
            result = ClientResult(driver.name, driver.title, driver.stack, version, where)
            workdir = workroot / driver.name
            workdir.mkdir()
            result.workdir = str(workdir)
            raw = None
            began = time.monotonic()
            progress(f"[{index}/{len(drivers)}] {driver.name} ({result.version}) against the {where} …")
            try:
                raw = await asyncio.wait_for(driver.session(targets, material, workdir), driver.deadline + 15)
            except ClientFailed as exc:
                result.error = str(exc)
            except TimeoutError:
                result.error = f"{driver.name} gave no report within {driver.deadline + 15:g} s"
            result.duration = time.monotonic() - began
            results.append((result, raw, driver))
            if result.error:
                progress(f"    {driver.name}: no report: {result.error.splitlines()[0]}")
    finally:
        await capture.stop()
        if servers is not None:
            servers.stop()

    datagrams = None
    if capture_note is None:
        try:
            datagrams = wire.read_pcap(capture_path)
        except (OSError, wire.CaptureError) as exc:
            capture_note = f"the capture cannot be read: {exc}"
    for result, raw, driver in results:
        if result.missing:
            continue
        judgement = _judge(result, raw, driver, datagrams, capture_note, echo=bool(whip or servers),
                           voice=bool(voice_whip or servers))
        result.cells, result.timings, result.dtls, result.wire = (judgement.cells, judgement.timings,
                                                                  judgement.dtls, judgement.wire)
        known = {(driver.name, cell): reason for cell, reason in driver.known_failures.items()}
        _expected_failure(result.cells, result.name, {**known, **expected})
        marks = " ".join(f"{name}={cell.status}" for name, cell in result.cells.items())
        progress(f"{result.name}: {'green' if result.green else 'NOT green'} ({result.duration:.1f} s): {marks}")
    return MatrixResult([r for r, _, _ in results], started, time.time() - started, server_info,
                        str(capture_path) if capture_note is None else None, capture_note)


def host_address_for(driver: Driver, servers: Servers) -> str:
    addresses = sorted({address for address, _ in servers.started})
    if driver.needs_host_address:
        return next(a for a in addresses if a != "127.0.0.1")
    return "127.0.0.1"


def _judge(result: ClientResult, raw: dict | None, driver: Driver, datagrams, capture_note: str | None,
           *, echo: bool, voice: bool) -> Judgement:
    if raw is None or raw.get("error") and "echo" not in raw and "voice" not in raw:
        reason = result.error or f"the client failed before any session: {error_line((raw or {}).get('error', ''))}"
        cells = {name: Cell(FAIL, reason) for name in CELL_NAMES}
        for name, why in driver.cannot.items():
            cells[name] = Cell("N/A", why)
        return Judgement(cells, {})
    sessions = {}
    for phase in ("echo", "voice"):
        before, after = usernames(raw.get(phase))
        sessions[phase] = (wire.session_evidence(datagrams, before, after)
                           if datagrams is not None and before else None)
    return judge(raw, cannot=driver.cannot, wire=sessions, wire_note=capture_note, tone_hz=audio.ECHO_TONE_HZ,
                 restart_listen_ms=SCENARIO_PACING["restartListenMs"], voice_expected=voice, echo_expected=echo)

