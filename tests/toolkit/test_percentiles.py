"""Nearest-rank percentiles through numpy: the rule the toolkit has always documented."""
from __future__ import annotations

import math
import random

import pytest

from toolkit.percentiles import nearest_rank


def by_definition(values: list[float], fraction: float) -> float:
    """The smallest sample with at least `fraction` of the samples at or below it."""
    ordered = sorted(values)
    return next(v for v in ordered if sum(1 for w in ordered if w <= v) >= fraction * len(ordered))


def test_nearest_rank_is_a_sample_never_an_interpolation():
    assert nearest_rank([1, 2], 0.5) == [1.0]  # interpolation would say 1.5; "higher" would say 2
    assert nearest_rank(range(1, 101), 0.5, 0.9, 0.99, 0.999, 1.0) == [50.0, 90.0, 99.0, 100.0, 100.0]
    assert nearest_rank([7], 0.0, 0.5, 1.0) == [7.0, 7.0, 7.0]


def test_nearest_rank_matches_the_definition_and_the_integer_rank_formula():
    rng = random.Random(12)
    for count in (1, 2, 3, 7, 10, 99, 100, 101, 999, 1000, 1001):
        values = [rng.randint(0, 10**9) for _ in range(count)]
        ordered = sorted(values)
        for per_mille in (500, 900, 990, 999):
            fraction = per_mille / 1000
            [got] = nearest_rank(values, fraction)
            assert got == ordered[-(-per_mille * count // 1000) - 1] == ordered[math.ceil(fraction * count) - 1]
            if count <= 101:
                assert got == by_definition(values, fraction)


def test_no_values_or_a_fraction_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="at least one value"):
        nearest_rank([], 0.5)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 1.5)
