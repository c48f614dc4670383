from __future__ import annotations

import random

import pytest
from aioice import stun as aioice_stun

from toolkit.crafters.common import CraftError
from toolkit.crafters.dtls import client_hello_flight
from toolkit.crafters.mutators import (
    Mutation,
    duplicate,
    mutate,
    pad,
    reorder,
    split,
    substitute_byte,
    substitute_field,
    truncate,
    xor,
)
from toolkit.crafters.stun import ice_check

DATA = bytes(range(64))
SINGLE = [substitute_byte, xor, truncate, pad, split, mutate]


@pytest.mark.parametrize("mutator", SINGLE, ids=lambda m: m.__name__)
def test_single_datagram_mutators_are_deterministic_per_seed(mutator):
    results = {seed: mutator(DATA, random.Random(seed)) for seed in range(8)}
    assert all(mutator(DATA, random.Random(seed)) == result for seed, result in results.items())
    assert all(isinstance(r, Mutation) and r.description and r.datagrams != (DATA,) for r in results.values())
    assert len({r.datagrams for r in results.values()}) > 1


def test_pinned_parameters_replay_exactly():
    assert substitute_byte(DATA, random.Random(), offset=3, value=0xFF).data == DATA[:3] + b"\xff" + DATA[4:]
    assert xor(DATA, random.Random(), offset=0, mask=0x80).description == "xor byte 0 with 0x80"
    assert truncate(DATA, random.Random(), length=10).data == DATA[:10]
    assert pad(DATA, random.Random(), fill=b"\x01\x02").data == DATA + b"\x01\x02"
    assert split(DATA, random.Random(), cuts=[10, 20]).datagrams == (DATA[:10], DATA[10:20], DATA[20:])


def test_split_keeps_every_byte_in_order():
    mutation = split(DATA, random.Random(3), parts=4)
    assert len(mutation.datagrams) == 4 and b"".join(mutation.datagrams) == DATA


def test_duplicate_and_reorder_on_flights():
    flight = [b"a", b"b", b"c"]
    assert duplicate(flight, random.Random(), index=1, times=2).datagrams == (b"a", b"b", b"b", b"b", b"c")
    shuffled = reorder(flight, random.Random(5))
    assert sorted(shuffled.datagrams) == flight and list(shuffled.datagrams) != flight
    assert shuffled == reorder(flight, random.Random(5))
    assert reorder(flight, random.Random(), order=[2, 0, 1]).datagrams == (b"c", b"a", b"b")
    with pytest.raises(CraftError, match="is not a permutation of 3 datagrams"):
        reorder(flight, random.Random(), order=[0, 0, 1])


def test_substitute_field_reaches_nested_attributes_and_rebuilds():
    message = ice_check("a:b", "pw", transaction_id=bytes(12), tie_breaker=1)
    mutation = substitute_field(message, random.Random(0), field="hmac", value=bytes(20))
    assert mutation.description.startswith("set STUN MESSAGE-INTEGRITY.hmac = ")
    parsed = aioice_stun.parse_message(mutation.data)  # FINGERPRINT recomputed over the bad MI
    assert not parsed.check_message_integrity(b"pw")
    assert aioice_stun.parse_message(bytes(message)).check_message_integrity(b"pw")  # input untouched


def test_substitute_field_random_is_deterministic_per_seed():
    record = client_hello_flight(random=bytes(32))[0]
    runs = [substitute_field(record, random.Random(seed)) for seed in range(6)]
    assert runs == [substitute_field(record, random.Random(seed)) for seed in range(6)]
    assert len({r.description for r in runs}) > 1


def test_errors_say_what_is_wrong():
    with pytest.raises(CraftError, match="cannot truncate an empty datagram"):
        truncate(b"", random.Random())
    with pytest.raises(CraftError, match="has no field 'nope'"):
        substitute_field(ice_check("a:b", "pw"), random.Random(), field="nope")
