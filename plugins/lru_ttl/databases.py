"""Logical databases (SELECT n) of one ``lru_ttl`` engine, sharing its keyspace and its limits.

Design: every database of a family lives in the root engine's one ``OrderedDict``, so the key
count, the byte budget, the eviction policy and the LRU order are global, as in Redis (one
``maxmemory`` for the whole server, eviction candidates taken from every database). Database
0 stores the client's ``bytes`` keys as they are, so its hot path is exactly the single-database
one; database ``n > 0`` stores each key as an instance of its own ``bytes`` subclass
(:func:`database_key_type`): same bytes, but never equal to a key of another database and hashed
differently, so the two cannot collide in the shared dict. Those keys cost a little more (a
Python-level ``__hash__``/``__eq__`` per lookup, and about 16 bytes more per key, not counted
in ``bytes_used``): databases other than 0 are the rare case.

:class:`LruTtlDatabase` is the engine a client of database ``n`` talks to: a thin view that
turns keys into database-``n`` keys and back and calls the root engine, which alone holds state,
counts, evicts, expires and emits mutations (with ``db = n``).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from itertools import chain, islice
from typing import TYPE_CHECKING

from distcache_core.contracts import EngineStats
from distcache_core.globmatch import compile_glob
from distcache_core.mutations import Cause, ChangeListener, MutationListener, Op

from .cursors import ScanSnapshots
from .state import KeyspaceState
from .tablewalk import TableWalk

if TYPE_CHECKING:
    from .engine import LruTtlEngine


class DatabaseKey(bytes):
    """Base of the per-database key types; ``db`` is the database index."""

    __slots__ = ()
    db = 0


def database_key_type(index: int) -> type[DatabaseKey]:
    """A ``bytes`` subclass for keys of database ``index`` (> 0)."""
    salt = hash(("distcache database", index))

    class Key(DatabaseKey):
        __slots__ = ()
        db = index

        def __eq__(self, other: object) -> bool:
            return type(other) is Key and bytes.__eq__(self, other)  # type: ignore[arg-type]

        def __ne__(self, other: object) -> bool:
            return not (type(other) is Key and bytes.__eq__(self, other))  # type: ignore[arg-type]

        def __hash__(self) -> int:
            return bytes.__hash__(self) ^ salt

    Key.__name__ = Key.__qualname__ = f"Database{index}Key"
    return Key


#: Iterating an OrderedDict follows its linked list, a cache miss per key (284 ms for 1M keys
#: measured); ``dict.keys`` walks the underlying table in memory order (17 ms). Callers that
#: do not need recency order (KEYS, SCAN snapshots, RANDOMKEY, items) use it.
_table_keys = dict.keys


class DatabaseViews(KeyspaceState):
    """The root engine's reads and flushes of one database of the shared keyspace; database 0
    passes ``bytes`` as ``key_type``, database n its :func:`database_key_type`."""

    __slots__ = ()

    def _table_keys_of(self, key_type: type[bytes]) -> Collection[bytes]:
        """The keys of one database in table order: all of them while only database 0 has
        keys, else a filtered copy."""
        if key_type is bytes and not self._sibling_keys:
            return _table_keys(self._data)
        return [key for key in _table_keys(self._data) if type(key) is key_type]

    def _keys_of(self, key_type: type[bytes], pattern: bytes) -> list[bytes]:
        candidates = self._table_keys_of(key_type)
        if self._expires:
            is_live = self._is_live_predicate()
            candidates = [key for key in candidates if is_live(key)]
        found = list(candidates) if key_type is bytes else [bytes(key) for key in candidates]
        # Redis treats the lone "*" as "every key", even the empty one (keysCommand allkeys).
        if pattern != b"*":
            match = compile_glob(pattern)
            found = [key for key in found if match(key)]
        return found

    def _scan_of(self, key_type: type[bytes], scans: ScanSnapshots, cursor: int,
                 match: bytes | None, count: int) -> tuple[int, list[bytes]]:
        # See ScanSnapshots: keys removed since the iteration started are filtered out here.
        next_cursor, batch = scans.step(cursor, self._table_keys_of(key_type), count)
        data = self._data
        batch = [key for key in batch if key in data]
        if self._expires:
            is_live = self._is_live_predicate()
            batch = [key for key in batch if is_live(key)]
        if key_type is not bytes:
            batch = [bytes(key) for key in batch]
        if match is not None and match != b"*":
            glob = compile_glob(match)
            batch = [key for key in batch if glob(key)]
        return next_cursor, batch

    def _random_key_of(self, key_type: type[bytes]) -> bytes | None:
        keys = self._table_keys_of(key_type)
        size = len(keys)
        if not size:
            return None
        # An OrderedDict has no random access: walk from a random offset (O(n) worst case, a
        # rare command), wrapping, to the first live key.
        offset = random.randrange(size)
        walk: Iterator[bytes] = chain(islice(keys, offset, None), islice(keys, offset))
        if self._expires:
            is_live = self._is_live_predicate()
            walk = (key for key in walk if is_live(key))
        found = next(walk, None)
        return found if found is None or key_type is bytes else bytes(found)

    def _items_of(self, key_type: type[bytes]) -> Iterator[tuple[bytes, bytes, int | None]]:
        # The caller may write to the engine between items (a snapshot yields to the event
        # loop): the table is walked in place a chunk at a time (.tablewalk says how), never
        # copied, and a key removed after its chunk was read is skipped here.
        data, expires = self._data, self._expires
        now = self._clock_ms()
        for chunk in TableWalk(data):
            for key in chunk:
                if type(key) is not key_type:
                    continue
                value = data.get(key)
                if value is None:
                    continue
                expire_at_ms = expires.get(key)
                if expire_at_ms is not None and expire_at_ms <= now:
                    continue
                yield (key if key_type is bytes else bytes(key)), value, expire_at_ms

    def _clear_database(self, key_type: type[bytes]) -> None:
        data = self._data
        if key_type is bytes and not self._sibling_keys:
            if not data:
                return
            data.clear()
            self._expires.clear()
            self._bytes_used = 0
            self._expire_sampler.clear()
            self._eviction_sampler.clear()
            self._random_sampler.clear()
            if self._listener is not None:
                self._emit(Op.FLUSHDB, b"", None, None)
            return
        doomed = [key for key in _table_keys(data) if type(key) is key_type]
        if not doomed:
            return
        for key in doomed:
            self._remove(key)
        if self._listener is not None:
            db = self._index if key_type is bytes else self._type_index[key_type]
            self._listener(Op.FLUSHDB, db, b"", None, None, 0)

    def _stats_of(self, key_type: type[bytes]) -> EngineStats:
        if key_type is bytes:
            keys = len(self._data) - self._sibling_keys
            with_expiry = len(self._expires) - self._sibling_expiring
        else:
            db = getattr(key_type, "db", 0)
            keys = self._db_sizes[db]
            with_expiry = self._db_expiring[db]
        return EngineStats(
            keys=keys, bytes_used=self._bytes_used, hits=self._hits,
            misses=self._misses, evictions=self._evictions, expired=self._expired,
            keys_with_expiry=with_expiry, capacity=self._capacity,
            maxmemory_bytes=self._maxmemory_bytes, maxmemory_policy=self._policy,
        )


class LruTtlDatabase:
    """Database ``index`` (> 0) of an :class:`~distcache_plugins.lru_ttl.engine.LruTtlEngine`
    family: the full :class:`~distcache_core.contracts.StorageEngine` contract over the root's
    shared keyspace. Build it with ``root.open_database(index)``."""

    __slots__ = ("index", "_root", "_key", "_scans")

    def __init__(self, root: LruTtlEngine, index: int) -> None:
        self.index = index
        self._root = root
        self._key = database_key_type(index)
        self._scans = ScanSnapshots()

    @property
    def key_type(self) -> type[DatabaseKey]:
        return self._key

    def get(self, key: bytes) -> bytes | None:
        return self._root.get(self._key(key))

    def peek(self, key: bytes) -> bytes | None:
        return self._root.peek(self._key(key))

    def set(self, key: bytes, value: bytes, expire_at_ms: int | None = None, *,
            keep_ttl: bool = False) -> None:
        self._root.set(self._key(key), value, expire_at_ms, keep_ttl=keep_ttl)

    def restore(self, key: bytes, value: bytes, expire_at_ms: int | None, *,
                cause: Cause = Cause.RESTORE) -> None:
        self._root.restore(self._key(key), value, expire_at_ms, cause=cause)

    def restore_many(self, keys: Sequence[bytes], values: Sequence[bytes],
                     expiries: Iterable[int | None]) -> None:
        self._root._restore_many(list(map(self._key, keys)), values, expiries, self._key.db)

    def set_listener(self, listener: MutationListener | None) -> None:
        self._root.set_listener(listener)

    def set_change_listener(self, listener: ChangeListener | None) -> None:
        self._root.set_change_listener(listener)

    def delete(self, key: bytes) -> bool:
        return self._root.delete(self._key(key))

    def exists(self, key: bytes) -> bool:
        return self._root.exists(self._key(key))

    def touch(self, key: bytes) -> bool:
        return self._root.touch(self._key(key))

    def expire_at(self, key: bytes, expire_at_ms: int) -> bool:
        return self._root.expire_at(self._key(key), expire_at_ms)

    def get_expire_at(self, key: bytes) -> int | None:
        try:
            return self._root.get_expire_at(self._key(key))
        except KeyError:
            raise KeyError(key) from None

    def ttl_ms(self, key: bytes) -> int:
        return self._root.ttl_ms(self._key(key))

    def memory_usage(self, key: bytes) -> int | None:
        return self._root.memory_usage(self._key(key))

    def persist(self, key: bytes) -> bool:
        return self._root.persist(self._key(key))

    def incr_by(self, key: bytes, delta: int) -> int:
        return self._root.incr_by(self._key(key), delta)

    def keys(self, pattern: bytes = b"*") -> list[bytes]:
        return self._root._keys_of(self._key, pattern)

    def scan(self, cursor: int, match: bytes | None = None,
             count: int = 10) -> tuple[int, list[bytes]]:
        return self._root._scan_of(self._key, self._scans, cursor, match, count)

    def random_key(self) -> bytes | None:
        return self._root._random_key_of(self._key)

    def __len__(self) -> int:
        return self._root._db_sizes[self._key.db]

    def items(self) -> Iterator[tuple[bytes, bytes, int | None]]:
        return self._root._items_of(self._key)

    def clear(self) -> None:
        self._scans.clear()
        self._root._clear_database(self._key)

    def open_database(self, index: int) -> object:
        return self._root.open_database(index)

    def configure(self, *, capacity: int | None = None, maxmemory_bytes: int | None = None,
                  maxmemory_policy: str | None = None) -> None:
        self._root.configure(capacity=capacity, maxmemory_bytes=maxmemory_bytes,
                             maxmemory_policy=maxmemory_policy)

    @property
    def maxmemory_bytes(self) -> int:
        return self._root.maxmemory_bytes

    @property
    def maxmemory_policy(self) -> str:
        return self._root.maxmemory_policy

    def set_database_index(self, index: int) -> None:
        """SWAPDB moved this database to number ``index`` (see the root's method)."""
        self.index = index
        self._root._type_index[self._key] = index

    def loading(self) -> AbstractContextManager[None]:
        return self._root.loading()

    def active_expire_cycle(self, time_budget_ms: float) -> int:
        # One expires dict for the family: a cycle run on any database serves all of them.
        return self._root.active_expire_cycle(time_budget_ms)

    def stats(self) -> EngineStats:
        return self._root._stats_of(self._key)
