"""The storage engine contract, part 2: the mutation stream, ``restore``, limits and policies,
and logical databases. :class:`~distcache_core.testing.StorageEngineContract` includes it.

Every engine must report each applied change once, after applying it, in order (see
:mod:`distcache_core.mutations`), and ``restore`` must store exactly what it is given. The
property test at the end replays what an engine reported into a fresh engine and requires the
same keyspace, values and expiry times, whatever the workload.

Optional parts are tested only when the engine has them: ``configure`` (run-time limits and
Redis's eviction policies) and ``open_database`` (SELECT).
"""

from __future__ import annotations

from typing import Any

import pytest

from distcache_core.contracts import StorageEngine
from distcache_core.errors import CommandError
from distcache_core.mutations import Cause, Mutation, Op, replay

OOM = "OOM command not allowed when used memory > 'maxmemory'."

#: A mutation as a comparable tuple: (op, db, key, value, expire_at_ms, cause).
Event = tuple[Op, int, bytes, "bytes | None", "int | None", Cause]


def as_tuple(mutation: Mutation) -> Event:
    return (mutation.op, mutation.db, mutation.key, mutation.value, mutation.expire_at_ms,
            mutation.cause)


class Recorder:
    """A listener that keeps what it is told; ``take()`` returns and forgets it."""

    def __init__(self, engine: StorageEngine) -> None:
        self.mutations: list[Mutation] = []
        engine.set_listener(self.mutations.append)

    def take(self) -> list[Event]:
        events = [as_tuple(m) for m in self.mutations]
        self.mutations.clear()
        return events


def SET(key: bytes, value: bytes, expire_at_ms: int | None = None, *, db: int = 0,  # noqa: N802
        cause: Cause = Cause.COMMAND) -> Event:
    return (Op.SET, db, key, value, expire_at_ms, cause)


def DEL(key: bytes, *, db: int = 0, cause: Cause = Cause.COMMAND) -> Event:  # noqa: N802
    return (Op.DEL, db, key, None, None, cause)


def EXPIRE(key: bytes, expire_at_ms: int | None, *, db: int = 0) -> Event:  # noqa: N802
    return (Op.EXPIRE, db, key, None, expire_at_ms, Cause.COMMAND)


def FLUSHDB(db: int = 0) -> Event:  # noqa: N802
    return (Op.FLUSHDB, db, b"", None, None, Cause.COMMAND)


def snapshot(engine: StorageEngine) -> list[tuple[bytes, bytes, int | None]]:
    return sorted(engine.items())


