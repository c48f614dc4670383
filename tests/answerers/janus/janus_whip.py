"""Janus EchoTest behind a WHIP shim, as one answerer process like the others in tests/answerers.

It writes the project's Janus configuration (janus_config.py) into `--workdir`, starts
`janus -F <workdir>/config` with its log in `<workdir>/janus.log` and its PID in
`<workdir>/janus.pid`, waits until Janus's HTTP API answers, serves the WHIP shim
(whip_shim.py) and prints `janus-whip listening whip=http://HOST:PORT/whip`. On SIGTERM or
SIGINT it closes the WHIP sessions and stops Janus (its own child, by PID); Janus also gets
SIGTERM if this process dies first.

Janus gathers candidates on every non-loopback interface, so run this inside the network
namespace the tests make (netns.py), where the only such interface carries 127.0.0.2:
`ip netns exec NAME python -m tests.answerers.janus.janus_whip --workdir DIR`, from the checkout.
Exit 2 with one line on stderr when Janus is missing or does not come up.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.answerers.janus.janus_config import JanusNotInstalled, write_config
from tests.answerers.janus.whip_shim import JanusApi, WhipShim
from tests.answerers.whip_resource import served, until_signalled
from toolkit.children import stop_child

JANUS_START_TIMEOUT = 20.0
JANUS_STOP_TIMEOUT = 5.0
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in the Janus child before exec: Linux sends it SIGTERM when this process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_janus(binary: str, workdir: Path, host: str, janus_port: int) -> subprocess.Popen:
    config = write_config(workdir / "config", http_ip=host, http_port=janus_port).parent
    command = [binary, "-F", str(config), "-L", str(workdir / "janus.log"), "-p", str(workdir / "janus.pid"), "-N"]
    (workdir / "janus.command").write_text(" ".join(command) + "\n")
    with open(workdir / "janus.stderr", "w") as stderr:  # the child keeps its own copy
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                preexec_fn=die_with_parent)


async def wait_for_janus(api: JanusApi, janus: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + JANUS_START_TIMEOUT
    while time.monotonic() < deadline:
        if janus.poll() is not None:
            raise RuntimeError(f"janus exited with {janus.returncode} while starting; see {log}")
        try:
            return await api.info()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            await asyncio.sleep(0.2)
    raise RuntimeError(f"janus's HTTP API did not answer within {JANUS_START_TIMEOUT:g} s; see {log}")


async def serve(args: argparse.Namespace) -> None:
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    janus = start_janus(args.janus, workdir, args.host, args.janus_port)
    api = JanusApi(f"http://{args.host}:{args.janus_port}/janus")
    try:
        info = await wait_for_janus(api, janus, workdir / "janus.log")
        shim = WhipShim(api)
        async with served(shim.app(), args.host, args.port) as bound_port:
            print(f"janus-whip listening whip=http://{args.host}:{bound_port}/whip "
                  f"janus={info.get('version_string', '?')} log={workdir / 'janus.log'}", flush=True)
            await until_signalled()
            await shim.close()
    finally:
        await api.close()
        stop_child(janus, JANUS_STOP_TIMEOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description="Janus EchoTest (ICE-lite) behind a WHIP shim")
    parser.add_argument("--workdir", type=Path, required=True, help="folder for Janus's config, log and PID file")
    parser.add_argument("--host", default="127.0.0.2",
                        help="address of the WHIP shim and of Janus's HTTP API (the namespace's address)")
    parser.add_argument("--port", type=int, default=0, help="WHIP port (0: a free one)")
    parser.add_argument("--janus-port", type=int, default=8088, help="Janus's HTTP API port")
    parser.add_argument("--janus", default="janus", help="the janus binary")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except (JanusNotInstalled, RuntimeError, OSError) as exc:
        print(f"janus-whip: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
