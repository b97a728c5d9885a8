"""Per-key versions: which copy of a key is newest, deletions included.

A version is a hybrid logical clock: Unix milliseconds in the high bits, a counter below, the
writing node's tag in the low 8 bits. It grows with time on every node, is unique per writer,
and a node that receives a newer version than its own clock moves its clock past it, so its
next write wins over everything it has seen (last write wins, with causality kept when one
node's write follows another's).

Deletions are versioned like writes: a deleted key leaves a *tombstone* (its deletion's
version), so an older copy that arrives later (a hint, a move, a repair of a node that was
down) is recognised as older and dropped instead of bringing the key back. Tombstones are kept
for ``retention_ms`` (the hint window: past it a returning node is repaired by comparison
anyway) and collected in the background.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator

#: Low bits of a version: the writer's tag; above them a counter, then the milliseconds.
TAG_BITS = 8
TIME_SHIFT = 20


def wall_ms() -> int:
    return int(time.time() * 1000)


class VersionClock:
    """Hands out increasing versions for this node's writes."""

    __slots__ = ("tag", "last", "_clock")

    def __init__(self, node_id: str, clock_ms: Callable[[], int] = wall_ms) -> None:
        self.tag = zlib.crc32(node_id.encode()) & ((1 << TAG_BITS) - 1)
        self.last = 0
        self._clock = clock_ms

    def next(self) -> int:
        step = 1 << TAG_BITS
        candidate = max(self._clock() << TIME_SHIFT, (self.last | (step - 1)) + 1)
        version = (candidate & ~(step - 1)) | self.tag
        self.last = version
        return version

    def observe(self, version: int) -> None:
        """A version written elsewhere: later local writes must be newer."""
        if version > self.last:
            self.last = version


class VersionMap:
    """The version of every key a node holds, and the tombstones of recent deletions, per
    logical database."""

    __slots__ = ("_live", "_tombstones", "retention_ms", "_clock")

    def __init__(self, retention_ms: int, clock_ms: Callable[[], int] = wall_ms) -> None:
        self._live: dict[int, dict[bytes, int]] = {}
        #: db -> key -> (version of the deletion, Unix ms it was recorded)
        self._tombstones: dict[int, dict[bytes, tuple[int, int]]] = {}
        self.retention_ms = retention_ms
        self._clock = clock_ms

    def live(self, db: int) -> dict[bytes, int]:
        table = self._live.get(db)
        if table is None:
            table = self._live[db] = {}
        return table

    def get(self, db: int, key: bytes) -> int:
        """The newest version known for the key, live or deleted; 0 when none."""
        live = self._live.get(db)
        if live is not None:
            version = live.get(key)
            if version is not None:
                return version
        dead = self._tombstones.get(db)
        if dead is not None:
            entry = dead.get(key)
            if entry is not None:
                return entry[0]
        return 0

    def is_tombstone(self, db: int, key: bytes) -> bool:
        dead = self._tombstones.get(db)
        return dead is not None and key in dead

    def set(self, db: int, key: bytes, version: int) -> None:
        self.live(db)[key] = version
        dead = self._tombstones.get(db)
        if dead:
            dead.pop(key, None)

    def delete(self, db: int, key: bytes, version: int) -> None:
        """Record a versioned deletion (a tombstone)."""
        live = self._live.get(db)
        if live is not None:
            live.pop(key, None)
        if self.retention_ms:
            dead = self._tombstones.get(db)
            if dead is None:
                dead = self._tombstones[db] = {}
            dead[key] = (version, self._clock())

    def drop(self, db: int, key: bytes) -> None:
        """Forget the key entirely (a local copy dropped: eviction on a replica, a move)."""
        live = self._live.get(db)
        if live is not None:
            live.pop(key, None)

    def clear(self, db: int | None = None) -> None:
        if db is None:
            self._live.clear()
            self._tombstones.clear()
        else:
            self._live.pop(db, None)
            self._tombstones.pop(db, None)

    def swap(self, a: int, b: int) -> None:
        for table in (self._live, self._tombstones):
            first, second = table.pop(a, None), table.pop(b, None)
            if second is not None:
                table[a] = second  # type: ignore[assignment]
            if first is not None:
                table[b] = first  # type: ignore[assignment]

    def tombstones(self, db: int) -> Iterator[tuple[bytes, int]]:
        for key, (version, _) in list(self._tombstones.get(db, {}).items()):
            yield key, version

    def collect(self, budget: int = 10_000) -> int:
        """Drop tombstones older than the retention; at most ``budget`` checked per call."""
        cutoff = self._clock() - self.retention_ms
        removed = checked = 0
        for dead in self._tombstones.values():
            for key, (_, at) in list(dead.items()):
                checked += 1
                if at < cutoff:
                    del dead[key]
                    removed += 1
                if checked >= budget:
                    return removed
        return removed

    def counts(self) -> tuple[int, int]:
        """(keys with a version, tombstones)."""
        return (sum(len(t) for t in self._live.values()),
                sum(len(t) for t in self._tombstones.values()))