class MutationContract:
    """``test_*`` methods on mutations, restore, limits and databases (a mixin; the engine
    comes from :meth:`StorageEngineContract.new`)."""

    new: Any
    make_engine: Any
    bytes_of_one_key: Any
    full_scan: Any

    def recorded(self, **limits: Any) -> tuple[StorageEngine, Any, Recorder]:
        engine, clock = self.new(**limits)
        return engine, clock, Recorder(engine)

    # --- emission of each write ----------------------------------------------------------------

    def test_set_reports_the_expiry_it_stored(self) -> None:
        engine, clock, events = self.recorded()
        engine.set(b"plain", b"1")
        engine.set(b"timed", b"2", clock() + 500)
        clock.advance(100)
        engine.set(b"timed", b"3", keep_ttl=True)
        engine.set(b"plain", b"4", keep_ttl=True)
        assert events.take() == [SET(b"plain", b"1"), SET(b"timed", b"2", clock() + 400),
                                 SET(b"timed", b"3", clock() + 400), SET(b"plain", b"4")]

    def test_set_reports_the_default_ttl(self) -> None:
        engine, clock, events = self.recorded(default_ttl_seconds=10)
        engine.set(b"k", b"v")
        engine.incr_by(b"n", 3)
        assert events.take() == [SET(b"k", b"v", clock() + 10_000),
                                 SET(b"n", b"3", clock() + 10_000)]

    def test_set_with_past_expiry_is_a_deletion(self) -> None:
        engine, clock, events = self.recorded()
        engine.set(b"k", b"v")
        events.take()
        engine.set(b"k", b"v2", clock())
        engine.set(b"never", b"v", clock() - 1)  # no key before, none after: nothing changed
        assert events.take() == [DEL(b"k")]

    def test_delete_reports_only_real_deletions(self) -> None:
        engine, _, events = self.recorded()
        engine.set(b"k", b"v")
        events.take()
        assert engine.delete(b"k")
        assert not engine.delete(b"k")
        assert not engine.delete(b"missing")
        assert events.take() == [DEL(b"k")]

    def test_expire_and_persist(self) -> None:
        engine, clock, events = self.recorded()
        engine.set(b"k", b"v")
        events.take()
        engine.expire_at(b"k", clock() + 1000)
        engine.persist(b"k")
        engine.persist(b"k")  # had no expiry: nothing changed
        engine.expire_at(b"missing", clock() + 1000)
        engine.expire_at(b"k", clock() - 5)
        assert events.take() == [EXPIRE(b"k", clock() + 1000), EXPIRE(b"k", None), DEL(b"k")]

    def test_incr_by_reports_the_whole_value_and_keeps_expiry(self) -> None:
        engine, clock, events = self.recorded()
        engine.set(b"n", b"41", clock() + 900)
        engine.incr_by(b"n", 1)
        engine.incr_by(b"fresh", -2)
        with pytest.raises(CommandError):
            engine.incr_by(b"n", 2**63 - 1)  # an error changes nothing
        assert events.take() == [SET(b"n", b"41", clock() + 900), SET(b"n", b"42", clock() + 900),
                                 SET(b"fresh", b"-2")]

    def test_clear_reports_one_flush_when_not_empty(self) -> None:
        engine, _, events = self.recorded()
        engine.clear()
        engine.set(b"a", b"1")
        engine.set(b"b", b"2")
        events.take()
        engine.clear()
        engine.clear()
        assert events.take() == [FLUSHDB()]

    def test_reads_report_nothing(self) -> None:
        engine, clock, events = self.recorded()
        engine.set(b"a", b"1", clock() + 1000)
        engine.set(b"b", b"2")
        events.take()
        engine.get(b"a")
        engine.get(b"missing")
        engine.peek(b"b")
        engine.exists(b"a")
        engine.touch(b"b")
        engine.ttl_ms(b"a")
        engine.get_expire_at(b"b")
        engine.keys()
        engine.scan(0)
        engine.random_key()
        list(engine.items())
        engine.stats()
        assert events.take() == []

    def test_reported_after_applying(self) -> None:
        engine, clock = self.new()
        seen: list[tuple[bytes | None, int]] = []

        def listener(mutation: Mutation) -> None:
            seen.append((engine.peek(mutation.key), engine.ttl_ms(mutation.key)))

        engine.set_listener(listener)
        engine.set(b"k", b"v", clock() + 50)
        engine.persist(b"k")
        engine.delete(b"k")
        assert seen == [(b"v", 50), (b"v", -1), (None, -2)]

    def test_listener_none_stops_reporting(self) -> None:
        engine, _, events = self.recorded()
        engine.set_listener(None)
        engine.set(b"k", b"v")
        engine.delete(b"k")
        assert events.take() == []

    # --- the engine's own removals -------------------------------------------------------------

    def test_lazy_expiry_is_reported_once(self) -> None:
        engine, clock, events = self.recorded()
        engine.set(b"k", b"v", clock() + 10)
        engine.set(b"j", b"v", clock() + 10)
        events.take()
        clock.advance(10)
        assert engine.get(b"k") is None
        assert engine.get(b"k") is None
        assert not engine.delete(b"j")  # deleting a dead key removes it as expired
        assert events.take() == [DEL(b"k", cause=Cause.EXPIRED), DEL(b"j", cause=Cause.EXPIRED)]

    def test_active_expiry_is_reported(self) -> None:
        engine, clock, events = self.recorded()
        for index in range(50):
            engine.set(b"k%d" % index, b"v", clock() + 10)
        engine.set(b"stays", b"v")
        events.take()
        clock.advance(10)
        removed = sum(engine.active_expire_cycle(1000.0) for _ in range(100))
        assert removed == 50
        assert sorted(events.take()) == sorted(
            DEL(b"k%d" % index, cause=Cause.EXPIRED) for index in range(50))

    def test_eviction_is_reported_before_the_write(self) -> None:
        engine, _, events = self.recorded(capacity=2)
        engine.set(b"a", b"1")
        engine.set(b"b", b"2")
        engine.set(b"c", b"3")
        engine.incr_by(b"d", 1)
        assert events.take() == [SET(b"a", b"1"), SET(b"b", b"2"),
                                 DEL(b"a", cause=Cause.EVICTED), SET(b"c", b"3"),
                                 DEL(b"b", cause=Cause.EVICTED), SET(b"d", b"1")]
        assert engine.stats().evictions == 2

    def test_maxmemory_eviction_is_reported(self) -> None:
        def fill(engine: StorageEngine, clock: Any) -> None:
            engine.set(b"k1", b"x" * 100)
            engine.set(b"k2", b"x" * 100, clock() + 5)
            engine.set(b"k3", b"x" * 100)

        probe, probe_clock = self.new()
        fill(probe, probe_clock)
        engine, clock, events = self.recorded(maxmemory_bytes=probe.stats().bytes_used)
        fill(engine, clock)
        clock.advance(5)
        events.take()
        engine.set(b"k4", b"x" * 100)
        engine.set(b"k5", b"x" * 100)
        # k1 is the least recently used; k2 had expired, so it goes as expired, not evicted.
        assert events.take() == [DEL(b"k1", cause=Cause.EVICTED), SET(b"k4", b"x" * 100),
                                 DEL(b"k2", cause=Cause.EXPIRED), SET(b"k5", b"x" * 100)]

    def test_write_larger_than_maxmemory_is_refused(self) -> None:
        per_key = self.bytes_of_one_key(b"k1", b"x" * 100)
        engine, _, events = self.recorded(maxmemory_bytes=3 * per_key)
        engine.set(b"k1", b"x" * 100)
        events.take()
        with pytest.raises(CommandError) as refused:
            engine.set(b"big", b"x" * (4 * per_key))
        assert refused.value.message == OOM
        assert engine.keys() == [b"k1"]
        assert events.take() == []

    # --- restore -------------------------------------------------------------------------------

    def test_restore_stores_exactly(self) -> None:
        engine, clock, events = self.recorded(default_ttl_seconds=60)
        engine.restore(b"plain", b"1", None)
        engine.restore(b"timed", b"2", clock() + 1234)
        assert snapshot(engine) == [(b"plain", b"1", None), (b"timed", b"2", clock() + 1234)]
        engine.restore(b"timed", b"3", None)  # replaces the expiry too
        assert engine.ttl_ms(b"timed") == -1
        engine.set(b"k", b"v", clock() + 10)
        engine.restore(b"k", b"w", clock() + 20)
        assert engine.get_expire_at(b"k") == clock() + 20
        assert events.take() == [
            SET(b"plain", b"1", None, cause=Cause.RESTORE),
            SET(b"timed", b"2", clock() + 1234, cause=Cause.RESTORE),
            SET(b"timed", b"3", None, cause=Cause.RESTORE),
            SET(b"k", b"v", clock() + 10),
            SET(b"k", b"w", clock() + 20, cause=Cause.RESTORE),
        ]

    def test_restore_with_past_expiry_stores_nothing(self) -> None:
        engine, clock, events = self.recorded()
        engine.restore(b"gone", b"v", clock())
        engine.set(b"k", b"v")
        events.take()
        engine.restore(b"k", b"w", clock() - 1)
        assert snapshot(engine) == []
        assert events.take() == [DEL(b"k", cause=Cause.RESTORE)]

    def test_restore_as_a_command(self) -> None:
        # RENAME and COPY: an exact expiry, reported as the command's write, refused for memory
        # where set would be.
        per_key = self.bytes_of_one_key(b"k1", b"x" * 100)
        engine, clock, events = self.recorded(default_ttl_seconds=60,
                                              maxmemory_bytes=3 * per_key)
        engine.restore(b"copy", b"v", None, cause=Cause.COMMAND)
        engine.restore(b"copy2", b"v", clock() + 5, cause=Cause.COMMAND)
        assert snapshot(engine) == [(b"copy", b"v", None), (b"copy2", b"v", clock() + 5)]
        with pytest.raises(CommandError, match="^OOM "):
            engine.restore(b"big", b"x" * (4 * per_key), None, cause=Cause.COMMAND)
        assert events.take() == [SET(b"copy", b"v"), SET(b"copy2", b"v", clock() + 5)]

    def test_restore_many_is_restore_of_each(self) -> None:
        # Optional: restore_many(keys, values, expiries), for snapshot loading.
        batches: list[list[tuple[bytes, bytes, int | None]]] = [
            [(b"a", b"1", None), (b"b", b"22", 10_000), (b"c", b"333", None)],
            [(b"d", b"4", -5), (b"e", b"5", 500)],  # d is already expired
            [(b"a", b"new", 100), (b"f", b"6", None), (b"f", b"66", None)],  # held, repeated
        ]
        for limits in ({}, {"capacity": 4}):
            by_block, clock = self.new(**limits)
            if not hasattr(by_block, "restore_many"):
                pytest.skip("the engine has no restore_many()")
            by_key = self.make_engine(clock, **limits)
            pairs = [(by_block, by_key)]
            if hasattr(by_block, "open_database"):
                pairs.append((by_block.open_database(2), by_key.open_database(2)))
            for block_engine, key_engine in pairs:
                for batch in batches:
                    keys = [key for key, _, _ in batch]
                    values = [value for _, value, _ in batch]
                    expiries = [None if at is None else clock() + at for _, _, at in batch]
                    block_engine.restore_many(keys, values, iter(expiries))
                    for key, value, at in zip(keys, values, expiries, strict=True):
                        key_engine.restore(key, value, at)
                    assert snapshot(block_engine) == snapshot(key_engine)
                    assert len(block_engine) == len(key_engine)
            assert by_block.stats().bytes_used == by_key.stats().bytes_used
            assert by_block.stats().keys_with_expiry == by_key.stats().keys_with_expiry

    def test_restore_counts_against_limits(self) -> None:
        engine, _, events = self.recorded(capacity=2)
        for key in (b"a", b"b", b"c"):
            engine.restore(key, b"v", None)
        assert sorted(engine.keys()) == [b"b", b"c"]
        assert DEL(b"a", cause=Cause.EVICTED) in events.take()

    # --- limits in stats, run-time limits and policies (``configure`` is optional) -------------

    def test_stats_report_the_limits(self) -> None:
        engine, _ = self.new(capacity=7, maxmemory_bytes=123_456)
        stats = engine.stats()
        assert (stats.capacity, stats.maxmemory_bytes, stats.maxmemory_policy) == (
            7, 123_456, "allkeys-lru")

    def configurable(self, **limits: Any) -> tuple[Any, Any, Recorder]:
        engine, clock, events = self.recorded(**limits)
        if not hasattr(engine, "configure"):
            pytest.skip("the engine has no configure()")
        return engine, clock, events

    def test_configure_changes_limits_and_evicts_at_once(self) -> None:
        engine, _, events = self.configurable()
        for index in range(5):
            engine.set(b"k%d" % index, b"v")
        events.take()
        engine.configure(capacity=2)
        assert sorted(engine.keys()) == [b"k3", b"k4"]
        assert events.take() == [DEL(b"k%d" % index, cause=Cause.EVICTED) for index in range(3)]
        engine.configure(maxmemory_bytes=10**9, maxmemory_policy="volatile-ttl")
        stats = engine.stats()
        assert (stats.capacity, stats.maxmemory_bytes, stats.maxmemory_policy) == (
            2, 10**9, "volatile-ttl")
        with pytest.raises(ValueError, match="maxmemory_policy"):
            engine.configure(maxmemory_policy="lru")
        with pytest.raises(ValueError, match="maxmemory_bytes"):
            engine.configure(maxmemory_bytes=-1)
        assert engine.stats().maxmemory_policy == "volatile-ttl"

    def test_noeviction_refuses_writes_past_a_limit(self) -> None:
        probe, probe_clock = self.new()
        for key in (b"k1", b"k2", b"k3"):
            probe.set(key, b"x" * 100, probe_clock() + 1000)
        engine, clock, events = self.configurable(
            maxmemory_bytes=probe.stats().bytes_used + 50)
        engine.configure(maxmemory_policy="noeviction")
        for key in (b"k1", b"k2", b"k3"):
            engine.set(key, b"x" * 100, clock() + 1000)
        events.take()
        with pytest.raises(CommandError, match="^OOM "):
            engine.set(b"k4", b"x" * 100)
        with pytest.raises(CommandError, match="^OOM "):
            engine.set(b"k1", b"x" * 200, keep_ttl=True)
        assert engine.get(b"k1") == b"x" * 100
        engine.restore(b"k4", b"x" * 100, None)  # recovery never refuses: now over the limit
        with pytest.raises(CommandError, match="^OOM "):
            engine.set(b"k5", b"x")
        assert engine.stats().evictions == 0
        assert engine.delete(b"k4") and engine.delete(b"k2")  # deleting always works
        engine.set(b"k6", b"x" * 100)
        engine.set(b"k1", b"x" * 90)  # a write that shrinks fits
        assert sorted(engine.keys()) == [b"k1", b"k3", b"k6"]
        assert [event[:3] for event in events.take()] == [
            (Op.SET, 0, b"k4"), (Op.DEL, 0, b"k4"), (Op.DEL, 0, b"k2"), (Op.SET, 0, b"k6"),
            (Op.SET, 0, b"k1")]

    def test_capacity_noeviction(self) -> None:
        engine, _, _ = self.configurable(capacity=2)
        engine.configure(maxmemory_policy="noeviction")
        engine.set(b"a", b"v")
        engine.set(b"b", b"v")
        with pytest.raises(CommandError, match="^OOM "):
            engine.set(b"c", b"v")
        with pytest.raises(CommandError, match="^OOM "):
            engine.incr_by(b"n", 1)
        engine.set(b"a", b"w")  # an overwrite adds no key
        assert sorted(engine.items()) == [(b"a", b"w", None), (b"b", b"v", None)]

    def test_volatile_lru_evicts_only_keys_with_expiry(self) -> None:
        engine, clock, events = self.configurable(capacity=4)
        engine.configure(maxmemory_policy="volatile-lru")
        engine.set(b"p1", b"v")
        engine.set(b"t1", b"v", clock() + 10_000)
        engine.set(b"t2", b"v", clock() + 10_000)
        engine.set(b"p2", b"v")
        engine.get(b"t1")  # t2 is now the least recently used key with an expiry
        events.take()
        engine.set(b"p3", b"v")
        engine.set(b"p4", b"v")
        assert events.take() == [DEL(b"t2", cause=Cause.EVICTED), SET(b"p3", b"v"),
                                 DEL(b"t1", cause=Cause.EVICTED), SET(b"p4", b"v")]
        with pytest.raises(CommandError, match="^OOM "):  # nothing left that may go
            engine.set(b"p5", b"v")
        assert sorted(engine.keys()) == [b"p1", b"p2", b"p3", b"p4"]

    def test_volatile_ttl_evicts_the_nearest_expiry(self) -> None:
        engine, clock, events = self.configurable(capacity=4)
        engine.configure(maxmemory_policy="volatile-ttl")
        engine.set(b"late", b"v", clock() + 9000)
        engine.set(b"soon", b"v", clock() + 100)
        engine.set(b"plain", b"v")
        engine.set(b"mid", b"v", clock() + 5000)
        events.take()
        engine.set(b"new1", b"v")
        engine.set(b"new2", b"v")
        assert events.take() == [DEL(b"soon", cause=Cause.EVICTED), SET(b"new1", b"v"),
                                 DEL(b"mid", cause=Cause.EVICTED), SET(b"new2", b"v")]

    def test_allkeys_random_keeps_the_key_written(self) -> None:
        engine, _, events = self.configurable(capacity=3)
        engine.configure(maxmemory_policy="allkeys-random")
        for index in range(30):
            engine.set(b"k%d" % index, b"v")
            assert engine.exists(b"k%d" % index)
            assert len(engine) == min(index + 1, 3)
        assert engine.stats().evictions == 27
        assert sum(1 for event in events.take() if event[0] == Op.DEL) == 27

    def test_memory_usage_is_what_the_key_counts(self) -> None:
        engine, clock = self.new()
        if not hasattr(engine, "memory_usage"):
            pytest.skip("the engine has no memory_usage()")
        assert engine.memory_usage(b"k") is None
        engine.set(b"k", b"x" * 100)
        assert engine.memory_usage(b"k") == engine.stats().bytes_used
        engine.set(b"t", b"y", clock() + 50)
        assert engine.memory_usage(b"k") + engine.memory_usage(b"t") == engine.stats().bytes_used
        clock.advance(50)
        assert engine.memory_usage(b"t") is None

    # --- logical databases (``open_database`` is optional) -------------------------------------

    def databases(self, **limits: Any) -> tuple[Any, Any, Any, Recorder]:
        engine, clock, events = self.recorded(**limits)
        if not hasattr(engine, "open_database"):
            pytest.skip("the engine has no open_database()")
        return engine, engine.open_database(1), clock, events

    def test_databases_are_separate_keyspaces(self) -> None:
        db0, db1, clock, events = self.databases()
        assert db1.open_database(1) is db1
        assert len(db1) == 0
        db0.set(b"k", b"zero")
        db1.set(b"k", b"one", clock() + 100)
        db1.set(b"only1", b"x")
        assert (db0.get(b"k"), db1.get(b"k")) == (b"zero", b"one")
        assert (db0.ttl_ms(b"k"), db1.ttl_ms(b"k")) == (-1, 100)
        assert db0.keys() == [b"k"] and sorted(db1.keys()) == [b"k", b"only1"]
        assert db1.keys(b"only*") == [b"only1"]
        assert sorted(self.full_scan(db1)) == [b"k", b"only1"]
        assert self.full_scan(db0) == [b"k"]
        assert (len(db0), len(db1)) == (1, 2)
        assert (db0.stats().keys, db1.stats().keys) == (1, 2)
        assert (db0.stats().keys_with_expiry, db1.stats().keys_with_expiry) == (0, 1)
        assert sorted(db1.items()) == [(b"k", b"one", clock() + 100), (b"only1", b"x", None)]
        assert db0.random_key() == b"k"
        assert all(type(key) is bytes for key in db1.keys())
        assert db1.incr_by(b"n", 5) == 5 and not db0.exists(b"n")
        assert db1.delete(b"k") and db0.exists(b"k")
        db1.clear()
        assert (len(db0), len(db1), db0.get(b"k")) == (1, 0, b"zero")
        assert events.take() == [SET(b"k", b"zero"), SET(b"k", b"one", clock() + 100, db=1),
                                 SET(b"only1", b"x", db=1), SET(b"n", b"5", db=1),
                                 DEL(b"k", db=1), FLUSHDB(1)]

    def test_databases_share_limits_and_one_lru_order(self) -> None:
        db0, db1, clock, events = self.databases(capacity=3)
        db0.set(b"a", b"v")
        db1.set(b"b", b"v")
        db0.set(b"c", b"v")
        db1.get(b"b")
        db1.set(b"d", b"v")
        db0.set(b"e", b"v")
        assert (sorted(db0.keys()), sorted(db1.keys())) == ([b"e"], [b"b", b"d"])
        assert [event for event in events.take() if event[0] == Op.DEL] == [
            DEL(b"a", cause=Cause.EVICTED), DEL(b"c", cause=Cause.EVICTED)]
        assert db0.stats().evictions == db1.stats().evictions == 2

    def test_database_expiry_is_reported_with_its_index(self) -> None:
        db0, db1, clock, events = self.databases()
        db1.set(b"lazy", b"v", clock() + 5)
        db1.set(b"active", b"v", clock() + 5)
        events.take()
        clock.advance(5)
        assert db1.get(b"lazy") is None
        for _ in range(10):
            db0.active_expire_cycle(100.0)
        assert events.take() == [DEL(b"lazy", db=1, cause=Cause.EXPIRED),
                                 DEL(b"active", db=1, cause=Cause.EXPIRED)]
        assert len(db1) == 0

    # --- the stream reproduces the keyspace ------------------------------------------------------

    def test_replaying_the_stream_reproduces_the_keyspace(self) -> None:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        keys = st.sampled_from([b"a", b"b", b"c", b"d", b"\x00\r\n"])
        values = st.sampled_from([b"0", b"7", b"-3", b"x", b"", b"y" * 300])
        offsets = st.none() | st.integers(min_value=-20, max_value=400)
        operation = st.one_of(
            st.tuples(st.just("set"), keys, values, offsets, st.booleans()),
            st.tuples(st.just("restore"), keys, values, offsets),
            st.tuples(st.just("delete"), keys),
            st.tuples(st.just("expire_at"), keys, st.integers(min_value=-20, max_value=400)),
            st.tuples(st.just("persist"), keys),
            st.tuples(st.just("incr_by"), keys, st.sampled_from([1, -5, 2**62])),
            st.tuples(st.just("get"), keys),
            st.tuples(st.just("touch"), keys),
            st.tuples(st.just("clear"),),
            st.tuples(st.just("advance"), st.integers(min_value=0, max_value=300)),
            st.tuples(st.just("active_expire"),),
        )
        workload = st.lists(st.tuples(st.integers(min_value=0, max_value=1), operation),
                            min_size=10, max_size=80)
        limits = st.fixed_dictionaries({
            "capacity": st.sampled_from([0, 2, 4]),
            "maxmemory_bytes": st.sampled_from([0, 0, 1]),  # 1: three small keys' worth
            "default_ttl_seconds": st.sampled_from([0, 0, 1]),
        })
        per_key = self.bytes_of_one_key(b"a", b"xx")

        @settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(limits=limits, steps=workload)
        def check(limits: dict[str, int], steps: list[tuple[int, tuple[Any, ...]]]) -> None:
            if limits["maxmemory_bytes"]:
                limits = {**limits, "maxmemory_bytes": 3 * per_key + 40}
            engine, clock = self.new(**limits)
            started_at = clock()
            mutations: list[Mutation] = []
            engine.set_listener(mutations.append)
            engines = [engine]
            if hasattr(engine, "open_database"):
                engines.append(engine.open_database(1))
            for db, (name, *args) in steps:
                target = engines[db % len(engines)]
                try:
                    if name == "set":
                        key, value, offset, keep_ttl = args
                        at = None if offset is None else clock() + offset
                        target.set(key, value, at, keep_ttl=keep_ttl)
                    elif name == "restore":
                        key, value, offset = args
                        target.restore(key, value, None if offset is None else clock() + offset)
                    elif name == "expire_at":
                        target.expire_at(args[0], clock() + args[1])
                    elif name == "advance":
                        clock.advance(args[0])
                    elif name == "active_expire":
                        target.active_expire_cycle(10.0)
                    else:
                        getattr(target, name)(*args)
                except CommandError:
                    pass  # not an integer, overflow, OOM: nothing applied, nothing reported
            # Replayed on a clock stopped where the workload began, then moved to where it
            # ended: a SET whose expiry an EXPIRE later extended must not expire half-way
            # through the replay (Redis expires nothing while it loads its files either).
            replay_clock = type(clock)(started_at)
            fresh = self.make_engine(replay_clock)  # no limits, no default TTL
            copies = [fresh]
            if len(engines) > 1:
                copies.append(fresh.open_database(1))
            replay(mutations, copies)
            replay_clock.now_ms = clock.now_ms
            for original, copy in zip(engines, copies, strict=True):
                assert snapshot(copy) == snapshot(original)

        check()
