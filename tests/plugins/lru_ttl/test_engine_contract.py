"""The shared StorageEngine contract, run on LruTtlEngine, plus what only this engine promises."""

from __future__ import annotations

import pytest

from distcache_core.contracts import StorageEngine
from distcache_core.errors import CommandError
from distcache_core.testing import FakeClock, StorageEngineContract
from distcache_plugins.lru_ttl.accounting import EXPIRY_OVERHEAD_BYTES
from distcache_plugins.lru_ttl.engine import (
    EXPIRE_SAMPLE_SIZE,
    PER_KEY_OVERHEAD_BYTES,
    LruTtlEngine,
)
from distcache_plugins.lru_ttl.settings import LruTtlSettings


class TestLruTtlEngineContract(StorageEngineContract):
    def make_engine(self, clock: FakeClock, *, capacity: int = 0, maxmemory_bytes: int = 0,
                    default_ttl_seconds: int = 0) -> StorageEngine:
        return LruTtlEngine(capacity=capacity, maxmemory_bytes=maxmemory_bytes,
                            default_ttl_seconds=default_ttl_seconds, clock_ms=clock)


def new_engine(**limits: int) -> tuple[LruTtlEngine, FakeClock]:
    clock = FakeClock()
    return LruTtlEngine(clock_ms=clock, **limits), clock


