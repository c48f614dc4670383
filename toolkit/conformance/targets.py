"""Targets: how a check gets a session from the server under test (its signaling adapter).

A target turns an SDP offer into an answer plus a handle for later restart and close. The
kinds: a WHIP endpoint (RFC 9725), a realtime-calls endpoint (POST an offer, get an answer),
a user's Python callable `module:function` (offer in, answer out, sync or async), and the
reference server, started as a child process on free loopback ports and stopped after.
The reference server is only ever *run* here, through its CLI, never imported: the judge
stays independent of the judged (docs/architecture.md, principle 3).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from toolkit.children import read_until_ready, start_child, stop_child
from toolkit.conformance.model import Address
from toolkit.peer import PeerError, whip_delete, whip_patch, whip_post


class TargetError(Exception):
    """The target cannot be used at all: a bad specification, or it cannot be started or reached."""


class Target:
    """Base class; subclasses implement `offer` and may implement `restart` and `close`."""

    kind = "target"
    can_restart = False
    remote_override: Address | None = None
    """Send to this address instead of the answer's candidates (a server behind NAT or in a container)."""
    consent_timeout: float | None = None
    """The target's consent timeout when known (the reference server is started with one)."""
    echoes: bool | None = None
    """Whether the target sends received media back (an echo server) or not (a realtime voice
    service answers with audio of its own). The run's first sanity conversation learns it
    (`steps.Alive`); until then, None, and checks judge by echoes as for an echo target."""
    reports: bool | None = None
    """For a target that does not echo: whether it reports on our stream in RTCP (RFC 3550 §6.4),
    which is then how a check sees that it still takes our media. Learned with `echoes`."""

    @property
    def description(self) -> str:
        raise NotImplementedError

    @property
    def replay_args(self) -> list[str]:
        """The `rtcgate check` arguments that reach this same target again."""
        raise NotImplementedError

    def start(self) -> None:
        """Make the target ready (start a process); raise TargetError if it cannot be."""

    def stop(self) -> None:
        """Undo `start`."""

    def __enter__(self) -> Target:
        """`with target:` starts it, and stops it however the block ends."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def for_profile(self, profile: str) -> Target:
        """The target that plays the checks of `profile`: this one, unless it serves that profile
        from another mode (the reference server answers `voice` checks from a voice-mode twin).
        The runner starts what this returns before each check, so it may be started lazily."""
        return self

    async def offer(self, sdp: str, *, timeout: float) -> tuple[str, object]:
        raise NotImplementedError

    async def restart(self, handle: object, sdpfrag: str, *, timeout: float) -> str | None:
        """Send an ICE restart fragment; return the answer fragment (None for 204)."""
        raise PeerError(f"{self.description} has no ICE restart")

    async def close(self, handle: object, *, timeout: float) -> None:
        """End the session at the target; nothing to do when the adapter has no close."""


class WhipTarget(Target):
    """A WHIP endpoint: POST the offer, DELETE the Location, PATCH it for an ICE restart."""

    kind = "whip"
    can_restart = True

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, remote: Address | None = None) -> None:
        if not re.match(r"https?://", url):
            raise TargetError(f"{url!r} is not an http:// or https:// URL")
        self.url = url
        self.headers = headers or {}
        """Sent on every request (POST, PATCH, DELETE): an Authorization (RFC 9725 §4.5), say. The
        values are secrets: they never leave this object but on the wire."""
        self.remote_override = remote

    @property
    def description(self) -> str:
        return f"WHIP {self.url}"

    @property
    def replay_args(self) -> list[str]:
        return ["--whip", self.url, *self.header_args]

    @property
    def header_args(self) -> list[str]:
        """The --header options, each value replaced by "…": the replay names the header, the user
        supplies the secret."""
        return [arg for name in self.headers for arg in ("--header", f"{name}: …")]

    async def offer(self, sdp: str, *, timeout: float) -> tuple[str, object]:
        return await whip_post(self.url, sdp, headers=self.headers, timeout=timeout)

    async def restart(self, handle: object, sdpfrag: str, *, timeout: float) -> str | None:
        if handle is None:
            raise PeerError(f"{self.description} gave no Location header, so there is nothing to PATCH")
        headers = {"If-Match": "*", **self.headers}  # RFC 9725 §4.4.1: an ICE restart matches any ETag
        status, body = await whip_patch(handle, sdpfrag, headers=headers, timeout=timeout)
        return None if status == 204 else body

    async def close(self, handle: object, *, timeout: float) -> None:
        if handle is not None:
            await whip_delete(handle, headers=self.headers, timeout=timeout)


class CallsTarget(WhipTarget):
    """A realtime-calls endpoint: the same POST as WHIP; restart and close only if it gives a Location."""

    kind = "calls"

    @property
    def description(self) -> str:
        return f"realtime-calls {self.url}"

    @property
    def replay_args(self) -> list[str]:
        return ["--calls-url", self.url, *self.header_args]


class CallableTarget(Target):
    """A user's `module:function` taking the offer SDP and returning the answer (sync or async)."""

    kind = "signaling"

    def __init__(self, spec: str) -> None:
        module_name, _, function_name = spec.partition(":")
        if not module_name or not function_name:
            raise TargetError(f"--signaling {spec!r} is not 'module:function'")
        self.spec = spec
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise TargetError(f"--signaling {spec}: cannot import {module_name}: {exc}") from None
        function = getattr(module, function_name, None)
        if not callable(function):
            raise TargetError(f"--signaling {spec}: {module_name} has no callable {function_name}")
        self.function: Callable[[str], str | Awaitable[str]] = function

    @property
    def description(self) -> str:
        return f"signaling callable {self.spec}"

    @property
    def replay_args(self) -> list[str]:
        return ["--signaling", self.spec]

    async def offer(self, sdp: str, *, timeout: float) -> tuple[str, object]:
        try:
            answer: Any = self.function(sdp)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:  # the user's code: report whatever it raised as a signaling failure
            raise PeerError(f"{self.spec} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, str):
            raise PeerError(f"{self.spec} returned {type(answer).__name__}, not the answer SDP as str")
        return answer, None


_READY_LINE = re.compile(r"listening udp=(?P<udp>\S+):(?P<port>\d+) http=(?P<http>\S+)")


class ReferenceTarget(Target):
    """The reference server as a child process (`rtcgate serve` on free ports), stopped after."""

    kind = "reference"
    can_restart = True

    def __init__(self, *, consent_timeout: float = 3.0, media: str = "echo", host: str = "127.0.0.1",
                 extra_hosts: Sequence[str] = (), start_timeout: float = 20.0,
                 command: Sequence[str] | None = None, dtls_role: str = "server") -> None:
        self.consent_timeout = consent_timeout
        self.dtls_role = dtls_role
        """The server's `--dtls-role`: "server" answers a=setup:passive, "client" answers active."""
        self.server_command = list(command) if command else [sys.executable, "-m", "toolkit.cli", "serve"]
        """What runs the server, before its `rtcgate serve` options (a faulty variant runs another)."""
        self.media = media
        """"echo" (the catalog's media checks need audio sent back) or "voice" (the realtime voice loop)."""
        self.host = host
        self.extra_hosts = tuple(extra_hosts)
        """More addresses the server listens on, same port (the other address family: IPv6 for STUN-10).
        The probe sends only to candidates of its socket's family, so checks from `host` stay on it."""
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self.http_url: str | None = None
        self.udp_port: int | None = None
        self._whip: WhipTarget | None = None
        self._starting = threading.Lock()
        self._twins: dict[str, ReferenceTarget] = {}

    @property
    def description(self) -> str:
        where = f" at {self.http_url}" if self.http_url else ""
        return f"reference server{where}"

    @property
    def replay_args(self) -> list[str]:
        return ["--reference"]

    @property
    def whip_url(self) -> str:
        if self.http_url is None:
            raise TargetError("the reference server is not started")
        return f"{self.http_url}/whip"

    def command(self) -> list[str]:
        """The command line that runs the server (a faulty variant may run another)."""
        return [
            *self.server_command, *[arg for host in (self.host, *self.extra_hosts) for arg in ("--host", host)],
            "--port", "0",
            "--http-port", "0", "--consent-timeout", f"{self.consent_timeout:g}", "--media", self.media,
            "--log-level", "warning", *(["--dtls-role", self.dtls_role] if self.dtls_role != "server" else []),
        ]

    def for_profile(self, profile: str) -> Target:
        """`voice` checks go to a twin in voice mode (same class and options), started on first use
        and stopped with this one; the other profiles need the echo this one gives."""
        media = "voice" if profile == "voice" else self.media
        if media == self.media:
            return self
        twin = self._twins.get(media)
        if twin is None:
            twin = copy.copy(self)
            twin.media = media
            twin.process, twin.output, twin.http_url, twin.udp_port, twin._whip = None, [], None, None, None
            twin.remote_override = None
            twin.echoes = media == "echo"
            twin._starting = threading.Lock()
            twin._twins = {}
            self._twins[media] = twin
        return twin

    def start(self) -> None:
        """Idempotent and thread-safe: the runner may warm a twin up in a thread while it runs checks."""
        with self._starting:
            if self.process is None:
                self._start()

    def _start(self) -> None:
        self.process = start_child(self.command())
        match = read_until_ready(self.process, _READY_LINE, self.start_timeout, self.output)
        if match is None:
            self.stop()
            raise TargetError("the reference server did not report its ports:\n" + "".join(self.output[-20:]))
        self.http_url = match["http"]
        self.udp_port = int(match["port"])
        self._whip = WhipTarget(self.whip_url)

    def stop(self) -> None:
        for twin in self._twins.values():
            twin.stop()
        process, self.process = self.process, None
        if process is None:
            return
        stop_child(process)
        self._whip = None

    def _adapter(self) -> WhipTarget:
        if self._whip is None:
            raise PeerError("the reference server is not running")
        return self._whip

    async def offer(self, sdp: str, *, timeout: float) -> tuple[str, object]:
        return await self._adapter().offer(sdp, timeout=timeout)

    async def restart(self, handle: object, sdpfrag: str, *, timeout: float) -> str | None:
        return await self._adapter().restart(handle, sdpfrag, timeout=timeout)

    async def close(self, handle: object, *, timeout: float) -> None:
        await self._adapter().close(handle, timeout=timeout)


def make_target(
    *,
    whip: str | None = None,
    calls_url: str | None = None,
    signaling: str | None = None,
    reference: bool = False,
    remote: Address | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Target:
    """Exactly one of the four target options; TargetError otherwise. `headers` go with every
    request of a WHIP or realtime-calls target."""
    given = [name for name, value in
             (("--whip", whip), ("--calls-url", calls_url), ("--signaling", signaling), ("--reference", reference))
             if value]
    if len(given) != 1:
        raise TargetError(
            "give exactly one target: --whip URL, --calls-url URL, --signaling module:function or --reference"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if headers and not (whip or calls_url):
        raise TargetError("--header goes with --whip or --calls-url: the other targets make no HTTP requests")
    if whip:
        return WhipTarget(whip, headers=dict(headers), remote=remote)
    if calls_url:
        return CallsTarget(calls_url, headers=dict(headers), remote=remote)
    if signaling:
        target = CallableTarget(signaling)
        target.remote_override = remote
        return target
    return ReferenceTarget(extra_hosts=("::1",) if ipv6_loopback() else ())


def ipv6_loopback() -> bool:
    """Whether this machine can bind ::1 (containers often have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
