"""Defaults for the optional parts of the :class:`~distcache_core.contracts.Persistence`
contract, so a plugin writes only what its role needs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from ..contracts import SnapshotRef
from ..mutations import Mutation
from .status import PersistenceStatus


class PersistenceBase:
    """Subclass and override: a log overrides ``replay``, ``record``, ``barrier`` and
    ``compact``; a snapshot plugin ``snapshots``, ``load_snapshot``, ``checkpoint_due`` and
    ``checkpoint``."""

    role = "snapshot"
    name = "unnamed"
    #: Snapshot plugins: take a snapshot at graceful shutdown when anything changed.
    snapshot_on_shutdown = True
    #: True when ``barrier`` may return something to wait for (a WAL with ``fsync =
    #: always``): the node then holds the replies of writes until it completes.
    wants_barrier = False

    def __init__(self) -> None:
        self.status: PersistenceStatus | None = None
        #: Held for the whole of a checkpoint. The manager never starts two, but a caller
        #: that drives the plugin directly might while the manager's own is running, and two
        #: writers on the plugin's one temporary file deadlock (LMDB) or corrupt it.
        self.checkpoint_lock = asyncio.Lock()

    def open(self, status: Any) -> None:
        self.status = status

    def snapshots(self) -> list[SnapshotRef]:
        return []

    async def load_snapshot(self, ref: SnapshotRef, target: Any) -> None:
        raise NotImplementedError(f"{self.name} writes no snapshots")

    def replay_size(self, after_seq: int) -> int:
        return 0

    async def replay(self, after_seq: int, target: Any) -> int:
        return after_seq

    def start(self, seq: int) -> None:
        pass

    def record(self, mutation: Mutation) -> None:
        pass

    def barrier(self) -> Awaitable[None] | None:
        return None

    def tick(self, now: float) -> None:
        pass

    def checkpoint_due(self, now: float, seq: int) -> bool:
        return False

    async def checkpoint(self, image: Any) -> SnapshotRef | None:
        return None

    async def compact(self, retain_after_seq: int) -> None:
        pass

    def info(self) -> list[tuple[str, Any]]:
        return []

    async def close(self) -> None:
        pass
