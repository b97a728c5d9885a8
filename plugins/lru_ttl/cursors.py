"""Walks over snapshots of a key collection, for SCAN and for active expiry sampling.

A Python dict offers neither a stable bucket order to walk (Redis's reverse-binary SCAN cursor)
nor random access (Redis's random sampling of the expires dict). Both walks therefore copy the
key list and step through the copy, checking each key against the live dict as they go.
"""

from __future__ import annotations

from collections.abc import Iterable

#: SCAN iterations kept at once; starting one more forgets the oldest, whose next step restarts.
SCAN_MAX_ITERATIONS = 16
# The low bits of a cursor name the iteration, the high bits the position in its snapshot.
_SCAN_ID_BITS = 20
_SCAN_ID_MASK = (1 << _SCAN_ID_BITS) - 1


class ScanSnapshots:
    """The SCAN iterations in progress, each a copy of the key list taken at cursor 0.

    Every key present for a whole iteration is in its snapshot, hence returned exactly once;
    keys added meanwhile are not returned (Redis allows either). An iteration costs 8 bytes per
    key until it ends or ``SCAN_MAX_ITERATIONS`` newer ones push it out; a cursor of a forgotten
    iteration (or a made-up one) starts a new iteration, which keeps the guarantee at the price
    of repeats.
    """

    __slots__ = ("_snapshots", "_next_id")

    def __init__(self) -> None:
        self._snapshots: dict[int, list[bytes]] = {}
        self._next_id = 1

    def step(self, cursor: int, keys: Iterable[bytes], count: int) -> tuple[int, list[bytes]]:
        """Return the next cursor (0 when done) and the next ``count`` keys of the snapshot,
        including keys removed since: the caller filters them out."""
        iteration_id = cursor & _SCAN_ID_MASK
        position = cursor >> _SCAN_ID_BITS
        snapshot = self._snapshots.get(iteration_id) if cursor else None
        if snapshot is None or position >= len(snapshot):
            iteration_id, snapshot, position = self._start(keys)
        end = position + max(count, 1)
        batch = snapshot[position:end]
        if end >= len(snapshot):
            del self._snapshots[iteration_id]
            return 0, batch
        return end << _SCAN_ID_BITS | iteration_id, batch

    def clear(self) -> None:
        self._snapshots.clear()

    def _start(self, keys: Iterable[bytes]) -> tuple[int, list[bytes], int]:
        snapshots = self._snapshots
        while len(snapshots) >= SCAN_MAX_ITERATIONS:
            del snapshots[next(iter(snapshots))]
        iteration_id = self._next_id
        # Ids wrap within their bits and skip 0, so only the final cursor of an iteration is 0.
        self._next_id = iteration_id % _SCAN_ID_MASK + 1
        snapshot = snapshots[iteration_id] = list(keys)
        return iteration_id, snapshot, 0


class RoundRobinSampler:
    """Hands out consecutive slices of a snapshot of a collection's keys, taking a new snapshot
    when the last one is used up: every key present for a whole pass is sampled once per pass.

    The copy costs O(len) once per pass, and keeps keys removed since alive until the pass ends.
    """

    __slots__ = ("_keys", "_position")

    def __init__(self) -> None:
        self._keys: list[bytes] = []
        self._position = 0

    def next_sample(self, keys: Iterable[bytes], size: int) -> list[bytes]:
        position = self._position
        if position >= len(self._keys):
            self._keys = list(keys)
            position = 0
        self._position = position + size
        return self._keys[position:position + size]

    def clear(self) -> None:
        self._keys = []
        self._position = 0
