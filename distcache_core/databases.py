"""The node's logical databases (``SELECT n``): one engine per database, opened on first use.

Database 0 is the engine built from config; database ``i`` is ``engine.open_database(i)``, a
sibling that shares its limits and eviction order (see the ``StorageEngine`` contract). An
engine without ``open_database`` serves database 0 only.
"""

from __future__ import annotations

from collections.abc import Iterator

from .contracts import StorageEngine
from .errors import CommandError
from .mutations import ChangeListener, Mutation, MutationListener, Op

DB_INDEX_OUT_OF_RANGE = "ERR DB index is out of range"


class Databases:
    """``databases[i]`` is the engine of database ``i``; iterating yields the open ones."""

    __slots__ = ("_engines", "count", "_listener", "_changes")

    def __init__(self, engine: StorageEngine, count: int) -> None:
        self._engines: list[StorageEngine | None] = [engine] + [None] * (count - 1)
        self.count = count
        self._listener: MutationListener | None = None
        self._changes: ChangeListener | None = None

    def __getitem__(self, index: int) -> StorageEngine:
        if not 0 <= index < self.count:
            raise CommandError(DB_INDEX_OUT_OF_RANGE)
        engine = self._engines[index]
        if engine is None:
            opener = getattr(self._engines[0], "open_database", None)
            if opener is None:
                raise CommandError(DB_INDEX_OUT_OF_RANGE)
            engine = self._engines[index] = opener(index)
            _tell(engine, self._listener, self._changes)
        return engine

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[StorageEngine]:
        """The databases opened so far (the others are empty)."""
        return (engine for engine in self._engines if engine is not None)

    def opened(self) -> Iterator[tuple[int, StorageEngine]]:
        return ((i, e) for i, e in enumerate(self._engines) if e is not None)

    def set_listener(self, listener: MutationListener | None,
                     changes: ChangeListener | None = None) -> None:
        """Where every database reports its mutations (the node's stream, or None); an engine
        with ``set_change_listener`` is given ``changes``, the fast form, when there is one
        (see :mod:`distcache_core.mutations`)."""
        self._listener = listener
        self._changes = changes
        for engine in self:
            _tell(engine, listener, changes)

    def swap(self, a: int, b: int) -> None:
        """SWAPDB: the two databases exchange contents in O(1): their engine objects change
        places (each learns its new index through ``set_database_index``, so its mutations
        carry it), and one ``SWAPDB`` mutation is reported. Whoever holds an engine (a
        connection's ``engine``) must read ``databases[i]`` again."""
        first, second = self[a], self[b]
        if a == b:
            return
        self._engines[a], self._engines[b] = second, first
        for index, engine in ((a, second), (b, first)):
            renumber = getattr(engine, "set_database_index", None)
            if renumber is not None:
                renumber(index)
        if self._listener is not None:
            self._listener(Mutation(Op.SWAPDB, a, b"", other_db=b))


def _tell(engine: StorageEngine, listener: MutationListener | None,
          changes: ChangeListener | None) -> None:
    fast = getattr(engine, "set_change_listener", None)
    if fast is not None and (changes is not None or listener is None):
        fast(changes)
        return
    # An engine written before the mutation stream existed has no set_listener: it still
    # serves, but nothing (WAL, replication) hears of its writes.
    setter = getattr(engine, "set_listener", None)
    if setter is not None:
        setter(listener)
