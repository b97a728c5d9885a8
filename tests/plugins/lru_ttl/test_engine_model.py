"""LruTtlEngine against a plain model: a dict, an explicit recency list and a fake clock.

The model states this engine's promises in the simplest code that can hold them: exact LRU
(every use moves the key to the end of ``order``), eviction from the front until both limits
hold (never the key just written), lazy expiry on every access, and the counters. After every
step the engine's observable state and its LRU order (read from ``_data``, white-box) must
equal the model's.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from distcache_core.errors import NotIntegerError, OverflowCommandError
from distcache_core.protocol import string2ll
from distcache_core.testing import FakeClock
from distcache_plugins.lru_ttl.accounting import EXPIRY_OVERHEAD_BYTES
from distcache_plugins.lru_ttl.engine import (
    INT64_MAX,
    INT64_MIN,
    PER_KEY_OVERHEAD_BYTES,
    LruTtlEngine,
)

KEYS = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f", b"", b"\x00\r\n"])
VALUES = st.one_of(
    st.sampled_from([b"0", b"1", b"-7", b"9223372036854775807", b"-9223372036854775808",
                     b"01", b" 1", b"x"]),
    st.binary(max_size=40),
)
# Relative expiry times: some in the past, some about now, most in the future.
OFFSETS_MS = st.integers(min_value=-50, max_value=3000)


def size_of(key: bytes, value: bytes) -> int:
    return len(key) + len(value) + PER_KEY_OVERHEAD_BYTES


class LruTtlModel(RuleBasedStateMachine):
    @initialize(
        capacity=st.sampled_from([0, 1, 2, 3, 5]),
        maxmemory_bytes=st.sampled_from([0, 0, PER_KEY_OVERHEAD_BYTES * 3 + 60]),
        default_ttl_seconds=st.sampled_from([0, 0, 1, 2]),
    )
    def start(self, capacity: int, maxmemory_bytes: int, default_ttl_seconds: int) -> None:
        self.clock = FakeClock()
        self.engine = LruTtlEngine(capacity=capacity, maxmemory_bytes=maxmemory_bytes,
                                   default_ttl_seconds=default_ttl_seconds, clock_ms=self.clock)
        self.capacity = capacity
        self.maxmemory_bytes = maxmemory_bytes
        self.default_ttl_ms = default_ttl_seconds * 1000
        self.values: dict[bytes, bytes] = {}
        self.expiry: dict[bytes, int] = {}
        self.order: list[bytes] = []  # least recently used first
        self.hits = self.misses = self.evictions = self.expired = 0

    # --- the model ----------------------------------------------------------------------------

    def now(self) -> int:
        return self.clock()

    def is_dead(self, key: bytes) -> bool:
        return key in self.expiry and self.expiry[key] <= self.now()

    def drop(self, key: bytes) -> None:
        del self.values[key]
        self.expiry.pop(key, None)
        self.order.remove(key)

    def live(self, key: bytes) -> bool:
        """Lazy expiry as every access does it: a dead key is removed and counted."""
        if key in self.values and self.is_dead(key):
            self.drop(key)
            self.expired += 1
        return key in self.values

    def use(self, key: bytes) -> None:
        self.order.remove(key)
        self.order.append(key)

    def bytes_used(self) -> int:
        return (sum(size_of(key, value) for key, value in self.values.items())
                + EXPIRY_OVERHEAD_BYTES * len(self.expiry))

    def enforce_limits(self) -> None:
        while len(self.order) > 1 and (
                (self.capacity and len(self.order) > self.capacity)
                or (self.maxmemory_bytes and self.bytes_used() > self.maxmemory_bytes)):
            victim = self.order[0]
            dead = self.is_dead(victim)
            self.drop(victim)
            if dead:
                self.expired += 1
            else:
                self.evictions += 1

    def model_set(self, key: bytes, value: bytes, expire_at_ms: int | None,
                  keep_ttl: bool) -> None:
        existed = self.live(key)
        if existed:
            self.use(key)
        else:
            self.order.append(key)
        self.values[key] = value
        if expire_at_ms is not None:
            if expire_at_ms <= self.now():
                self.drop(key)
                return
            self.expiry[key] = expire_at_ms
        elif keep_ttl and existed:
            pass
        elif self.default_ttl_ms:
            self.expiry[key] = self.now() + self.default_ttl_ms
        else:
            self.expiry.pop(key, None)
        self.enforce_limits()

    # --- rules --------------------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES, offset=st.none() | OFFSETS_MS, keep_ttl=st.booleans())
    def set(self, key: bytes, value: bytes, offset: int | None, keep_ttl: bool) -> None:
        expire_at_ms = None if offset is None else self.now() + offset
        self.engine.set(key, value, expire_at_ms, keep_ttl=keep_ttl)
        self.model_set(key, value, expire_at_ms, keep_ttl)

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        if self.live(key):
            self.hits += 1
            self.use(key)
            expected = self.values[key]
        else:
            self.misses += 1
            expected = None
        assert self.engine.get(key) == expected

    @rule(key=KEYS)
    def peek(self, key: bytes) -> None:
        expected = self.values[key] if self.live(key) else None
        assert self.engine.peek(key) == expected

    @rule(key=KEYS)
    def exists(self, key: bytes) -> None:
        assert self.engine.exists(key) == self.live(key)

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        existed = self.live(key)
        if existed:
            self.drop(key)
        assert self.engine.delete(key) == existed

    @rule(key=KEYS)
    def touch(self, key: bytes) -> None:
        existed = self.live(key)
        if existed:
            self.use(key)
        assert self.engine.touch(key) == existed

    @rule(key=KEYS, offset=OFFSETS_MS)
    def expire_at(self, key: bytes, offset: int) -> None:
        expire_at_ms = self.now() + offset
        existed = self.live(key)
        if existed:
            if expire_at_ms <= self.now():
                self.drop(key)
            else:
                self.expiry[key] = expire_at_ms
                self.use(key)
                self.enforce_limits()
        assert self.engine.expire_at(key, expire_at_ms) == existed

    @rule(key=KEYS)
    def persist(self, key: bytes) -> None:
        had_ttl = self.live(key) and key in self.expiry
        if had_ttl:
            del self.expiry[key]
            self.use(key)
        assert self.engine.persist(key) == had_ttl

    @rule(key=KEYS)
    def ttl(self, key: bytes) -> None:
        if not self.live(key):
            expected = -2
        elif key not in self.expiry:
            expected = -1
        else:
            expected = self.expiry[key] - self.now()
        assert self.engine.ttl_ms(key) == expected

    @rule(key=KEYS, delta=st.sampled_from([1, -1, 5, INT64_MAX, INT64_MIN]))
    def incr_by(self, key: bytes, delta: int) -> None:
        existed = self.live(key)
        current = string2ll(self.values[key]) if existed else 0
        if current is None:
            expected_error: type[Exception] | None = NotIntegerError
        else:
            result = current + delta
            if INT64_MIN <= result <= INT64_MAX:
                expected_error = None
            else:
                expected_error = OverflowCommandError
        if expected_error is not None:
            try:
                self.engine.incr_by(key, delta)
            except expected_error:
                return
            raise AssertionError(f"incr_by should raise {expected_error.__name__}")
        assert self.engine.incr_by(key, delta) == result
        if existed:
            self.values[key] = b"%d" % result
            self.use(key)
            self.enforce_limits()
        else:
            self.model_set(key, b"%d" % result, None, False)

    @rule(ms=st.integers(min_value=0, max_value=2500))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule(pick=st.integers(min_value=0, max_value=10))
    def advance_clock_to_an_expiry(self, pick: int) -> None:
        # Land exactly on an expiry time: the boundary (expire_at <= now is dead) gets tested.
        future = sorted({at for at in self.expiry.values() if at > self.now()})
        if future:
            self.clock.now_ms = future[pick % len(future)]

    @rule(budget_ms=st.sampled_from([0.0, 50.0]))
    def active_expire(self, budget_ms: float) -> None:
        removed = self.engine.active_expire_cycle(budget_ms)
        # Sampling picks which dead keys go: take the engine's word for which, then check
        # that only dead keys went and that the count is right.
        gone = [key for key in self.order if key not in self.engine._data]
        assert all(self.is_dead(key) for key in gone)
        assert removed == len(gone)
        for key in gone:
            self.drop(key)
        self.expired += len(gone)

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def same_state(self) -> None:
        engine = self.engine
        assert list(engine._data) == self.order  # white-box: the exact LRU order
        assert dict(engine._data) == self.values
        assert engine._expires == self.expiry
        stats = engine.stats()
        assert stats.keys == len(engine) == len(self.values)
        assert stats.bytes_used == self.bytes_used()
        assert (stats.hits, stats.misses, stats.evictions, stats.expired) == (
            self.hits, self.misses, self.evictions, self.expired)
        assert stats.keys_with_expiry == len(self.expiry)

    @invariant()
    def limits_hold(self) -> None:
        if len(self.values) > 1:
            assert not self.capacity or len(self.values) <= self.capacity
            assert not self.maxmemory_bytes or self.bytes_used() <= self.maxmemory_bytes

    @invariant()
    def bulk_reads_agree(self) -> None:
        now = self.now()
        live = sorted(key for key in self.values
                      if key not in self.expiry or self.expiry[key] > now)
        assert sorted(self.engine.keys()) == live
        assert sorted(key for key, _, _ in self.engine.items()) == live
        cursor, scanned = 0, []
        while True:
            cursor, batch = self.engine.scan(cursor, None, 3)
            scanned.extend(batch)
            if cursor == 0:
                break
        assert sorted(scanned) == live


TestLruTtlModel = LruTtlModel.TestCase
TestLruTtlModel.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
