"""The state every part of the ``lru_ttl`` engine shares, and the primitives on it.

:class:`KeyspaceState` declares the slots of an engine (the invariants are in
:mod:`.engine`) and the few operations every part needs: removing a key, reporting a change,
keeping the per-database counts. The engine, its eviction (:mod:`.eviction`) and its
per-database views (:mod:`.databases`) build on it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from distcache_core.mutations import Cause, ChangeListener, Op

from .accounting import EXPIRY_OVERHEAD_BYTES, PER_KEY_OVERHEAD_BYTES

if TYPE_CHECKING:
    from .cursors import RoundRobinSampler, ScanSnapshots
    from .databases import LruTtlDatabase
    from .eviction import ShuffledSampler


def database_of(key: bytes) -> int:
    """The database a stored key was created for (its slot in ``_db_sizes``): 0 for plain
    ``bytes``, else its type's number. SWAPDB may since have renumbered that database."""
    return getattr(key, "db", 0)


class KeyspaceState:
    __slots__ = (
        "_data", "_expires", "_data_get", "_move_to_end", "_pop_oldest", "_clock_ms",
        "_capacity", "_maxmemory_bytes", "_policy", "_inline_lru",
        "_key_limit", "_byte_limit", "_default_ttl_ms", "_bytes_used",
        "_hits", "_misses", "_evictions", "_expired",
        "_scans", "_expire_sampler", "_eviction_sampler", "_random_sampler",
        "_listener", "_siblings", "_db_sizes", "_sibling_keys", "_db_expiring",
        "_sibling_expiring", "_index", "_type_index",
    )
    _data: OrderedDict[bytes, bytes]
    _expires: dict[bytes, int]
    _data_get: Callable[[bytes], bytes | None]
    _move_to_end: Callable[[bytes], None]
    _pop_oldest: Callable[[bool], tuple[bytes, bytes]]
    _clock_ms: Callable[[], int]
    _capacity: int
    _maxmemory_bytes: int
    _policy: str
    _inline_lru: bool
    _key_limit: int
    _byte_limit: int
    _default_ttl_ms: int
    _bytes_used: int
    _hits: int
    _misses: int
    _evictions: int
    _expired: int
    _scans: ScanSnapshots
    _expire_sampler: RoundRobinSampler
    _eviction_sampler: RoundRobinSampler
    _random_sampler: ShuffledSampler
    #: The fast form (see :mod:`distcache_core.mutations`); ``set_listener`` wraps a
    #: Mutation listener into one.
    _listener: ChangeListener | None
    _siblings: dict[int, LruTtlDatabase]
    _db_sizes: dict[int, int]
    _sibling_keys: int
    #: Keys with an expiry per database n > 0, and in all of them: kept like ``_db_sizes`` so
    #: ``stats().keys_with_expiry`` needs no walk of ``_expires`` (which cost ~70 ms per
    #: database per call with a million keys, each INFO, scrape and dashboard sample).
    _db_expiring: dict[int, int]
    _sibling_expiring: int
    #: The database number this root engine's own keys (plain ``bytes``) are reported under,
    #: and the one of each other database's key type: SWAPDB renumbers them.
    _index: int
    _type_index: dict[type, int]

    def _emit(self, op: int, key: bytes, value: bytes | None, expire_at_ms: int | None,
              cause: int = 0) -> None:
        """Report one change to the listener (the caller checked there is one); ``cause`` 0
        is ``Cause.COMMAND``."""
        listener = self._listener
        if listener is None:
            return
        if type(key) is bytes:
            listener(op, self._index, key, value, expire_at_ms, cause)
        else:
            listener(op, self._type_index[type(key)], bytes(key), value, expire_at_ms, cause)

    def _count_added(self, key: bytes) -> None:
        """A new key entered ``_data`` while other databases exist."""
        if type(key) is not bytes:
            self._db_sizes[database_of(key)] += 1
            self._sibling_keys += 1

    def _count_removed(self, key: bytes, had_expiry: bool = False) -> None:
        if type(key) is not bytes:
            db = database_of(key)
            self._db_sizes[db] -= 1
            self._sibling_keys -= 1
            if had_expiry:
                self._db_expiring[db] -= 1
                self._sibling_expiring -= 1

    def _count_expiry(self, key: bytes, change: int) -> None:
        """A key of ``_data`` gained (+1) or lost (-1) its expiry while other databases
        exist."""
        if change and type(key) is not bytes:
            self._db_expiring[database_of(key)] += change
            self._sibling_expiring += change

    def _live_value(self, key: bytes) -> bytes | None:
        """The value if the key is live, removing it when found dead; counts nothing."""
        value = self._data_get(key)
        if value is not None and self._expires:
            expire_at_ms = self._expires.get(key)
            if expire_at_ms is not None and expire_at_ms <= self._clock_ms():
                self._remove_expired(key)
                return None
        return value

    def _is_live_predicate(self) -> Callable[[bytes], bool]:
        """For bulk reads that must not remove keys while iterating ``_data``."""
        expires_get = self._expires.get
        now = self._clock_ms()

        def is_live(key: bytes) -> bool:
            expire_at_ms = expires_get(key)
            return expire_at_ms is None or expire_at_ms > now

        return is_live

    def _remove(self, key: bytes) -> None:
        """Take the key out of every structure; reports nothing (callers do)."""
        value = self._data.pop(key)
        self._bytes_used -= len(key) + len(value) + PER_KEY_OVERHEAD_BYTES
        had_expiry = self._expires.pop(key, None) is not None
        if had_expiry:
            self._bytes_used -= EXPIRY_OVERHEAD_BYTES
        if self._siblings:
            self._count_removed(key, had_expiry)

    def _remove_expired(self, key: bytes) -> None:
        self._remove(key)
        self._expired += 1
        if self._listener is not None:
            self._emit(Op.DEL, key, None, None, Cause.EXPIRED)
