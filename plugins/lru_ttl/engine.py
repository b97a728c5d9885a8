"""The ``lru_ttl`` storage engine: exact LRU over an ``OrderedDict``, Redis-style expiry.

Layout (invariants):

* ``_data`` maps key to value in recency order, least recently used first. Every access that
  counts as a use (get, set, incr_by, touch, expire_at, persist) moves the key to the end. It
  holds every logical database of the family (:mod:`.databases`): database 0's keys as the
  client's ``bytes``, database n's as ``bytes`` subclass instances; ``_db_sizes`` counts the
  latter per database and ``_sibling_keys`` in all, ``_db_expiring`` and ``_sibling_expiring``
  those of them with an expiry (kept only while other databases exist).
* ``_expires`` maps key to absolute expiry (Unix ms) for keys that have one, as Redis keeps a
  separate expires dict: keys without a TTL cost nothing on the expiry path, and active expiry
  samples only keys that can expire. Every key of ``_expires`` is in ``_data``.
* ``_bytes_used`` is the sum of :func:`cost_of` over ``_data``.
* A key whose expiry is <= now is dead: no method returns it; it is removed when met (lazy
  expiry) or sampled (``active_expire_cycle``). ``len()`` and ``stats().keys`` count it until then.

Limits: after a write leaves more than ``capacity`` keys or more than ``maxmemory_bytes``
bytes, keys are evicted by the ``maxmemory_policy`` (:mod:`.eviction`; ``allkeys-lru``, the
default, removes least recently used keys) until both limits hold, never the key just written.
A write whose key alone costs more than ``maxmemory_bytes``, or that would pass a limit when the
policy finds nothing to evict (``noeviction``, or a volatile policy with no key that has an
expiry), is undone and refused with Redis's ``OOM`` error. A victim already past its expiry
counts as expired, not evicted. ``restore`` (recovery, replication) never refuses: like Redis
loading its RDB file, it stores what it is given and evicts what the policy allows.

Mutations: with a listener set (``set_listener``, or its fast form ``set_change_listener``,
which gets the fields of each change and no :class:`~distcache_core.mutations.Mutation`),
every applied change is reported once, after
it is applied, in order: a write as ``SET`` with the expiry actually stored (the default TTL,
a kept TTL), ``restore`` as ``SET`` with cause ``RESTORE``, deletions as ``DEL`` (evictions with
cause ``EVICTED``, lazy and active expiry with cause ``EXPIRED``), expiry changes as ``EXPIRE``
(PERSIST: ``expire_at_ms`` None), a flush of a non-empty database as ``FLUSHDB``. Keys evicted
to make room for a write are reported before the write, as Redis evicts before it runs the
command. A write that changes nothing reports nothing. Without a listener the cost is one
``is not None`` test per write.

Why exact LRU. Measured with ``engine.get``/``engine.set`` called in a loop over prebuilt keys,
as the request path and asv call them: random access, 32-byte values, every "set evict" writes a
new key into a full engine, best of 3 runs, 2-core AMD EPYC, CPython 3.11, machine shared with
other jobs (about +-15% run to run). The alternative measured was CLOCK (second chance): the
same OrderedDict kept in insertion order, a set of keys used since the hand last passed them
(``set.add`` on a hit instead of ``move_to_end``), eviction re-queueing used keys.

==========================  ==========  ==========  ==========  ==========
ns per call (M ops/s)       1k keys     10k keys    100k keys   1M keys
==========================  ==========  ==========  ==========  ==========
get hit, exact LRU          135 (7.4)   167 (6.0)   704 (1.4)   1125 (0.9)
get hit, CLOCK              138 (7.3)   173 (5.8)   537 (1.9)    745 (1.3)
set existing, exact LRU     252 (4.0)   287 (3.5)  1049 (1.0)   1350 (0.7)
set existing, CLOCK         212 (4.7)   266 (3.8)   894 (1.1)   1181 (0.8)
set evict, exact LRU        389 (2.6)   415 (2.4)   905 (1.1)    651 (1.5)
set evict, CLOCK            440 (2.3)   462 (2.2)   825 (1.2)    658 (1.5)
==========================  ==========  ==========  ==========  ==========

Up to the default capacity (10k keys), or whenever the hot keys fit in the CPU caches, the two
are within noise. At 1M keys CLOCK makes a hit a third cheaper: ``move_to_end`` touches the
node and both neighbours (three cache misses), ``set.add`` one slot. It was not taken because
(1) its set holds the caller's key object, a second copy of every used key: 78 B per key
measured, +39% memory for 12-byte keys and 32-byte values, and memory is what a cache sells;
(2) when every key has been used, one eviction walks the whole keyspace (0.9 s measured at
1M keys) unless the sweep is capped, which weakens the promise further; (3) exact LRU is what
the model test can state simply. Most of the 1M-key cost is the dict lookup's own cache misses
(a bare ``dict.get`` loop takes ~400 ns there), which no LRU bookkeeping removes.

Cost per key: see :mod:`.accounting` (measured so that ``maxmemory_bytes`` bounds the process).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from distcache_core.contracts import EngineStats
from distcache_core.errors import NotIntegerError, OverflowCommandError
from distcache_core.mutations import (
    Cause,
    ChangeListener,
    MutationListener,
    Op,
    to_mutation_listener,
)
from distcache_core.protocol import string2ll

from .accounting import (
    EXPIRY_OVERHEAD_BYTES,
    PER_KEY_OVERHEAD_BYTES,
    cost_of,
    pin_malloc_mmap_threshold,
)
from .cursors import RoundRobinSampler, ScanSnapshots
from .databases import DatabaseKey, DatabaseViews, LruTtlDatabase
from .eviction import ALLKEYS_LRU, Eviction, ShuffledSampler, check_policy

#: Redis ``ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP``: keys with an expiry examined per sampling round.
EXPIRE_SAMPLE_SIZE = 20
#: Another round follows while more than this share of a sample had expired (Redis: 25%).
EXPIRE_REPEAT_PERCENT = 25

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: ``Op.SET`` as a plain int: an enum member costs a class attribute lookup per write.
_SET = int(Op.SET)


def unix_time_ms() -> int:
    """The wall clock in Unix milliseconds, the unit of every expiry time."""
    return time.time_ns() // 1_000_000


def _before_any_expiry() -> int:
    """The clock while loading: earlier than any expiry time."""
    return INT64_MIN


class LruTtlEngine(Eviction, DatabaseViews):
    """An in-memory keyspace with LRU eviction and Redis-style expiry; database 0 of its
    family (``open_database`` gives the others).

    :param capacity: most keys held, all databases together; 0 for no limit.
    :param maxmemory_bytes: most bytes held (see :func:`cost_of`), all databases together; 0
        for no limit.
    :param maxmemory_policy: what to evict at a limit (:data:`.eviction.POLICIES`).
    :param default_ttl_seconds: TTL given to keys written without one; 0 for none.
    :param clock_ms: returns the current Unix time in ms; tests pass a fake clock.
    """

    __slots__ = ()

    def __init__(self, *, capacity: int = 10000, maxmemory_bytes: int = 0,
                 default_ttl_seconds: int = 0, maxmemory_policy: str = ALLKEYS_LRU,
                 clock_ms: Callable[[], int] = unix_time_ms) -> None:
        if default_ttl_seconds < 0:
            raise ValueError(f"default_ttl_seconds must be >= 0, got {default_ttl_seconds!r}")
        self._data: OrderedDict[bytes, bytes] = OrderedDict()
        self._expires: dict[bytes, int] = {}
        # Bound methods kept in slots: the hot paths then skip a method lookup per call.
        self._data_get = self._data.get
        self._move_to_end = self._data.move_to_end
        self._pop_oldest = self._data.popitem
        self._clock_ms = clock_ms
        self._default_ttl_ms = default_ttl_seconds * 1000
        self._bytes_used = 0
        self._hits = self._misses = self._evictions = self._expired = 0
        self._scans = ScanSnapshots()
        self._expire_sampler = RoundRobinSampler()
        self._eviction_sampler = RoundRobinSampler()
        self._random_sampler = ShuffledSampler()
        self._listener: ChangeListener | None = None
        self._siblings: dict[int, LruTtlDatabase] = {}
        self._db_sizes: dict[int, int] = {}
        self._sibling_keys = 0
        self._db_expiring: dict[int, int] = {}
        self._sibling_expiring = 0
        self._index = 0
        self._type_index: dict[type, int] = {}
        self._capacity = self._maxmemory_bytes = 0
        self._key_limit = self._byte_limit = sys.maxsize
        self._policy = ALLKEYS_LRU
        self._inline_lru = True
        self.configure(capacity=capacity, maxmemory_bytes=maxmemory_bytes,
                       maxmemory_policy=maxmemory_policy)

    @classmethod
    def from_settings(cls, settings: Any) -> LruTtlEngine:
        """Build from a :class:`~distcache_plugins.lru_ttl.settings.LruTtlSettings` (or None
        for the defaults); the factory registered under the name ``lru_ttl``."""
        pin_malloc_mmap_threshold()
        if settings is None:
            return cls()
        return cls(capacity=settings.capacity, maxmemory_bytes=settings.maxmemory_bytes,
                   default_ttl_seconds=settings.default_ttl_seconds,
                   maxmemory_policy=settings.maxmemory_policy)

    # --- hot paths: called per request, kept flat ---------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        value = self._data_get(key)
        if value is None:
            self._misses += 1
            return None
        if self._expires:
            expire_at_ms = self._expires.get(key)
            if expire_at_ms is not None and expire_at_ms <= self._clock_ms():
                self._remove_expired(key)
                self._misses += 1
                return None
        self._hits += 1
        self._move_to_end(key)
        return value

    def set(self, key: bytes, value: bytes, expire_at_ms: int | None = None, *,
            keep_ttl: bool = False) -> None:
        data = self._data
        old = self._data_get(key)
        data[key] = value
        if expire_at_ms is not None or self._expires or self._default_ttl_ms:
            self._finish_set_with_expiry(key, value, old, expire_at_ms, keep_ttl)
            return
        # No TTL anywhere (so keep_ttl is moot): the common case, kept flat.
        if old is not None:
            self._move_to_end(key)
            self._bytes_used += len(value) - len(old)
        else:
            if self._siblings:
                self._count_added(key)
            if len(data) <= self._key_limit:
                self._bytes_used += len(key) + len(value) + PER_KEY_OVERHEAD_BYTES
            elif self._inline_lru:
                # A full cache: one key in, the least recently used one out, inline because
                # the general _make_room call and loop cost ~40% of this method.
                evicted_key, evicted_value = self._pop_oldest(False)
                self._bytes_used += (len(key) + len(value) - len(evicted_key)
                                     - len(evicted_value))
                self._evictions += 1
                if self._siblings:
                    self._count_removed(evicted_key)
                if self._listener is not None:
                    self._emit(Op.DEL, evicted_key, None, None, Cause.EVICTED)
            else:
                self._bytes_used += len(key) + len(value) + PER_KEY_OVERHEAD_BYTES
                self._make_room(key, None, None)
        if self._bytes_used > self._byte_limit:
            self._make_room(key, old, None)
        if self._listener is not None:
            # _emit inlined for database 0 (a plain bytes key): one Python call per write.
            if type(key) is bytes:
                self._listener(_SET, self._index, key, value, None, 0)
            else:
                self._emit(_SET, key, value, None)

    # --- the rest of the contract ---------------------------------------------------------------

    def peek(self, key: bytes) -> bytes | None:
        return self._live_value(key)

    def restore(self, key: bytes, value: bytes, expire_at_ms: int | None, *,
                cause: Cause = Cause.RESTORE) -> None:
        data = self._data
        if expire_at_ms is not None and expire_at_ms <= self._clock_ms():
            # Already dead: nothing to store, and a current value is replaced by nothing.
            if self._live_value(key) is not None:
                self._remove(key)
                if self._listener is not None:
                    self._emit(Op.DEL, key, None, None, cause)
            return
        old = self._data_get(key)
        old_expire_at_ms = self._expires.get(key)
        data[key] = value
        if old is None:
            if self._siblings:
                self._count_added(key)
            self._bytes_used += cost_of(key, value)
        else:
            self._move_to_end(key)
            self._bytes_used += len(value) - len(old)
        if expire_at_ms is None:
            if old_expire_at_ms is not None:
                del self._expires[key]
                self._bytes_used -= EXPIRY_OVERHEAD_BYTES
        else:
            if old_expire_at_ms is None:
                self._bytes_used += EXPIRY_OVERHEAD_BYTES
            self._expires[key] = expire_at_ms
        if self._siblings:
            self._count_expiry(key, (expire_at_ms is not None) - (old_expire_at_ms is not None))
        if len(data) > self._key_limit or self._bytes_used > self._byte_limit:
            # Recovery and replication never refuse; a command's copy does, as SET would.
            self._make_room(key, old, old_expire_at_ms, refuse=cause is Cause.COMMAND)
        if self._listener is not None:
            self._emit(Op.SET, key, value, expire_at_ms, cause)

    def restore_many(self, keys: Sequence[bytes], values: Sequence[bytes],
                     expiries: Iterable[int | None]) -> None:
        """``restore`` of each (key, value, expiry), for recovery: a block of keys not held yet
        goes in with C-level dict updates (restore costs ~2.3 us a key, a dict update ~0.15 us);
        anything else (a key held already or repeated, a listener) takes the per-key path."""
        self._restore_many(keys, values, expiries, 0)

    def _restore_many(self, keys: Sequence[bytes], values: Sequence[bytes],
                      expiries: Iterable[int | None], db: int) -> None:
        data = self._data
        expiries = list(expiries)
        if (self._listener is not None or not data.keys().isdisjoint(keys)
                or len(set(keys)) != len(keys)):
            for key, value, expire_at_ms in zip(keys, values, expiries, strict=True):
                self.restore(key, value, expire_at_ms)
            return
        expiring = [(key, at) for key, at in zip(keys, expiries, strict=True) if at is not None]
        if expiring:
            now = self._clock_ms()
            dead = {key for key, at in expiring if at <= now}
            if dead:  # already expired: not stored, as restore would not
                kept = [(key, value) for key, value in zip(keys, values, strict=True)
                        if key not in dead]
                keys, values = [key for key, _ in kept], [value for _, value in kept]
                expiring = [(key, at) for key, at in expiring if key not in dead]
        data.update(zip(keys, values, strict=True))
        self._expires.update(expiring)
        self._bytes_used += (sum(map(len, keys)) + sum(map(len, values))
                             + PER_KEY_OVERHEAD_BYTES * len(keys)
                             + EXPIRY_OVERHEAD_BYTES * len(expiring))
        if db:
            self._db_sizes[db] += len(keys)
            self._sibling_keys += len(keys)
            self._db_expiring[db] += len(expiring)
            self._sibling_expiring += len(expiring)
        if len(data) > self._key_limit or self._bytes_used > self._byte_limit:
            self._make_room(None, None, None, refuse=False)

    def set_listener(self, listener: MutationListener | None) -> None:
        # One listener for the family: every database reports through the root.
        self._listener = None if listener is None else to_mutation_listener(listener)

    def set_change_listener(self, listener: ChangeListener | None) -> None:
        """The fast form of :meth:`set_listener`: each change as its fields, no
        :class:`Mutation` built (see :mod:`distcache_core.mutations`)."""
        self._listener = listener

    def delete(self, key: bytes) -> bool:
        value = self._data.pop(key, None)
        if value is None:
            return False
        self._bytes_used -= len(key) + len(value) + PER_KEY_OVERHEAD_BYTES
        if self._siblings:
            self._count_removed(key)
        if self._expires:
            expire_at_ms = self._expires.pop(key, None)
            if expire_at_ms is not None:
                self._bytes_used -= EXPIRY_OVERHEAD_BYTES
                if self._siblings:
                    self._count_expiry(key, -1)
            if expire_at_ms is not None and expire_at_ms <= self._clock_ms():
                self._expired += 1
                if self._listener is not None:
                    self._emit(Op.DEL, key, None, None, Cause.EXPIRED)
                return False
        if self._listener is not None:
            self._emit(Op.DEL, key, None, None)
        return True

    def exists(self, key: bytes) -> bool:
        return self._live_value(key) is not None

    def touch(self, key: bytes) -> bool:
        if self._live_value(key) is None:
            return False
        self._move_to_end(key)
        return True

    def expire_at(self, key: bytes, expire_at_ms: int) -> bool:
        if self._live_value(key) is None:
            return False
        if expire_at_ms <= self._clock_ms():
            # Redis deletes at once and does not count the key as expired (expireGenericCommand).
            self._remove(key)
            if self._listener is not None:
                self._emit(Op.DEL, key, None, None)
        else:
            if key not in self._expires:
                self._bytes_used += EXPIRY_OVERHEAD_BYTES
                if self._siblings:
                    self._count_expiry(key, 1)
            self._expires[key] = expire_at_ms
            self._move_to_end(key)
            if self._listener is not None:
                self._emit(Op.EXPIRE, key, None, expire_at_ms)
            if self._bytes_used > self._byte_limit:
                # An expiry costs memory too; EXPIRE is never refused for it (not denyoom in
                # Redis), so other keys make room.
                self._make_room(key, None, None, refuse=False)
        return True

    def get_expire_at(self, key: bytes) -> int | None:
        if self._live_value(key) is None:
            raise KeyError(key)
        return self._expires.get(key)

    def memory_usage(self, key: bytes) -> int | None:
        """What the key counts against ``maxmemory_bytes`` (MEMORY USAGE); None if missing."""
        value = self._live_value(key)
        if value is None:
            return None
        expiry = EXPIRY_OVERHEAD_BYTES if key in self._expires else 0
        return cost_of(key, value) + expiry

    def ttl_ms(self, key: bytes) -> int:
        if self._live_value(key) is None:
            return -2
        expire_at_ms = self._expires.get(key)
        if expire_at_ms is None:
            return -1
        return expire_at_ms - self._clock_ms()

    def persist(self, key: bytes) -> bool:
        if self._live_value(key) is None or key not in self._expires:
            return False
        del self._expires[key]
        self._bytes_used -= EXPIRY_OVERHEAD_BYTES
        if self._siblings:
            self._count_expiry(key, -1)
        self._move_to_end(key)
        if self._listener is not None:
            self._emit(Op.EXPIRE, key, None, None)
        return True

    def incr_by(self, key: bytes, delta: int) -> int:
        if not INT64_MIN <= delta <= INT64_MAX:
            raise NotIntegerError()
        old = self._live_value(key)
        if old is None:
            result = delta
        else:
            # Redis parses the stored string with string2ll: "01", "+1", " 1", "-0" are not
            # integers.
            current = string2ll(old)
            if current is None:
                raise NotIntegerError()
            result = current + delta
        if not INT64_MIN <= result <= INT64_MAX:
            raise OverflowCommandError()
        encoded = b"%d" % result
        if old is None:
            self.set(key, encoded)
        else:
            # INCR keeps the key's expiry and counts no hit or miss (Redis lookupKeyWrite).
            self._data[key] = encoded
            self._move_to_end(key)
            self._bytes_used += len(encoded) - len(old)
            expire_at_ms = self._expires.get(key)
            if self._bytes_used > self._byte_limit:
                self._make_room(key, old, expire_at_ms)
            if self._listener is not None:
                self._emit(Op.SET, key, encoded, expire_at_ms)
        return result

    def keys(self, pattern: bytes = b"*") -> list[bytes]:
        return self._keys_of(bytes, pattern)

    def scan(self, cursor: int, match: bytes | None = None,
             count: int = 10) -> tuple[int, list[bytes]]:
        return self._scan_of(bytes, self._scans, cursor, match, count)

    def random_key(self) -> bytes | None:
        return self._random_key_of(bytes)

    def __len__(self) -> int:
        return len(self._data) - self._sibling_keys

    def items(self) -> Iterator[tuple[bytes, bytes, int | None]]:
        return self._items_of(bytes)

    def clear(self) -> None:
        # Counters survive, as Redis keeps its stats across FLUSHALL.
        self._scans.clear()
        self._clear_database(bytes)

    def open_database(self, index: int) -> LruTtlEngine | LruTtlDatabase:
        """The engine of logical database ``index`` (SELECT), sharing this one's keyspace,
        limits, eviction order and listener (see :mod:`.databases`); the same object for the
        same index."""
        if index < 0:
            raise ValueError(f"database index must be >= 0, got {index}")
        if index == 0:
            return self
        database = self._siblings.get(index)
        if database is None:
            database = self._siblings[index] = LruTtlDatabase(self, index)
            self._db_sizes[index] = self._db_expiring[index] = 0
            self._type_index[database.key_type] = index
        return database

    def set_database_index(self, index: int) -> None:
        """SWAPDB moved this database to number ``index``: its mutations say so from now on.
        (``open_database(i)`` keeps answering with the database first opened as ``i``; the
        node's table of databases tracks where each one now is.)"""
        self._index = index

    def configure(self, *, capacity: int | None = None, maxmemory_bytes: int | None = None,
                  maxmemory_policy: str | None = None) -> None:
        """Change limits at run time (CONFIG SET); None leaves a setting alone. Lowering a
        limit evicts at once by the policy in force (Redis does the same)."""
        for name, limit in (("capacity", capacity), ("maxmemory_bytes", maxmemory_bytes)):
            if limit is not None and (not isinstance(limit, int) or limit < 0):
                raise ValueError(f"{name} must be an integer >= 0, got {limit!r}")
        if maxmemory_policy is not None:
            self._policy = check_policy(maxmemory_policy)
            self._inline_lru = maxmemory_policy == ALLKEYS_LRU
        if capacity is not None:
            self._capacity = capacity
            # 0 means unlimited; a huge limit keeps the hot path to a single comparison.
            self._key_limit = capacity or sys.maxsize
        if maxmemory_bytes is not None:
            self._maxmemory_bytes = maxmemory_bytes
            self._byte_limit = maxmemory_bytes or sys.maxsize
        if len(self._data) > self._key_limit or self._bytes_used > self._byte_limit:
            self._make_room(None, None, None, refuse=False)

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        """Suspend expiry for the block: no key counts as expired, so replaying a log (or a
        snapshot) whose expiry times passed meanwhile gives its end state, where a SET whose
        expiry a later EXPIRE moved would otherwise vanish half-way. Redis expires nothing
        while it loads its files either. Keys dead by the end expire as usual afterwards.
        Meant for ``restore``/``delete``/``expire_at``/``persist``/``clear`` (what
        :func:`~distcache_core.mutations.replay` calls); every database of the family."""
        clock = self._clock_ms
        self._clock_ms = _before_any_expiry
        try:
            yield
        finally:
            self._clock_ms = clock

    @property
    def maxmemory_bytes(self) -> int:
        """The byte limit in force (0: none); assignable."""
        return self._maxmemory_bytes

    @maxmemory_bytes.setter
    def maxmemory_bytes(self, value: int) -> None:
        self.configure(maxmemory_bytes=value)

    @property
    def maxmemory_policy(self) -> str:
        """The eviction policy in force; assignable."""
        return self._policy

    @maxmemory_policy.setter
    def maxmemory_policy(self, value: str) -> None:
        self.configure(maxmemory_policy=value)

    def active_expire_cycle(self, time_budget_ms: float) -> int:
        # Redis activeExpireCycle: sample keys with an expiry, remove the dead ones, go again
        # while more than 25% of the sample was dead and the budget lasts. Samples are taken
        # round-robin (RoundRobinSampler) rather than at random: a dict has no random access.
        expires = self._expires
        next_sample = self._expire_sampler.next_sample
        deadline = time.perf_counter() + time_budget_ms / 1000
        now = self._clock_ms()
        removed = 0
        while expires:
            sample = next_sample(expires, EXPIRE_SAMPLE_SIZE)
            examined = dead = 0
            for key in sample:
                expire_at_ms = expires.get(key)
                if expire_at_ms is None:
                    continue  # gone since the snapshot; not a sample of the live keys
                examined += 1
                if expire_at_ms <= now:
                    self._remove_expired(key)
                    dead += 1
            removed += dead
            if time.perf_counter() >= deadline:
                break
            if examined and dead * 100 <= examined * EXPIRE_REPEAT_PERCENT:
                break
        return removed

    def stats(self) -> EngineStats:
        return self._stats_of(bytes)

    # --- internals ------------------------------------------------------------------------------

    def _finish_set_with_expiry(self, key: bytes, value: bytes, old: bytes | None,
                                expire_at_ms: int | None, keep_ttl: bool) -> None:
        """``set`` once the value is stored, when some TTL is involved."""
        expires = self._expires
        old_expire_at_ms = None
        if old is None:
            if self._siblings:
                self._count_added(key)
            self._bytes_used += len(key) + len(value) + PER_KEY_OVERHEAD_BYTES
        else:
            self._move_to_end(key)
            self._bytes_used += len(value) - len(old)
            old_expire_at_ms = expires.get(key)
            if old_expire_at_ms is not None and old_expire_at_ms <= self._clock_ms():
                # The overwritten key was dead: it expired first (Redis counts it so), and its
                # TTL must not survive KEEPTTL.
                del expires[key]
                self._bytes_used -= EXPIRY_OVERHEAD_BYTES
                if self._siblings:
                    self._count_expiry(key, -1)
                self._expired += 1
                if self._listener is not None:
                    self._emit(Op.DEL, key, None, None, Cause.EXPIRED)
                old = old_expire_at_ms = None
        if expire_at_ms is not None:
            if expire_at_ms <= self._clock_ms():
                # SET with a past EXAT/PXAT leaves no key (Redis: checkAlreadyExpired).
                self._remove(key)
                if old is not None and self._listener is not None:
                    self._emit(Op.DEL, key, None, None)
                return
            if old_expire_at_ms is None:
                self._bytes_used += EXPIRY_OVERHEAD_BYTES
                if self._siblings:
                    self._count_expiry(key, 1)
            expires[key] = expire_at_ms
        elif keep_ttl and old is not None:
            expire_at_ms = old_expire_at_ms
        elif self._default_ttl_ms:
            if old_expire_at_ms is None:
                self._bytes_used += EXPIRY_OVERHEAD_BYTES
                if self._siblings:
                    self._count_expiry(key, 1)
            expire_at_ms = expires[key] = self._clock_ms() + self._default_ttl_ms
        elif old_expire_at_ms is not None:
            del expires[key]
            self._bytes_used -= EXPIRY_OVERHEAD_BYTES
            if self._siblings:
                self._count_expiry(key, -1)
        if len(self._data) > self._key_limit or self._bytes_used > self._byte_limit:
            self._make_room(key, old, old_expire_at_ms)
        if self._listener is not None:
            self._emit(Op.SET, key, value, expire_at_ms)

__all__ = ["PER_KEY_OVERHEAD_BYTES", "DatabaseKey", "LruTtlDatabase", "LruTtlEngine", "cost_of",
           "unix_time_ms"]
