"""What every phase table (a state machine written as data) is tested for, whoever's it is: the
table is the documented life, written out independently of it, and each move is either allowed or
refused with an IllegalTransition that names it."""
from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum

import pytest


def assert_documented(table: Mapping[Enum, Iterable[Enum]], phases: type[Enum], legal: set[tuple[Enum, Enum]]) -> None:
    """`table` names every phase, and allows exactly the `legal` moves."""
    assert set(table) == set(phases)
    assert {(current, to) for current, targets in table.items() for to in targets} == legal


def every_move(phases: type[Enum]) -> pytest.MarkDecorator:
    """Parametrize a test over every (current, to) pair of `phases`."""
    return pytest.mark.parametrize(("current", "to"), list(itertools.product(phases, repeat=2)),
                                   ids=lambda phase: phase.name)


@contextmanager
def refused(error: type[Exception], owner: str, current: Enum, to: Enum) -> Iterator[None]:
    """The block raises `error` for the move current → to, worded "OWNER: no transition from …"."""
    with pytest.raises(error, match=f"^{re.escape(owner)}: no transition from {current.name} to {to.name}$") as raised:
        yield
    assert (raised.value.current, raised.value.to) == (current, to)