class TestLruTtlEngineSpecifics:
    """Promises of this engine beyond the shared contract."""

    def test_exact_lru_order(self) -> None:
        engine, _ = new_engine(capacity=5)
        for key in (b"a", b"b", b"c", b"d", b"e"):
            engine.set(key, b"v")
        for key in (b"c", b"a", b"e", b"b"):  # recency now: d, c, a, e, b
            engine.get(key)
        evicted = []
        for index in range(5):
            before = set(engine.keys())
            engine.set(b"new%d" % index, b"v")
            evicted.extend(before - set(engine.keys()))
        assert evicted == [b"d", b"c", b"a", b"e", b"b"]

    def test_write_commands_count_as_use(self) -> None:
        # Redis looks keys up for writing (lookupKeyWrite) in EXPIRE, PERSIST and INCR, which
        # refreshes their LRU clock; TTL and EXISTS do not.
        engine, clock = new_engine(capacity=4)
        for key in (b"a", b"b", b"c", b"d"):
            engine.set(key, b"1", clock() + 1000)
        engine.expire_at(b"a", clock() + 2000)
        engine.persist(b"b")
        engine.incr_by(b"c", 1)
        engine.ttl_ms(b"d")
        engine.set(b"e", b"v")
        assert sorted(engine.keys()) == [b"a", b"b", b"c", b"e"]

    def test_bytes_accounting(self) -> None:
        engine, clock = new_engine()
        engine.set(b"key", b"value")
        engine.set(b"k2", b"v" * 100, clock() + 10)
        expected = 3 + 5 + 2 + 100 + 2 * PER_KEY_OVERHEAD_BYTES + EXPIRY_OVERHEAD_BYTES
        assert engine.stats().bytes_used == expected
        engine.incr_by(b"n", 12345)
        assert engine.stats().bytes_used == expected + 1 + 5 + PER_KEY_OVERHEAD_BYTES

    def test_expiry_suspended_while_loading(self) -> None:
        # A log replayed after its expiry times passed: the SET's expiry was extended by a
        # later EXPIRE, so the key must survive the replay and live on.
        engine, clock = new_engine()
        with engine.loading():
            engine.restore(b"k", b"v", clock() - 10)
            engine.restore(b"gone", b"v", clock() - 10)
            assert engine.expire_at(b"k", clock() + 1000)
            assert engine.get(b"gone") == b"v"
        assert sorted(engine.items()) == [(b"k", b"v", clock() + 1000)]
        assert engine.get(b"gone") is None
        assert engine.open_database(3).loading is not None

    def test_swapped_databases_report_their_new_numbers(self) -> None:
        engine, _ = new_engine()
        db1 = engine.open_database(1)
        seen: list[tuple[int, bytes]] = []
        engine.set_listener(lambda m: seen.append((m.db, m.key)))
        engine.set(b"a", b"v")
        db1.set(b"b", b"v")
        engine.set_database_index(1)  # SWAPDB 0 1, as distcache_core.databases does it
        db1.set_database_index(0)
        engine.set(b"c", b"v")
        db1.delete(b"b")
        db1.clear()
        assert seen == [(0, b"a"), (1, b"b"), (1, b"c"), (0, b"b")]
        engine.clear()
        assert seen[-1] == (1, b"")
        assert (len(engine), len(db1)) == (0, 0)

    def test_value_larger_than_maxmemory_is_refused(self) -> None:
        # Redis refuses a write that cannot fit even after evicting everything else.
        engine, _ = new_engine(maxmemory_bytes=1000)
        engine.set(b"a", b"x")
        engine.set(b"b", b"x")
        with pytest.raises(CommandError, match=r"^OOM command not allowed when used memory > "
                                               r"'maxmemory'\.$"):
            engine.set(b"huge", b"x" * 5000)
        with pytest.raises(CommandError):
            engine.set(b"a", b"x" * 5000)  # an overwrite that cannot fit keeps the old value
        assert sorted(engine.keys()) == [b"a", b"b"]
        assert engine.get(b"a") == b"x"
        assert engine.stats().evictions == 0

    def test_expired_victim_counts_as_expired_not_evicted(self) -> None:
        engine, clock = new_engine(capacity=2)
        engine.set(b"dying", b"v", clock() + 5)
        engine.set(b"plain", b"v")
        clock.advance(5)
        engine.set(b"new", b"v")
        stats = engine.stats()
        assert (stats.evictions, stats.expired) == (0, 1)
        assert sorted(engine.keys()) == [b"new", b"plain"]

    def test_zero_budget_examines_one_sample(self) -> None:
        engine, clock = new_engine()
        for index in range(100):
            engine.set(b"k%d" % index, b"v", clock() + 1)
        clock.advance(1)
        assert engine.active_expire_cycle(0.0) == EXPIRE_SAMPLE_SIZE
        assert len(engine) == 100 - EXPIRE_SAMPLE_SIZE

    @pytest.mark.parametrize(("dead_per_sample", "removed_in_one_call"), [
        (5, 5),  # 25% dead: not more than a quarter, Redis stops after this sample
        (6, 6 * 50),  # 30% dead: it keeps sampling through all of them
    ])
    def test_repeats_while_over_a_quarter_expired(self, dead_per_sample: int,
                                                  removed_in_one_call: int) -> None:
        engine, clock = new_engine()
        for group in range(50):
            for index in range(EXPIRE_SAMPLE_SIZE):
                ttl = 1 if index < dead_per_sample else 10_000
                engine.set(b"g%d:%d" % (group, index), b"v", clock() + ttl)
        clock.advance(1)
        assert engine.active_expire_cycle(10_000.0) == removed_in_one_call

    def test_scan_cursor_forgotten_restarts(self) -> None:
        engine, _ = new_engine()
        keys = {b"k%d" % index for index in range(30)}
        for key in keys:
            engine.set(key, b"v")
        cursor, first = engine.scan(0, None, 10)
        for _ in range(40):  # newer iterations push the first one out
            engine.scan(0, None, 1)
        seen = set(first)
        while True:
            cursor, batch = engine.scan(cursor, None, 10)
            seen.update(batch)
            if cursor == 0:
                break
        assert seen == keys

    def test_scan_made_up_cursor_restarts(self) -> None:
        engine, _ = new_engine()
        for index in range(5):
            engine.set(b"k%d" % index, b"v")
        cursor, batch = engine.scan(123456789, None, 100)
        assert cursor == 0
        assert len(batch) == 5

    def test_rejects_negative_limits(self) -> None:
        for limits in ({"capacity": -1}, {"maxmemory_bytes": -1}, {"default_ttl_seconds": -1}):
            with pytest.raises(ValueError):
                LruTtlEngine(**limits)

    def test_from_settings(self) -> None:
        engine = LruTtlEngine.from_settings(LruTtlSettings(capacity=2, default_ttl_seconds=60))
        for key in (b"a", b"b", b"c"):
            engine.set(key, b"v")
        assert len(engine) == 2
        assert 59_000 < engine.ttl_ms(b"c") <= 60_000  # the real clock
        assert isinstance(LruTtlEngine.from_settings(None), LruTtlEngine)
