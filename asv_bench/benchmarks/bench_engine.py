"""The ``lru_ttl`` storage engine, called as the command handlers call it.

A ``time_*`` call is one pass of ``engine.get``/``engine.set`` over ``BATCH`` (10,000)
prebuilt keys, so its time / 10,000 is the cost of one operation. The ``track_*`` benchmarks
run the same passes and report operations per second (best of ``TRACK_PASSES``), the unit of
issue 3's in-process targets: get hit >= 5M ops/s, set with eviction >= 3M ops/s.

Parameter ``keys`` is the keyspace size: 10k is the default capacity (the whole keyspace stays
in the CPU caches), 1M is a real cache (nearly every lookup misses the CPU caches, and it costs
most of the time: see the table in ``plugins/lru_ttl/engine.py``).
"""

from __future__ import annotations

import functools
import gc
import math
import random
import time
from collections.abc import Callable, Sequence

from distcache_core.testing import FakeClock
from distcache_plugins.lru_ttl import LruTtlEngine

BATCH = 10_000
KEYSPACE_SIZES = [10_000, 1_000_000]
VALUE = b"v" * 32
TRACK_PASSES = 20
#: Large enough that one active-expiry cycle removes every expired key: the benchmark times
#: the work per key, not the node's 5 ms slice.
SWEEP_BUDGET_MS = 60_000.0


def key(index: int) -> bytes:
    return b"key:%010d" % index


def request_keys(keys: Sequence[bytes]) -> list[bytes]:
    """Equal keys that are distinct objects, as the parser hands them to the engine: a lookup
    then compares bytes instead of succeeding on identity."""
    return [bytes(bytearray(k)) for k in keys]


def best_ops_per_second(run_pass: Callable[[], object], ops: int,
                        passes: int = TRACK_PASSES) -> float:
    """``ops`` divided by the fastest of ``passes`` runs of ``run_pass``, with the garbage
    collector off as asv's own timer has it."""
    best = math.inf
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(passes):
            start = time.perf_counter()
            run_pass()
            best = min(best, time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return ops / best


class FilledEngine:
    """An engine at capacity with ``keys`` keys, a random sample of them to read and write
    (fixed seed), and as many keys it does not hold."""

    def __init__(self, keys: int) -> None:
        self.engine = LruTtlEngine(capacity=keys)
        stored = [key(i) for i in range(keys)]
        for stored_key in stored:
            self.engine.set(stored_key, VALUE)
        sample = random.Random(3).sample(range(keys), BATCH)
        self.hit_keys = request_keys([stored[i] for i in sample])
        self.miss_keys = request_keys([key(keys + i) for i in range(BATCH)])
        assert self.engine.get(self.hit_keys[0]) == VALUE
        assert self.engine.get(self.miss_keys[0]) is None


class EvictingWriter:
    """An engine at capacity and a cyclic pool of ``capacity + BATCH`` keys, written a batch
    at a time: the engine holds the ``capacity`` keys written last, so the next batch of the
    pool is always absent and every set evicts the least recently used key, however many
    batches asv runs in one process."""

    def __init__(self, capacity: int) -> None:
        assert capacity % BATCH == 0
        self.engine = LruTtlEngine(capacity=capacity)
        pool = [key(i) for i in range(capacity + BATCH)]
        self.batches = [request_keys(pool[i:i + BATCH]) for i in range(0, len(pool), BATCH)]
        for batch in self.batches[:-1]:
            self.write(batch)
        self.next_batch = len(self.batches) - 1

    def write(self, batch: list[bytes]) -> None:
        set_value = self.engine.set
        for batch_key in batch:
            set_value(batch_key, VALUE)

    def write_next_batch(self) -> None:
        batch = self.batches[self.next_batch]
        self.next_batch = (self.next_batch + 1) % len(self.batches)
        self.write(batch)


# One fixture per keyspace size and process: the 1M-key ones take about a second to build,
# and asv calls setup before every timed call.
@functools.cache
def filled_engine(keys: int) -> FilledEngine:
    return FilledEngine(keys)


@functools.cache
def evicting_writer(capacity: int) -> EvictingWriter:
    return EvictingWriter(capacity)


@functools.cache
def stored_keys(count: int) -> list[bytes]:
    return [key(i) for i in range(count)]


class EngineReads:
    """get hit, get miss and set of an existing key, at random over the keyspace."""

    params = KEYSPACE_SIZES
    param_names = ["keys"]

    def setup(self, keys: int) -> None:
        self.fixture = filled_engine(keys)

    def time_get_hit(self, keys: int) -> None:
        get = self.fixture.engine.get
        for hit_key in self.fixture.hit_keys:
            get(hit_key)

    def time_get_miss(self, keys: int) -> None:
        get = self.fixture.engine.get
        for miss_key in self.fixture.miss_keys:
            get(miss_key)

    def time_set_existing(self, keys: int) -> None:
        set_value = self.fixture.engine.set
        for hit_key in self.fixture.hit_keys:
            set_value(hit_key, VALUE)

    def track_get_hit_ops_per_second(self, keys: int) -> float:
        return best_ops_per_second(lambda: self.time_get_hit(keys), BATCH)

    track_get_hit_ops_per_second.unit = "ops/s"


class SetWithEviction:
    """set of a new key into an engine at capacity: one key in, the LRU key out."""

    params = KEYSPACE_SIZES
    param_names = ["keys"]

    def setup(self, keys: int) -> None:
        self.writer = evicting_writer(keys)

    def time_set_evict(self, keys: int) -> None:
        self.writer.write_next_batch()

    def track_set_evict_ops_per_second(self, keys: int) -> float:
        return best_ops_per_second(self.writer.write_next_batch, BATCH)

    track_set_evict_ops_per_second.unit = "ops/s"


class ActiveExpiry:
    """One ``active_expire_cycle`` over a keyspace where every key has expired (fake clock):
    the cost of removing expired keys, sampling included."""

    params = KEYSPACE_SIZES
    param_names = ["expired_keys"]
    # Each call consumes its fixture, which setup rebuilds (a second at 1M keys): one call per
    # sample, no warm-up calls, a few samples.
    number = 1
    warmup_time = 0.0
    repeat = (1, 5, 20.0)
    timeout = 180

    def setup(self, expired_keys: int) -> None:
        clock = FakeClock()
        self.engine = LruTtlEngine(capacity=0, clock_ms=clock)
        expire_at_ms = clock() + 1000
        set_value = self.engine.set
        for stored_key in stored_keys(expired_keys):
            set_value(stored_key, VALUE, expire_at_ms)
        clock.advance(2000)

    def time_active_expire_sweep(self, expired_keys: int) -> None:
        self.engine.active_expire_cycle(SWEEP_BUDGET_MS)

    def teardown(self, expired_keys: int) -> None:
        # Checked after timing: a sweep that stopped early would time less work than it claims.
        assert len(self.engine) == 0, f"{len(self.engine)} expired keys left after the sweep"
