"""The log-linear latency histogram: bucket layout, binning of sorted batches, percentiles."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from distcache_core.metrics.histogram import (
    MAX_NS,
    LatencyHistogram,
    bucket_bounds,
    bucket_index,
)


@given(st.integers(min_value=0, max_value=MAX_NS - 1))
def test_a_value_lies_in_its_bucket_and_the_bucket_is_narrow(ns: int) -> None:
    low, high = bucket_bounds(bucket_index(ns))
    assert low <= ns < high
    assert high - low <= max(1, low / 64)


def test_buckets_are_contiguous_and_increasing() -> None:
    previous_high = 0
    for index in range(bucket_index(MAX_NS - 1) + 1):
        low, high = bucket_bounds(index)
        assert low == previous_high
        assert high > low
        previous_high = high
    assert bucket_index(MAX_NS * 4) == bucket_index(MAX_NS - 1)
    assert bucket_index(-5) == 0


@given(st.lists(st.floats(min_value=0, max_value=100.0), max_size=200),
       st.integers(min_value=1, max_value=5))
def test_binning_a_sorted_batch_counts_like_one_by_one(values: list[float], weight: int) -> None:
    batch, single = LatencyHistogram(), LatencyHistogram()
    batch.record_sorted(sorted(values), weight)
    for value in values:
        single.record_ns(int(value * 1e9), weight)
    assert batch.total == single.total == len(values) * weight
    assert sum(batch.counts.values()) == batch.total
    # Rounding of value * 1e9 may move a value on a bucket boundary by one bucket at most.
    for p in (50, 90, 99, 100):
        a, b = batch.value_at_percentile_ns(p), single.value_at_percentile_ns(p)
        assert abs(a - b) <= max(2, b / 32)


def test_percentiles_are_within_the_bucket_precision_of_the_exact_ones() -> None:
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(math.log(20e-6), 1.0) for _ in range(20000))
    histogram = LatencyHistogram()
    histogram.record_sorted(values)
    got = histogram.percentiles_usec([50, 99, 99.9])
    for p, usec in got.items():
        exact = values[math.ceil(p / 100 * len(values)) - 1] * 1e6
        assert exact <= usec <= exact * 1.02 + 0.001, (p, exact, usec)
    assert histogram.max_usec() >= values[-1] * 1e6


def test_since_merge_copy_clear() -> None:
    first = LatencyHistogram()
    first.record_ns(1000, 3)
    snapshot = first.copy()
    first.record_ns(5000, 2)
    delta = first.since(snapshot)
    assert delta.total == 2
    assert delta.percentiles_usec([50]) == {50: (bucket_bounds(bucket_index(5000))[1] - 1) / 1e3}
    merged = LatencyHistogram()
    merged.merge(first)
    merged.merge(delta)
    assert merged.total == 7
    merged.clear()
    assert merged.total == 0 and merged.percentiles_usec([99]) == {99: 0.0}
    assert LatencyHistogram().value_at_percentile_ns(50) == 0
