"""Compare reference_server.stun with aioice.stun on the messages the server handles most.

Parse: an ICE connectivity check as browsers send it (USERNAME, PRIORITY, ICE-CONTROLLING,
USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT). "parse" is framing only for ours and full
attribute decoding plus the FINGERPRINT check for aioice, which is what each does by
default; "parse+verify" adds MESSAGE-INTEGRITY (and FINGERPRINT for ours) so the two do
the same work. Build: the success response (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY,
FINGERPRINT). Prints operations per second and the ratio, and writes them as JSON to
reports/bench/stun_codec.json.

Usage: python -m bench.stun_codec [--seconds 0.3] [--rounds 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from aioice import stun as aioice_stun

from bench.common import benchmark_parser, run_benchmark, write_results
from reference_server import stun
from toolkit.commands.arguments import positive_number, whole

KEY = b"a-128-bit-or-longer-ice-password"
TRANSACTION_ID = os.urandom(12)
PEER = ("192.0.2.77", 53211)


def batch_size(operation: Callable[[], object]) -> int:
    """Calls per timing check, enough that reading the clock costs nothing noticeable."""
    batch = 1
    while True:
        start = time.perf_counter()
        for _ in range(batch):
            operation()
        if time.perf_counter() - start > 0.02:
            return batch
        batch *= 2


def rate(operation: Callable[[], object], batch: int, seconds: float) -> float:
    """Operations per second over one run of about `seconds`."""
    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            operation()
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def best_rates(
    ours: Callable[[], object], theirs: Callable[[], object], seconds: float, rounds: int
) -> tuple[float, float]:
    """Best rate of each over `rounds` alternating runs, so load from other processes
    falls on both alike."""
    ours_batch, theirs_batch = batch_size(ours), batch_size(theirs)
    ours_best = theirs_best = 0.0
    for _ in range(rounds):
        ours_best = max(ours_best, rate(ours, ours_batch, seconds))
        theirs_best = max(theirs_best, rate(theirs, theirs_batch, seconds))
    return ours_best, theirs_best


def connectivity_check() -> bytes:
    request = aioice_stun.Message(
        aioice_stun.Method.BINDING,
        aioice_stun.Class.REQUEST,
        transaction_id=TRANSACTION_ID,
        attributes={
            "USERNAME": "srv0a1b2c3d:Kx9f",
            "PRIORITY": 1853824767,
            "ICE-CONTROLLING": 0x1A2B3C4D5E6F7081,
            "USE-CANDIDATE": None,
        },
    )
    request.add_message_integrity(KEY)
    return bytes(request)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__file__, __doc__)
    parser.add_argument("--seconds", type=positive_number, default=0.3, help="length of one timed run")
    parser.add_argument("--rounds", type=whole, default=7, help="timed runs per figure; best wins")
    return parser


def main() -> int:
    args = build_parser().parse_args()

    request = connectivity_check()
    parsed = stun.parse(request)
    assert stun.fingerprint_ok(request, parsed) and stun.integrity_ok(request, parsed, KEY)
    assert aioice_stun.parse_message(request).check_message_integrity(KEY)

    def ours_parse() -> object:
        return stun.parse(request)

    def aioice_parse() -> object:
        return aioice_stun.parse_message(request)

    def ours_parse_verify() -> bool:
        message = stun.parse(request)
        return stun.fingerprint_ok(request, message) and stun.integrity_ok(request, message, KEY)

    def aioice_parse_verify() -> bool:
        return aioice_stun.parse_message(request).check_message_integrity(KEY)

    def ours_build() -> bytes:
        return stun.build(
            stun.BINDING,
            stun.SUCCESS,
            TRANSACTION_ID,
            [(stun.XOR_MAPPED_ADDRESS, stun.xor_address(PEER[0], PEER[1], TRANSACTION_ID))],
            integrity_key=KEY,
        )

    def aioice_build() -> bytes:
        response = aioice_stun.Message(
            aioice_stun.Method.BINDING,
            aioice_stun.Class.RESPONSE,
            transaction_id=TRANSACTION_ID,
            attributes={"XOR-MAPPED-ADDRESS": PEER},
        )
        response.add_message_integrity(KEY)
        return bytes(response)

    assert ours_build() == aioice_build(), "both builders must produce the same bytes"

    figures = {}
    for name, ours, theirs in [
        ("parse", ours_parse, aioice_parse),
        ("parse+verify", ours_parse_verify, aioice_parse_verify),
        ("build+MI+FP", ours_build, aioice_build),
    ]:
        ours_rate, aioice_rate = best_rates(ours, theirs, args.seconds, args.rounds)
        figures[name] = {
            "rtcgate_per_s": round(ours_rate),
            "aioice_per_s": round(aioice_rate),
            "ratio": round(ours_rate / aioice_rate, 2),
        }
        print(
            f"{name:<13} rtcgate {ours_rate / 1000:8.1f}k/s   aioice {aioice_rate / 1000:8.1f}k/s"
            f"   ratio {ours_rate / aioice_rate:5.2f}x"
        )

    write_results(args.json, {
        "python": sys.version.split()[0],
        "message_bytes": {"request": len(request), "response": len(ours_build())},
        "figures": figures,
    })
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark("stun_codec", main))
