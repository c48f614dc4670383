"""A private network namespace with one non-loopback interface carrying 127.0.0.2.

Janus (through libnice) never gathers a candidate on a loopback interface, so on a loopback-
only machine it has nothing to offer. Inside a namespace of its own a veth pair can carry a
127.0.0.0/8 address that libnice does gather, while `route_localnet` and `accept_local` let
the kernel deliver those packets locally; nothing leaves the namespace, which has no link to
the outside. Janus, its WHIP shim and the peer that talks to it all run inside it
(`namespace.run_prefix + command`).

`network_namespace()` creates it (a unique name), yields a `Namespace`, and deletes it on the
way out, failure or not; the processes started in it must be stopped by their owner before.
Anything that goes wrong becomes a `NamespaceError` with the failing command and its message.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

ADDRESS = "127.0.0.2"
PREFIX_LENGTH = 8
VETH = ("rtcgate0", "rtcgate1")
SYSCTLS = ("net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf.all.accept_local=1")
COMMAND_TIMEOUT = 30.0


class NamespaceError(RuntimeError):
    """The namespace could not be made (no root, no `ip`, no veth support...)."""


@dataclass(frozen=True)
class Namespace:
    name: str
    address: str = ADDRESS

    @property
    def run_prefix(self) -> list[str]:
        """Prepend to a command to run it inside the namespace."""
        return ["ip", "netns", "exec", self.name]


def _ip(*args: str) -> None:
    command = ["ip", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NamespaceError(f"`{' '.join(command)}` did not run: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise NamespaceError(f"`{' '.join(command)}` failed: {reason[-1] if reason else f'exit {done.returncode}'}")


def setup_commands(name: str) -> list[list[str]]:
    """The `ip` commands that build the namespace, in order (also printed for running by hand)."""
    inside = ["-n", name]
    return [
        ["netns", "add", name],
        [*inside, "link", "set", "lo", "up"],
        [*inside, "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1]],
        [*inside, "addr", "add", f"{ADDRESS}/{PREFIX_LENGTH}", "dev", VETH[0]],
        [*inside, "link", "set", VETH[0], "up"],
        [*inside, "link", "set", VETH[1], "up"],
        *(["netns", "exec", name, "sysctl", "-q", "-w", setting] for setting in SYSCTLS),
    ]


@contextmanager
def network_namespace() -> Iterator[Namespace]:
    """Create the namespace, yield it, delete it (even when the body or the setup fails)."""
    name = f"rtcgate-{os.getpid()}-{secrets.token_hex(3)}"
    created = False
    try:
        for args in setup_commands(name):
            _ip(*args)
            created = True
        yield Namespace(name)
    finally:
        if created:
            _ip("netns", "del", name)
