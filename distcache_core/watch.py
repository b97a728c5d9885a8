"""WATCH: optimistic locking for MULTI/EXEC, on top of the node's mutation stream.

A client WATCHes keys; if any of them changes before its EXEC (written, deleted, expired or
evicted, by anyone; flushed by FLUSHDB/FLUSHALL; swapped away by SWAPDB), the EXEC aborts with a
null reply. Redis marks clients from each command that modifies a key (``signalModifiedKey``);
DistCache needs no call in any command: every change to the keyspace is already emitted once as
a :class:`~distcache_core.mutations.Mutation`, whoever made it, so one subscriber on the stream
sees them all, third-party commands and the engine's own expiry and eviction included.

Cost: the registry subscribes to the stream only while some key is watched (the engines build
no :class:`Mutation` at all while nothing listens), and unsubscribes once nothing is; a write
then pays one dictionary lookup per mutation. Measured with ``bench/count_instructions.py``
numbers in the commit that added this module.

Per watched key the registry remembers whether it existed when it was first watched. That is
enough to answer Redis's FLUSHDB rule (only watched keys that *existed* are touched, see
``touchAllWatchedKeysInDb`` in multi.c) without looking at the keyspace again: any change to the
key since then would have touched (and dropped) its watchers already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from .mutations import Mutation, MutationStream, Op

_SET, _DEL, _EXPIRE = Op.SET, Op.DEL, Op.EXPIRE


class WatchedKey:
    """The clients watching one key of one database."""

    __slots__ = ("clients", "existed")

    def __init__(self, existed: bool) -> None:
        self.clients: set[Any] = set()
        #: The key existed when the first of these clients watched it (and, since nothing
        #: has touched it since, still does).
        self.existed = existed


class WatchRegistry:
    """Which client watches which key, for one node; the mutation subscriber that marks them
    dirty. Owned by the RESP server (``server.watches``)."""

    def __init__(self, mutations: MutationStream) -> None:
        self._mutations = mutations
        #: database -> key -> its watchers
        self._by_db: dict[int, dict[bytes, WatchedKey]] = {}
        #: client -> the (database, key) pairs it watches
        self._keys_of: dict[Any, list[tuple[int, bytes]]] = {}
        #: clients whose watched keys changed: their EXEC aborts
        self._dirty: set[Any] = set()
        self._subscribed = False
        self._unsubscribe_scheduled = False

    # -- what command handlers call -----------------------------------------------------------

    def watch(self, conn: Any, keys: Iterable[bytes]) -> None:
        """WATCH ``keys`` in ``conn``'s selected database."""
        if conn in self._dirty:
            return  # its EXEC fails whatever it watches now
        if not self._subscribed:
            self._subscribed = True
            self._mutations.subscribe(self._on_mutation)
        db, engine = conn.db, conn.engine
        for key in keys:
            # exists() also removes the key if it is already past its expiry: that removal
            # is not a change this client could have seen (Redis: watchedKey.expired). It may
            # touch other watchers of the key, or this client if it already watched it.
            existed = engine.exists(key)
            if conn in self._dirty:
                return
            by_key = self._by_db.setdefault(db, {})
            entry = by_key.get(key)
            if entry is None:
                entry = by_key[key] = WatchedKey(existed)
            if conn not in entry.clients:
                entry.clients.add(conn)
                self._keys_of.setdefault(conn, []).append((db, key))
        self._unsubscribe_if_idle()

    def is_dirty(self, conn: Any) -> bool:
        """Has a key ``conn`` watches changed? First expires, in their databases, watched keys
        whose time has passed (Redis's ``isWatchedKeyExpired``): their removal touches them."""
        for db, key in list(self._keys_of.get(conn, ())):
            conn.node.databases[db].exists(key)
        return conn in self._dirty

    def is_dirty_now(self, conn: Any) -> bool:
        """The dirty flag as it stands (CLIENT LIST), without looking at expiry."""
        return conn in self._dirty

    def watching(self, conn: Any) -> int:
        return len(self._keys_of.get(conn, ()))

    def unwatch(self, conn: Any) -> None:
        """UNWATCH, EXEC, DISCARD, RESET, a closed connection: forget ``conn``."""
        self._dirty.discard(conn)
        self._drop(conn)
        self._unsubscribe_if_idle()

    def before_swap(self, databases: Any, first: int, second: int) -> None:
        """SWAPDB is about to exchange two databases: touch the watched keys of each that
        exist in the other (the mutation that follows touches those that existed in their
        own), as Redis's ``touchAllWatchedKeysInDb(emptied, replaced_with)``."""
        for mine, other in ((first, second), (second, first)):
            by_key = self._by_db.get(mine)
            if not by_key:
                continue
            engine = databases[other]
            for key in [key for key, entry in by_key.items() if not entry.existed]:
                if engine.exists(key):
                    self._touch_key(mine, key)

    # -- the subscriber -------------------------------------------------------------------------

    def _on_mutation(self, mutation: Mutation) -> None:
        op = mutation.op
        # One key: SET, DEL, EXPIRE (identity first, the cheap test; a plain int op too).
        if op is _SET or op is _DEL or op is _EXPIRE or op <= _EXPIRE:
            by_key = self._by_db.get(mutation.db)
            if by_key is not None and mutation.key in by_key:
                self._touch_key(mutation.db, mutation.key)
        elif op == Op.FLUSHDB:
            self._touch_existing(mutation.db)
        elif op == Op.FLUSHALL:
            for db in list(self._by_db):
                self._touch_existing(db)
        elif op == Op.SWAPDB:
            self._touch_existing(mutation.db)
            self._touch_existing(mutation.other_db)
        if self._subscribed and not self._keys_of and not self._unsubscribe_scheduled:
            # Not from inside the stream's fan-out (it is iterating its subscribers).
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._unsubscribe_scheduled = True
            loop.call_soon(self._unsubscribe_if_idle)

    def _touch_existing(self, db: int) -> None:
        by_key = self._by_db.get(db)
        if by_key:
            for key in [key for key, entry in by_key.items() if entry.existed]:
                self._touch_key(db, key)

    def _touch_key(self, db: int, key: bytes) -> None:
        by_key = self._by_db.get(db)
        entry = by_key.get(key) if by_key else None
        if entry is None:
            return
        # A dirty client's EXEC fails whatever happens next: stop watching its keys (Redis
        # 7 unwatchAllKeys in touchWatchedKey), so they cost nothing more.
        for conn in list(entry.clients):
            self._dirty.add(conn)
            self._drop(conn)

    def _drop(self, conn: Any) -> None:
        for db, key in self._keys_of.pop(conn, ()):
            by_key = self._by_db[db]
            entry = by_key[key]
            entry.clients.discard(conn)
            if not entry.clients:
                del by_key[key]
                if not by_key:
                    del self._by_db[db]

    def _unsubscribe_if_idle(self) -> None:
        self._unsubscribe_scheduled = False
        if self._subscribed and not self._keys_of:
            self._subscribed = False
            self._mutations.unsubscribe(self._on_mutation)
