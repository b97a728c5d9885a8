"""A log-linear latency histogram (HdrHistogram's bucket layout), in nanoseconds.

Values below 128 ns have a bucket each; above, every power of two is split into 64 equal
buckets, so a bucket is at most 1/64 (1.6%) of its value wide: Redis's ``latencystats`` use
HdrHistogram with 2 significant digits (1%), which is the same order. Values are clamped at
2**40 ns (about 18 minutes). Buckets are kept sparse (a dict), so an idle command costs nothing
and a busy one a few hundred entries.

The request path never touches a histogram: it appends durations to a list, and
:meth:`LatencyHistogram.record_sorted` bins a sorted batch of them with one ``bisect`` per
non-empty bucket (see :mod:`distcache_core.metrics.commands`).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence

#: Values below this many nanoseconds get a bucket each.
EXACT_BELOW_NS = 128
#: Buckets per power of two above ``EXACT_BELOW_NS``.
SUB_BUCKETS = 64
MAX_NS = 1 << 40
#: Most durations :meth:`LatencyHistogram.record_batch` sorts at once; beyond it, a stride
#: sample, each value weighted by the stride (a burst of samples stays cheap to bin).
FOLD_SAMPLE_LIMIT = 1024


def bucket_index(ns: int) -> int:
    """The bucket of a value in nanoseconds (negative values count as 0)."""
    if ns < EXACT_BELOW_NS:
        return ns if ns > 0 else 0
    if ns >= MAX_NS:
        ns = MAX_NS - 1
    shift = ns.bit_length() - 7
    return (shift << 6) + (ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """``[low, high)`` in nanoseconds of bucket ``index``."""
    if index < EXACT_BELOW_NS:
        return index, index + 1
    shift = (index >> 6) - 1
    mantissa = index - (shift << 6)
    return mantissa << shift, (mantissa + 1) << shift


class LatencyHistogram:
    """Counts of durations per bucket; percentiles as HdrHistogram reports them (the highest
    value equivalent to the bucket the percentile falls in)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        #: bucket index -> count
        self.counts: dict[int, int] = {}
        self.total = 0

    def record_ns(self, ns: int, count: int = 1) -> None:
        index = bucket_index(ns)
        self.counts[index] = self.counts.get(index, 0) + count
        self.total += count

    def record_sorted(self, seconds: Sequence[float], weight: int = 1) -> None:
        """Bin durations in seconds, sorted ascending; each counts ``weight`` times."""
        counts = self.counts
        i = 0
        n = len(seconds)
        while i < n:
            index = bucket_index(int(seconds[i] * 1e9))
            high_s = bucket_bounds(index)[1] / 1e9
            # Every later value below the bucket's upper bound is in the same bucket; the
            # rounding of * 1e9 can only move a value across a boundary by an ulp.
            j = bisect_left(seconds, high_s, i + 1)
            counts[index] = counts.get(index, 0) + (j - i) * weight
            i = j
        self.total += n * weight

    def record_batch(self, seconds: list[float]) -> None:
        """Bin durations in seconds, in any order (sorts ``seconds`` in place); above
        :data:`FOLD_SAMPLE_LIMIT` values, a stride sample of them stands for all."""
        count = len(seconds)
        if count > FOLD_SAMPLE_LIMIT:
            stride = count // FOLD_SAMPLE_LIMIT
            # Start mid-stride so a periodic pattern is not always sampled at its first value.
            sample = seconds[stride // 2::stride]
            sample.sort()
            self.record_sorted(sample, stride)
        else:
            seconds.sort()
            self.record_sorted(seconds)

    def merge(self, other: LatencyHistogram) -> None:
        counts = self.counts
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count
        self.total += other.total

    def copy(self) -> LatencyHistogram:
        clone = LatencyHistogram()
        clone.counts = dict(self.counts)
        clone.total = self.total
        return clone

    def since(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """What was recorded after ``earlier`` (a copy of this histogram taken before)."""
        delta = LatencyHistogram()
        old = earlier.counts
        delta.counts = {i: c - old.get(i, 0) for i, c in self.counts.items()
                        if c != old.get(i, 0)}
        delta.total = self.total - earlier.total
        return delta

    def clear(self) -> None:
        self.counts = {}
        self.total = 0

    def value_at_percentile_ns(self, percentile: float) -> int:
        """The highest value equivalent to the ``percentile``-th one (0 when empty)."""
        if self.total <= 0:
            return 0
        wanted = max(1, math.ceil(percentile / 100.0 * self.total))
        seen = 0
        index = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= wanted:
                break
        return bucket_bounds(index)[1] - 1

    def percentiles_usec(self, percentiles: Iterable[float]) -> dict[float, float]:
        """percentile -> microseconds, for each asked percentile, in one walk of the buckets."""
        asked = sorted(set(percentiles))
        out: dict[float, float] = {}
        if self.total <= 0:
            return {p: 0.0 for p in asked}
        pending = [(p, max(1, math.ceil(p / 100.0 * self.total))) for p in asked]
        seen = 0
        position = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            while position < len(pending) and seen >= pending[position][1]:
                out[pending[position][0]] = (bucket_bounds(index)[1] - 1) / 1000.0
                position += 1
            if position == len(pending):
                break
        return out

    def max_usec(self) -> float:
        if not self.counts:
            return 0.0
        return (bucket_bounds(max(self.counts))[1] - 1) / 1000.0
