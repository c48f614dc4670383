"""Percentiles as rtcgate reports them everywhere (load runs, checks, benchmarks): nearest rank.

The p-th percentile is the smallest sample with at least p % of the samples at or below it: the
sample at rank ceil(p/100 · n), 1-based. It is always a measured value, never an interpolation,
so a p99 over 100 round trips is the 99th smallest. numpy computes it: `method="inverted_cdf"`
(Hyndman & Fan's definition 1) is exactly this rule.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

METHOD = "inverted_cdf"


def nearest_rank(values: Iterable[float], *fractions: float) -> list[float]:
    """The nearest-rank percentile of `values` at each fraction (0.99 for p99), as Python floats.

    Raises ValueError for no values or a fraction outside [0, 1]."""
    samples = np.fromiter(values, dtype=float)
    if samples.size == 0:
        raise ValueError("a percentile needs at least one value")
    return [float(value) for value in np.quantile(samples, fractions, method=METHOD)]
