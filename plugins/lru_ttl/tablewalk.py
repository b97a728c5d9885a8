"""Walking a dict's keys across event-loop turns while the dict changes, without copying them.

Why: a snapshot reads the keyspace a millisecond at a time while clients write (see
``distcache_core.persistence.image``). Python's dict iterator refuses to go on once the dict's
size changed, so :meth:`LruTtlEngine.items` used to copy the key list first: one C call that
holds the loop for 17 ms per million keys on an idle machine, 35-135 ms measured beside a
write load on the shared 2-core test machine (``bench/loop_lag.py``), the worst PING of a
snapshot by far.

How: CPython keeps a dict's entries in an array in insertion order. An insert appends an
entry, a delete blanks one, an update rewrites a value in place; only a *resize* (when the
array is full, or ``clear``) builds a new array. So between resizes, a position in the array
stays meaningful however the dict changed, and the iterator's only objection is its own
record of the size. :class:`TableWalk` keeps one iterator for the whole walk and, before each
chunk, brings that record up to date (machine words of the iterator, written through
``ctypes``), after checking that the array is still the one the walk started on. It stops at
the array's length when the walk began: entries after it were added during the walk.

When the array was replaced (a resize), positions no longer line up, and the walk raises
:class:`~distcache_core.contracts.KeyspaceChanged`: the snapshot starts again. A resize is
rare within one walk: the table grows geometrically and a compaction leaves it at least a
third empty, so after one the next is at least as many inserts away as the dict has keys.
(Finishing the walk from a copy of the keys instead needs a record of every key yielded so
far: measured at 1M keys, growing that list stalls the loop 4 ms at a time, and freeing it at
the end 15 ms.)

Safety: everything ``ctypes`` touches is checked at import against a dict and an iterator
made for the purpose (the offsets, and a walk across inserts, deletes and a resize compared
with what it must yield); on any mismatch, or an interpreter other than CPython with the
GIL, :data:`RESUMABLE` is False and every walk copies the key list first, as before. Only the
walk's own iterator is written to, never the dict.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from itertools import islice
from typing import Any

from distcache_core.contracts import KeyspaceChanged

#: Keys taken from the dict at a time, in one C call (about 5 us for 256 at 1M keys).
CHUNK_KEYS = 256

_WORD = ctypes.sizeof(ctypes.c_ssize_t)
# dictiterobject (Objects/dictobject.c, CPython 3.11-3.13): PyObject_HEAD, di_dict, di_used,
# di_pos, di_result, len. PyDictObject: PyObject_HEAD, ma_used, a 64-bit tag, ma_keys.
_HEAD = 2 * _WORD
_DI_DICT, _DI_USED, _DI_POS, _DI_LEN = _HEAD, _HEAD + _WORD, _HEAD + 2 * _WORD, _HEAD + 4 * _WORD
_MA_USED, _MA_KEYS = _HEAD, _HEAD + _WORD + 8


def _field(obj: object, offset: int) -> ctypes.c_ssize_t:
    """A machine word of ``obj``, readable and writable while ``obj`` lives."""
    return ctypes.c_ssize_t.from_address(id(obj) + offset)


def _word(obj: object, offset: int) -> int:
    return _field(obj, offset).value


def _entries(table: dict[Any, Any]) -> int:
    """Length of the entry array (live and blanked entries): a reversed iterator starts at
    its last entry."""
    return _word(reversed(dict.keys(table)), _DI_POS) + 1


class TableWalk:
    """Chunks of ``table``'s keys, in table order: every key present when the walk began and
    still present when reached, once; no key added during the walk.

    Iterate it (``for chunk in TableWalk(table)``); the dict may change between chunks. A
    chunk raises :class:`KeyspaceChanged` when the dict was resized since the previous one.
    """

    __slots__ = ("_table", "_iterator", "_array", "_array_now", "_used", "_position", "_count",
                 "_end", "_copy")

    def __init__(self, table: dict[Any, Any]) -> None:
        self._table = table
        self._copy: Iterator[list[Any]] | None = None
        if not RESUMABLE:
            self._copy = _chunks(list(dict.keys(table)))
            return
        self._array_now = _field(table, _MA_KEYS)
        self._array = self._array_now.value
        self._end = _entries(table)
        self._start_iterator(0)

    def __iter__(self) -> TableWalk:
        return self

    def __next__(self) -> list[Any]:
        if self._copy is not None:
            return next(self._copy)
        table, iterator, position, end = self._table, self._iterator, self._position, self._end
        if self._array_now.value != self._array or _entries(table) < end:
            raise KeyspaceChanged("the dict was resized during the walk")
        start = position.value
        if start >= end:
            raise StopIteration
        self._arm()
        chunk = list(islice(iterator, CHUNK_KEYS))
        if position.value > end:
            # Blanked entries were skipped up to entries added during the walk: again, one
            # key at a time, stopping at the first of those. (A fresh iterator: one that met
            # the end of the array is finished for good.)
            iterator, position = self._start_iterator(start)
            chunk = []
            for key in iterator:
                if position.value > end:
                    break
                chunk.append(key)
        if not chunk:
            raise StopIteration
        return chunk

    def _start_iterator(self, position: int) -> tuple[Iterator[Any], ctypes.c_ssize_t]:
        self._iterator = iterator = iter(dict.keys(self._table))
        self._used = _field(iterator, _DI_USED)
        self._position = _field(iterator, _DI_POS)
        self._count = _field(iterator, _DI_LEN)
        self._position.value = position
        self._arm()
        return iterator, self._position

    def _arm(self) -> None:
        size = len(self._table)
        self._used.value = size  # the size the iterator checks the dict's against
        self._count.value = size + 1  # its count of keys left, which must stay above 0


def _chunks(keys: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(keys), CHUNK_KEYS):
        yield keys[start:start + CHUNK_KEYS]


def _self_check() -> bool:
    """Whether this interpreter's dict and iterator look as the walk assumes, and a walk over
    a dict changed between chunks yields what it must."""
    if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info[:2] <= (3, 13):
        return False
    if getattr(sys, "_is_gil_enabled", lambda: True)() is False:
        return False
    table = {key: key for key in range(100)}
    iterator = iter(dict.keys(table))
    if (_word(iterator, _DI_DICT) != id(table) or _word(iterator, _DI_USED) != 100
            or _word(iterator, _DI_POS) != 0 or _word(iterator, _DI_LEN) != 100
            or _word(table, _MA_USED) != 100):
        return False
    next(iterator)
    if _word(iterator, _DI_POS) != 1 or _word(iterator, _DI_LEN) != 99:
        return False
    del table[99]
    if _entries(table) != 100:
        return False
    array = _word(table, _MA_KEYS)
    for key in range(100):
        table[key] = -key
    if _word(table, _MA_KEYS) != array:
        return False
    for key in range(100, 1000):
        table[key] = key
    if _word(table, _MA_KEYS) == array:
        return False
    return _walk_check()


def _walk_check() -> bool:
    size = 10 * CHUNK_KEYS
    table = {key: None for key in range(size)}
    seen: list[int] = []
    walk = TableWalk(table)
    for round_no, chunk in enumerate(walk):
        seen.extend(chunk)
        if round_no == 0:
            for key in range(size // 2, size):
                del table[key]  # never reached: not yielded
            table[-1] = None  # added during the walk: not yielded
            del table[0]  # yielded already: not again when added back
            table[0] = None
    if sorted(seen) != list(range(size // 2)):
        return False
    walk = TableWalk(table)
    next(walk)
    for key in range(size, 4 * size):
        table[key] = None
    try:
        next(walk)
    except KeyspaceChanged:
        return True
    return False


#: Whether walks resume in place (else each copies its key list first).
RESUMABLE = True
try:
    RESUMABLE = _self_check()
except Exception:  # any surprise: the plain copy
    RESUMABLE = False
