"""The behaviour every :class:`~distcache_core.contracts.StorageEngine` must show.

Use it from an engine's test module::

    class TestMyEngine(StorageEngineContract):
        def make_engine(self, clock, *, capacity=0, maxmemory_bytes=0, default_ttl_seconds=0):
            return MyEngine(capacity=capacity, maxmemory_bytes=maxmemory_bytes,
                            default_ttl_seconds=default_ttl_seconds, clock_ms=clock)

Time is a :class:`FakeClock` the test moves by hand, so nothing here sleeps. LRU tests use
access patterns under which an exact LRU and the usual approximations (CLOCK, second chance)
agree: keys used since they were written outlive keys that were not, and among unused keys the
oldest goes first. Byte limits are expressed in the engine's own accounting (read from
``stats().bytes_used``), so engines may choose their per-key overhead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from distcache_core.contracts import StorageEngine
from distcache_core.errors import NotIntegerError, OverflowCommandError

from .storage_engine_mutations import MutationContract

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: A fixed start time (2023-11-14) so expiry arithmetic in failures is easy to read.
START_MS = 1_700_000_000_000


class FakeClock:
    """A clock in Unix milliseconds that only moves when told to; pass it as ``clock_ms``."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


class StorageEngineContract(MutationContract):
    """Mixin of ``test_*`` methods; subclasses implement :meth:`make_engine`. The tests of the
    mutation stream, ``restore``, limits and databases are in :class:`MutationContract`."""

    def make_engine(self, clock: FakeClock, *, capacity: int = 0, maxmemory_bytes: int = 0,
                    default_ttl_seconds: int = 0) -> StorageEngine:
        """A new, empty engine reading time from ``clock``; 0 means "no limit" / "no TTL"."""
        raise NotImplementedError

    # --- helpers --------------------------------------------------------------------------------

    def new(self, **limits: Any) -> tuple[StorageEngine, FakeClock]:
        clock = FakeClock()
        return self.make_engine(clock, **limits), clock

    def bytes_of_one_key(self, key: bytes, value: bytes) -> int:
        """What one key costs in the engine's own accounting (``stats().bytes_used``)."""
        engine, _ = self.new()
        engine.set(key, value)
        return engine.stats().bytes_used

    # --- get / peek / set -------------------------------------------------------------------------

    def test_satisfies_the_protocol(self) -> None:
        engine, _ = self.new()
        assert isinstance(engine, StorageEngine)

    def test_missing_key(self) -> None:
        engine, _ = self.new()
        assert engine.get(b"nope") is None
        assert engine.peek(b"nope") is None
        assert not engine.exists(b"nope")
        assert len(engine) == 0

    def test_set_then_get(self) -> None:
        engine, _ = self.new()
        engine.set(b"k", b"v")
        assert engine.get(b"k") == b"v"
        assert engine.peek(b"k") == b"v"
        assert engine.exists(b"k")
        assert len(engine) == 1

    def test_set_overwrites_value_and_drops_ttl(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v1", clock() + 1000)
        engine.set(b"k", b"v2")
        assert engine.get(b"k") == b"v2"
        assert engine.ttl_ms(b"k") == -1
        assert len(engine) == 1

    def test_binary_keys_and_values(self) -> None:
        engine, _ = self.new()
        odd = [b"", b"\x00", b"a\x00b", b"\r\n", b"k\r\n\x00\xff", bytes(range(256))]
        for index, key in enumerate(odd):
            engine.set(key, odd[-1 - index])
        for index, key in enumerate(odd):
            assert engine.get(key) == odd[-1 - index]
        assert sorted(engine.keys()) == sorted(odd)
        assert sorted(key for key, _, _ in engine.items()) == sorted(odd)
        assert sorted(engine.keys(b"*\r\n*")) == sorted(
            key for key in odd if b"\r\n" in key)

    def test_large_value(self) -> None:
        engine, _ = self.new()
        value = bytes(range(256)) * 4096  # 1 MiB
        engine.set(b"big", value)
        assert engine.get(b"big") == value

    def test_set_with_expiry(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v", clock() + 1500)
        assert engine.get_expire_at(b"k") == clock() + 1500
        assert engine.ttl_ms(b"k") == 1500
        clock.advance(1499)
        assert engine.get(b"k") == b"v"
        clock.advance(1)  # expiry time reached: the key is gone (Redis: expire_at <= now)
        assert engine.get(b"k") is None

    def test_set_with_past_expiry_stores_nothing(self) -> None:
        engine, clock = self.new()
        engine.set(b"old", b"v")
        engine.set(b"old", b"v2", clock() - 1)
        engine.set(b"new", b"v", clock())
        assert engine.get(b"old") is None
        assert engine.get(b"new") is None
        assert list(engine.items()) == []

    def test_keep_ttl_keeps_expiry(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v1", clock() + 1000)
        clock.advance(100)
        engine.set(b"k", b"v2", keep_ttl=True)
        assert engine.get(b"k") == b"v2"
        assert engine.get_expire_at(b"k") == clock() + 900

    def test_keep_ttl_without_ttl_or_key(self) -> None:
        engine, _ = self.new()
        engine.set(b"plain", b"v1")
        engine.set(b"plain", b"v2", keep_ttl=True)
        engine.set(b"fresh", b"v", keep_ttl=True)
        assert engine.ttl_ms(b"plain") == -1
        assert engine.ttl_ms(b"fresh") == -1
        assert engine.get(b"fresh") == b"v"

    def test_keep_ttl_does_not_revive_an_expired_ttl(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v1", clock() + 10)
        clock.advance(10)
        engine.set(b"k", b"v2", keep_ttl=True)
        assert engine.get(b"k") == b"v2"
        assert engine.ttl_ms(b"k") == -1

    def test_default_ttl(self) -> None:
        engine, clock = self.new(default_ttl_seconds=10)
        engine.set(b"k", b"v")
        assert engine.get_expire_at(b"k") == clock() + 10_000
        engine.set(b"explicit", b"v", clock() + 50)
        assert engine.get_expire_at(b"explicit") == clock() + 50
        clock.advance(5000)
        # KEEPTTL on a key that is gone (expired) writes it without a TTL: the default applies.
        engine.set(b"explicit", b"v2", keep_ttl=True)
        assert engine.get_expire_at(b"explicit") == clock() + 10_000
        engine.set(b"k", b"v2")  # a plain overwrite gets a fresh default TTL
        assert engine.get_expire_at(b"k") == clock() + 10_000
        clock.advance(10_000)
        assert engine.get(b"k") is None

    def test_default_ttl_and_keep_ttl(self) -> None:
        engine, clock = self.new(default_ttl_seconds=10)
        engine.set(b"k", b"v", clock() + 50_000)
        engine.set(b"k", b"v2", keep_ttl=True)
        assert engine.get_expire_at(b"k") == clock() + 50_000
        engine.incr_by(b"counter", 1)  # a key created by INCR is written without a TTL too
        assert engine.get_expire_at(b"counter") == clock() + 10_000

    def test_peek_counts_nothing(self) -> None:
        engine, _ = self.new()
        engine.set(b"k", b"v")
        before = engine.stats()
        assert engine.peek(b"k") == b"v"
        assert engine.peek(b"missing") is None
        assert engine.exists(b"k")
        after = engine.stats()
        assert (after.hits, after.misses) == (before.hits, before.misses)

    # --- delete / exists / touch ------------------------------------------------------------------

    def test_delete(self) -> None:
        engine, _ = self.new()
        engine.set(b"k", b"v")
        assert engine.delete(b"k") is True
        assert engine.delete(b"k") is False
        assert engine.get(b"k") is None
        assert len(engine) == 0
        assert engine.stats().bytes_used == 0

    def test_delete_expired_key_is_false(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v", clock() + 10)
        clock.advance(10)
        assert engine.delete(b"k") is False
        assert len(engine) == 0

    def test_touch(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v", clock() + 10)
        assert engine.touch(b"k") is True
        assert engine.touch(b"missing") is False
        clock.advance(10)
        assert engine.touch(b"k") is False

    # --- expiry commands --------------------------------------------------------------------------

    def test_expire_at(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v")
        assert engine.expire_at(b"k", clock() + 2000) is True
        assert engine.ttl_ms(b"k") == 2000
        assert engine.expire_at(b"k", clock() + 5000) is True  # can move either way
        assert engine.get_expire_at(b"k") == clock() + 5000
        assert engine.expire_at(b"missing", clock() + 2000) is False
        assert not engine.exists(b"missing")

    def test_expire_at_in_the_past_deletes(self) -> None:
        engine, clock = self.new()
        engine.set(b"a", b"v")
        engine.set(b"b", b"v")
        assert engine.expire_at(b"a", clock()) is True
        assert engine.expire_at(b"b", 1) is True
        assert not engine.exists(b"a")
        assert not engine.exists(b"b")
        assert len(engine) == 0

    def test_get_expire_at(self) -> None:
        engine, clock = self.new()
        engine.set(b"plain", b"v")
        engine.set(b"timed", b"v", clock() + 7)
        assert engine.get_expire_at(b"plain") is None
        assert engine.get_expire_at(b"timed") == clock() + 7
        with pytest.raises(KeyError):
            engine.get_expire_at(b"missing")
        clock.advance(7)
        with pytest.raises(KeyError):
            engine.get_expire_at(b"timed")

    def test_ttl_ms(self) -> None:
        engine, clock = self.new()
        engine.set(b"plain", b"v")
        engine.set(b"timed", b"v", clock() + 3000)
        assert engine.ttl_ms(b"missing") == -2
        assert engine.ttl_ms(b"plain") == -1
        assert engine.ttl_ms(b"timed") == 3000
        clock.advance(2999)
        assert engine.ttl_ms(b"timed") == 1
        clock.advance(1)
        assert engine.ttl_ms(b"timed") == -2

    def test_persist(self) -> None:
        engine, clock = self.new()
        engine.set(b"timed", b"v", clock() + 100)
        engine.set(b"plain", b"v")
        assert engine.persist(b"timed") is True
        assert engine.persist(b"timed") is False
        assert engine.persist(b"plain") is False
        assert engine.persist(b"missing") is False
        clock.advance(1000)
        assert engine.get(b"timed") == b"v"
        assert engine.ttl_ms(b"timed") == -1

    def test_persist_expired_key_is_false(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"v", clock() + 100)
        clock.advance(100)
        assert engine.persist(b"k") is False
        assert engine.get(b"k") is None

    # --- incr_by ----------------------------------------------------------------------------------

    def test_incr_by_missing_key_starts_at_zero(self) -> None:
        engine, _ = self.new()
        assert engine.incr_by(b"n", 5) == 5
        assert engine.get(b"n") == b"5"
        assert engine.incr_by(b"m", -3) == -3
        assert engine.get(b"m") == b"-3"

    def test_incr_by_existing(self) -> None:
        engine, _ = self.new()
        engine.set(b"n", b"10")
        assert engine.incr_by(b"n", 1) == 11
        assert engine.incr_by(b"n", -20) == -9
        assert engine.incr_by(b"n", 0) == -9
        assert engine.get(b"n") == b"-9"

    def test_incr_by_keeps_ttl(self) -> None:
        engine, clock = self.new()
        engine.set(b"n", b"1", clock() + 1000)
        engine.incr_by(b"n", 1)
        assert engine.get_expire_at(b"n") == clock() + 1000
        assert engine.get(b"n") == b"2"

    def test_incr_by_expired_key_starts_at_zero_without_ttl(self) -> None:
        engine, clock = self.new()
        engine.set(b"n", b"41", clock() + 10)
        clock.advance(10)
        assert engine.incr_by(b"n", 1) == 1
        assert engine.ttl_ms(b"n") == -1

    def test_incr_by_counts_no_hit_or_miss(self) -> None:
        engine, _ = self.new()
        engine.incr_by(b"n", 1)
        engine.incr_by(b"n", 1)
        stats = engine.stats()
        assert (stats.hits, stats.misses) == (0, 0)

    @pytest.mark.parametrize("value", [
        b"", b" 1", b"1 ", b"+1", b"01", b"-0", b"00", b"-", b"1.0", b"1e3", b"abc", b"1_000",
        b"0x10", b"\x00", b"1\x00", b"\xd9\xa1",  # Arabic-Indic digit one: int() would take it
        b"9223372036854775808", b"-9223372036854775809", b"100000000000000000000",
        b"000000000000000000001",
    ])
    def test_incr_by_rejects_what_redis_string2ll_rejects(self, value: bytes) -> None:
        engine, _ = self.new()
        engine.set(b"n", value)
        with pytest.raises(NotIntegerError):
            engine.incr_by(b"n", 1)
        assert engine.get(b"n") == value  # unchanged

    @pytest.mark.parametrize(("value", "number"), [
        (b"0", 0), (b"-1", -1), (b"10", 10),
        (b"9223372036854775806", INT64_MAX - 1), (b"-9223372036854775808", INT64_MIN),
    ])
    def test_incr_by_accepts_canonical_int64(self, value: bytes, number: int) -> None:
        engine, _ = self.new()
        engine.set(b"n", value)
        assert engine.incr_by(b"n", 0) == number
        if number < INT64_MAX:
            assert engine.incr_by(b"n", 1) == number + 1
            assert engine.get(b"n") == b"%d" % (number + 1)

    def test_incr_by_overflow(self) -> None:
        engine, _ = self.new()
        engine.set(b"top", b"%d" % INT64_MAX)
        engine.set(b"bottom", b"%d" % INT64_MIN)
        with pytest.raises(OverflowCommandError):
            engine.incr_by(b"top", 1)
        with pytest.raises(OverflowCommandError):
            engine.incr_by(b"bottom", -1)
        engine.incr_by(b"fresh", 1)
        with pytest.raises(OverflowCommandError):
            engine.incr_by(b"fresh", INT64_MAX)
        assert engine.get(b"top") == b"%d" % INT64_MAX
        assert engine.get(b"bottom") == b"%d" % INT64_MIN
        assert engine.incr_by(b"top", INT64_MIN) == -1
        assert engine.incr_by(b"bottom", INT64_MAX) == -1

    # --- keys / scan / random_key / items ---------------------------------------------------------

    GLOB_KEYS = (b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"h*llo", b"user:1",
                 b"user:2", b"users", b"a\\b", b"")

    @pytest.mark.parametrize(("pattern", "expected"), [
        (b"*", GLOB_KEYS),
        (b"h?llo", (b"hello", b"hallo", b"hxllo", b"h*llo")),
        (b"h*llo", (b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"h*llo")),
        (b"h[ae]llo", (b"hello", b"hallo")),
        (b"h[^e]llo", (b"hallo", b"hxllo", b"h*llo")),
        (b"h[a-e]llo", (b"hello", b"hallo")),
        (b"h\\*llo", (b"h*llo",)),
        (b"user:*", (b"user:1", b"user:2")),
        (b"user?*", (b"user:1", b"user:2", b"users")),
        (b"a\\\\b", (b"a\\b",)),
        (b"nomatch*", ()),
        (b"hello", (b"hello",)),
    ])
    def test_keys_glob(self, pattern: bytes, expected: tuple[bytes, ...]) -> None:
        engine, _ = self.new()
        for key in self.GLOB_KEYS:
            engine.set(key, b"v")
        assert sorted(engine.keys(pattern)) == sorted(expected)
        assert sorted(self.full_scan(engine, match=pattern)) == sorted(expected)

    def test_keys_skips_expired(self) -> None:
        engine, clock = self.new()
        engine.set(b"live", b"v")
        engine.set(b"dying", b"v", clock() + 5)
        engine.set(b"later", b"v", clock() + 50)
        clock.advance(5)
        assert sorted(engine.keys()) == [b"later", b"live"]
        assert sorted(engine.keys(b"l*")) == [b"later", b"live"]
        assert engine.keys(b"d*") == []

    @staticmethod
    def full_scan(engine: StorageEngine, match: bytes | None = None,
                  count: int = 10) -> list[bytes]:
        found: list[bytes] = []
        cursor = 0
        for _ in range(100_000):
            cursor, batch = engine.scan(cursor, match, count)
            found.extend(batch)
            if cursor == 0:
                return found
        raise AssertionError("SCAN never returned cursor 0")

    def test_scan_empty(self) -> None:
        engine, _ = self.new()
        assert engine.scan(0) == (0, [])

    @pytest.mark.parametrize("count", [1, 3, 10, 1000])
    def test_scan_returns_every_key(self, count: int) -> None:
        engine, _ = self.new()
        keys = {b"key:%d" % index for index in range(257)}
        for key in keys:
            engine.set(key, b"v")
        found = self.full_scan(engine, count=count)
        assert set(found) == keys

    def test_scan_match_and_expired(self) -> None:
        engine, clock = self.new()
        for index in range(50):
            engine.set(b"even:%d" % index if index % 2 == 0 else b"odd:%d" % index, b"v")
        engine.set(b"even:dying", b"v", clock() + 1)
        clock.advance(1)
        found = self.full_scan(engine, match=b"even:*", count=7)
        assert set(found) == {b"even:%d" % index for index in range(0, 50, 2)}

    def test_scan_under_concurrent_writes(self) -> None:
        # Redis's guarantee: a key present from the start to the end of a full iteration is
        # returned at least once; a returned key exists when it is returned.
        engine, _ = self.new()
        stable = {b"stable:%d" % index for index in range(200)}
        churn = [b"churn:%d" % index for index in range(200)]
        for key in stable:
            engine.set(key, b"v")
        for key in churn[:100]:
            engine.set(key, b"v")
        seen: set[bytes] = set()
        cursor, step = 0, 0
        while True:
            cursor, batch = engine.scan(cursor, None, 7)
            for key in batch:
                assert engine.exists(key), key
            seen.update(batch)
            if cursor == 0:
                break
            step += 1
            # Between steps: delete an old churn key, add a new one, rewrite a stable one.
            engine.delete(churn[step % 100])
            engine.set(churn[100 + step % 100], b"v")
            engine.set(b"stable:%d" % (step % 200), b"v2")
            engine.get(b"stable:%d" % ((step * 7) % 200))
            assert step < 10_000, "SCAN never ended"
        assert stable <= seen

    def test_random_key(self) -> None:
        engine, clock = self.new()
        assert engine.random_key() is None
        engine.set(b"a", b"v")
        engine.set(b"b", b"v")
        engine.set(b"c", b"v")
        engine.set(b"dead", b"v", clock() + 1)
        clock.advance(1)
        seen = {engine.random_key() for _ in range(300)}
        assert seen == {b"a", b"b", b"c"}

    def test_random_key_all_expired(self) -> None:
        engine, clock = self.new()
        for index in range(5):
            engine.set(b"k%d" % index, b"v", clock() + 1)
        clock.advance(1)
        assert engine.random_key() is None

    def test_items(self) -> None:
        engine, clock = self.new()
        engine.set(b"plain", b"1")
        engine.set(b"timed", b"2", clock() + 100)
        engine.set(b"dead", b"3", clock() + 1)
        clock.advance(1)
        assert sorted(engine.items()) == [(b"plain", b"1", None),
                                          (b"timed", b"2", clock() + 99)]

    def test_items_tolerates_writes_while_iterating(self) -> None:
        engine, _ = self.new()
        for index in range(100):
            engine.set(b"k%d" % index, b"v")
        seen = []
        for index, (key, _, _) in enumerate(engine.items()):
            seen.append(key)
            engine.set(b"new%d" % index, b"v")
            engine.delete(b"k%d" % (99 - index))
            engine.get(b"k%d" % (index // 2))
        # Keys present throughout (not deleted before being reached) are all there.
        assert {b"k%d" % index for index in range(50)} <= set(seen)

    def test_len_and_clear(self) -> None:
        engine, _ = self.new()
        for index in range(10):
            engine.set(b"k%d" % index, b"v", None)
        assert len(engine) == 10
        engine.clear()
        assert len(engine) == 0
        assert engine.get(b"k1") is None
        assert engine.keys() == []
        stats = engine.stats()
        assert (stats.keys, stats.bytes_used, stats.keys_with_expiry) == (0, 0, 0)
        engine.set(b"k1", b"again")
        assert engine.get(b"k1") == b"again"

    # --- lazy expiry ------------------------------------------------------------------------------

    def test_expired_key_is_invisible_everywhere(self) -> None:
        engine, clock = self.new()
        engine.set(b"k", b"5", clock() + 10)
        clock.advance(10)
        assert engine.get(b"k") is None
        assert engine.peek(b"k") is None
        assert not engine.exists(b"k")
        assert not engine.touch(b"k")
        assert not engine.persist(b"k")
        assert not engine.expire_at(b"k", clock() + 1000)
        assert engine.ttl_ms(b"k") == -2
        with pytest.raises(KeyError):
            engine.get_expire_at(b"k")
        assert engine.keys() == []
        assert self.full_scan(engine) == []
        assert engine.random_key() is None
        assert list(engine.items()) == []
        assert not engine.delete(b"k")

    def test_expired_key_invisible_before_any_other_access(self) -> None:
        # Each method on its own engine, so none benefits from another's lazy removal.
        probes: dict[str, Callable[[StorageEngine], bool]] = {
            "peek": lambda e: e.peek(b"k") is None,
            "exists": lambda e: not e.exists(b"k"),
            "touch": lambda e: not e.touch(b"k"),
            "persist": lambda e: not e.persist(b"k"),
            "ttl_ms": lambda e: e.ttl_ms(b"k") == -2,
            "keys": lambda e: e.keys() == [] and e.keys(b"k*") == [],
            "scan": lambda e: self.full_scan(e) == [],
            "random_key": lambda e: e.random_key() is None,
            "items": lambda e: list(e.items()) == [],
            "delete": lambda e: not e.delete(b"k"),
            "incr_by": lambda e: e.incr_by(b"k", 1) == 1,
        }
        for name, probe in probes.items():
            engine, clock = self.new()
            engine.set(b"k", b"5", clock() + 10)
            clock.advance(10)
            assert probe(engine), name

    # --- eviction ---------------------------------------------------------------------------------

    def test_capacity_evicts_unused_keys_oldest_first(self) -> None:
        engine, _ = self.new(capacity=4)
        for key in (b"a", b"b", b"c", b"d"):
            engine.set(key, b"v")
        engine.get(b"a")
        engine.touch(b"c")
        engine.set(b"e", b"v")
        assert sorted(engine.keys()) == [b"a", b"c", b"d", b"e"]
        engine.set(b"f", b"v")
        assert sorted(engine.keys()) == [b"a", b"c", b"e", b"f"]
        assert engine.stats().evictions == 2
        assert len(engine) == 4

    def test_capacity_counts_writes_as_use(self) -> None:
        engine, _ = self.new(capacity=3)
        for key in (b"a", b"b", b"c"):
            engine.set(key, b"v")
        engine.set(b"a", b"v2")
        engine.incr_by(b"n", 1)  # new key: evicts b, the least recently used
        assert sorted(engine.keys()) == [b"a", b"c", b"n"]

    def test_peek_and_exists_do_not_count_as_use(self) -> None:
        engine, _ = self.new(capacity=2)
        engine.set(b"a", b"v")
        engine.set(b"b", b"v")
        engine.peek(b"a")
        engine.exists(b"a")
        engine.set(b"c", b"v")
        assert sorted(engine.keys()) == [b"b", b"c"]

    def test_capacity_keeps_the_key_just_written(self) -> None:
        engine, _ = self.new(capacity=1)
        for index in range(10):
            engine.set(b"k%d" % index, b"v")
            assert engine.keys() == [b"k%d" % index]
        assert engine.stats().evictions == 9

    def test_maxmemory_evicts_unused_keys_oldest_first(self) -> None:
        per_key = self.bytes_of_one_key(b"k1", b"x" * 100)
        engine, _ = self.new(maxmemory_bytes=3 * per_key)
        for key in (b"k1", b"k2", b"k3"):
            engine.set(key, b"x" * 100)
        assert len(engine) == 3
        engine.get(b"k1")
        engine.set(b"k4", b"x" * 100)
        assert sorted(engine.keys()) == [b"k1", b"k3", b"k4"]
        assert engine.stats().bytes_used <= 3 * per_key
        assert engine.stats().evictions == 1

    def test_maxmemory_growing_value_evicts_others(self) -> None:
        per_key = self.bytes_of_one_key(b"k1", b"x" * 100)
        engine, _ = self.new(maxmemory_bytes=3 * per_key)
        for key in (b"k1", b"k2", b"k3"):
            engine.set(key, b"x" * 100)
        engine.set(b"k3", b"x" * (100 + per_key + 1))  # needs two keys' room
        assert engine.keys() == [b"k3"]
        assert engine.stats().bytes_used <= 3 * per_key

    def test_bytes_used_tracks_sizes(self) -> None:
        engine, clock = self.new()
        assert engine.stats().bytes_used == 0
        engine.set(b"k", b"x" * 10)
        small = engine.stats().bytes_used
        assert small >= 11
        engine.set(b"k", b"x" * 1010)
        assert engine.stats().bytes_used == small + 1000
        engine.set(b"t", b"x" * 10, clock() + 5)
        clock.advance(5)
        engine.get(b"t")
        engine.delete(b"k")
        assert engine.stats().bytes_used == 0

    # --- stats ------------------------------------------------------------------------------------

    def test_stats_counters(self) -> None:
        engine, clock = self.new(capacity=2)
        engine.set(b"a", b"v")
        engine.set(b"b", b"v", clock() + 10)
        engine.get(b"a")
        engine.get(b"a")
        engine.get(b"missing")
        stats = engine.stats()
        assert (stats.hits, stats.misses, stats.keys, stats.keys_with_expiry) == (2, 1, 2, 1)
        clock.advance(10)
        assert engine.get(b"b") is None  # an expired key read is a miss and counts as expired
        stats = engine.stats()
        assert (stats.misses, stats.expired, stats.keys, stats.keys_with_expiry) == (2, 1, 1, 0)
        engine.set(b"c", b"v")
        engine.set(b"d", b"v")
        stats = engine.stats()
        assert (stats.evictions, stats.keys) == (1, 2)

    # --- active expiry ----------------------------------------------------------------------------

    def test_active_expire_cycle_removes_expired_keys(self) -> None:
        engine, clock = self.new()
        for index in range(500):
            engine.set(b"dead:%d" % index, b"v", clock() + 10)
        for index in range(100):
            engine.set(b"alive:%d" % index, b"v", clock() + 10_000)
            engine.set(b"plain:%d" % index, b"v")
        clock.advance(10)
        removed = 0
        for _ in range(1000):
            removed += engine.active_expire_cycle(1000.0)
            if len(engine) == 200:
                break
        assert removed == 500
        assert len(engine) == 200
        assert engine.stats().expired == 500
        assert engine.stats().keys_with_expiry == 100
        assert engine.active_expire_cycle(1000.0) == 0

    def test_active_expire_cycle_work_is_bounded(self) -> None:
        engine, clock = self.new()
        for index in range(2000):
            engine.set(b"dead:%d" % index, b"v", clock() + 1)
        clock.advance(1)
        first = engine.active_expire_cycle(0.0)
        assert 0 < first < 2000  # a zero budget still makes progress, but not all of it
        removed = first
        for _ in range(10_000):
            if not len(engine):
                break
            removed += engine.active_expire_cycle(0.0)
        assert removed == 2000

    def test_active_expire_cycle_on_no_ttl_keys(self) -> None:
        engine, _ = self.new()
        assert engine.active_expire_cycle(10.0) == 0
        engine.set(b"k", b"v")
        assert engine.active_expire_cycle(10.0) == 0
        assert engine.get(b"k") == b"v"
