"""The per-database counts of an ``lru_ttl`` family (keys, keys with an expiry) against a walk
of the shared dicts, after random operations on three databases: writes with and without a
TTL, KEEPTTL, restore and bulk restore, deletes, EXPIRE in the future and the past, PERSIST,
lazy and active expiry, flushes, and evictions by every policy (including refused writes,
which are undone). ``stats()`` reads the counts kept on the way (no walk of ``_expires``), so
they must never drift from what the dicts hold."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from distcache_core.errors import CommandError
from distcache_core.testing import FakeClock
from distcache_plugins.lru_ttl.engine import PER_KEY_OVERHEAD_BYTES, LruTtlEngine

KEYS = st.sampled_from([b"a", b"b", b"c", b"d"])
DBS = st.sampled_from([0, 1, 2])
OFFSETS_MS = st.integers(min_value=-20, max_value=500)
POLICIES = ["allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl", "noeviction"]


class DatabaseCounts(RuleBasedStateMachine):
    @initialize(capacity=st.sampled_from([0, 3, 5]),
                maxmemory_bytes=st.sampled_from([0, PER_KEY_OVERHEAD_BYTES * 4 + 500]),
                default_ttl_seconds=st.sampled_from([0, 0, 1]),
                policy=st.sampled_from(POLICIES))
    def start(self, capacity: int, maxmemory_bytes: int, default_ttl_seconds: int,
              policy: str) -> None:
        self.clock = FakeClock()
        self.root = LruTtlEngine(capacity=capacity, maxmemory_bytes=maxmemory_bytes,
                                 default_ttl_seconds=default_ttl_seconds, clock_ms=self.clock,
                                 maxmemory_policy=policy)
        self.dbs = [self.root, self.root.open_database(1), self.root.open_database(2)]

    def at(self, offset_ms: int) -> int:
        return self.clock() + offset_ms

    @rule(db=DBS, key=KEYS, value=st.binary(max_size=8),
          offset=st.one_of(st.none(), OFFSETS_MS), keep_ttl=st.booleans())
    def set(self, db: int, key: bytes, value: bytes, offset: int | None,
            keep_ttl: bool) -> None:
        try:
            self.dbs[db].set(key, value, None if offset is None else self.at(offset),
                             keep_ttl=keep_ttl and offset is None)
        except CommandError:  # OOM: the write was undone
            pass

    @rule(db=DBS, key=KEYS, offset=st.one_of(st.none(), OFFSETS_MS))
    def restore(self, db: int, key: bytes, offset: int | None) -> None:
        self.dbs[db].restore(key, b"r", None if offset is None else self.at(offset))

    @rule(db=DBS, offsets=st.lists(st.one_of(st.none(), OFFSETS_MS), min_size=1, max_size=3))
    def restore_many(self, db: int, offsets: list[int | None]) -> None:
        keys = [b"bulk%d" % i for i in range(len(offsets))]
        self.dbs[db].restore_many(keys, [b"v"] * len(keys),
                                  [None if o is None else self.at(o) for o in offsets])

    @rule(db=DBS, key=KEYS)
    def delete(self, db: int, key: bytes) -> None:
        self.dbs[db].delete(key)

    @rule(db=DBS, key=KEYS, offset=OFFSETS_MS)
    def expire(self, db: int, key: bytes, offset: int) -> None:
        self.dbs[db].expire_at(key, self.at(offset))

    @rule(db=DBS, key=KEYS)
    def persist(self, db: int, key: bytes) -> None:
        self.dbs[db].persist(key)

    @rule(db=DBS, key=KEYS)
    def get(self, db: int, key: bytes) -> None:
        self.dbs[db].get(key)

    @rule(ms=st.integers(min_value=0, max_value=300))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def active_expire(self) -> None:
        self.root.active_expire_cycle(60_000.0)

    @rule(db=DBS)
    def flush(self, db: int) -> None:
        self.dbs[db].clear()

    @invariant()
    def counts_match_a_walk(self) -> None:
        root = self.root
        for db in self.dbs:
            key_type = bytes if db is root else db.key_type
            stats = db.stats()
            assert stats.keys == sum(1 for key in root._data if type(key) is key_type)
            assert stats.keys_with_expiry == sum(1 for key in root._expires
                                                 if type(key) is key_type)


TestDatabaseCounts = DatabaseCounts.TestCase
TestDatabaseCounts.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)
