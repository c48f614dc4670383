"""How each process of the reference server runs (the server, the relay, a worker): start,
print the one ready line tools and tests parse, wait for SIGINT or SIGTERM, stop, print a
stopped line. The event loop is uvloop's when uvloop is installed, asyncio's otherwise."""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, Protocol


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def format_host(host: str) -> str:
    """An IP address as it is written before `:port`: an IPv6 one in brackets."""
    return f"[{host}]" if ":" in host else host


async def serve_until_signalled(service: Service, ready_line: Callable[[], str], stopped_line: str) -> None:
    """Start `service`, print `ready_line()`, and stop it on the first SIGINT or SIGTERM."""
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the ready line: a signal right after it stops us cleanly
        loop.add_signal_handler(sig, stop.set)
    print(ready_line(), flush=True)
    try:
        await stop.wait()
    finally:
        await service.stop()
        print(stopped_line, flush=True)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to completion on a new event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
