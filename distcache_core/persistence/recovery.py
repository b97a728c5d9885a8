"""Where recovery puts what it reads, and how a loader keeps the loop responsive."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..contracts import StorageEngine
from ..errors import CommandError, PersistenceError
from ..mutations import Mutation, Op, replay
from .status import PersistenceStatus

#: A loader works this long, then lets the loop answer (``-LOADING``, INFO) for a turn.
#: Longer slices load faster (a turn costs ~20 us); 5 ms keeps a waiting client's latency
#: well under what Redis shows while it loads (it answers between 2 MB chunks).
DEFAULT_SLICE_SECONDS = 0.005


def unix_time_ms() -> int:
    return time.time_ns() // 1_000_000


class RecoveryTarget:
    """The engines being filled, the counters of the recovery report and its progress.

    A loader's inner loop calls ``target.restore`` (or, faster, ``target.databases[db]
    .restore`` after checking ``now_ms`` itself), and every few hundred records
    ``if target.should_pause(): await target.pause(bytes_read_since_last_pause)``.
    """

    def __init__(self, databases: Any, status: PersistenceStatus, *,
                 slice_seconds: float = DEFAULT_SLICE_SECONDS) -> None:
        #: Engines by database index: the node's ``Databases`` (opened on first use) or a list.
        self.databases = databases
        self.status = status
        self.slice_seconds = slice_seconds
        #: Unix ms, refreshed at every pause: a key expiring before it is not restored.
        self.now_ms = unix_time_ms()
        self.keys_loaded = 0
        self.keys_expired = 0
        self.records_replayed = 0
        self.warnings: list[str] = []
        self._deadline = time.perf_counter() + slice_seconds

    def engine(self, db: int) -> StorageEngine:
        try:
            engine: StorageEngine = self.databases[db]
            return engine
        except (IndexError, CommandError):
            raise PersistenceError(
                f"the data names database {db} but this node has {len(self.databases)} "
                "(the storage engine must serve it)") from None

    def restore(self, db: int, key: bytes, value: bytes, expire_at_ms: int | None) -> None:
        """One key of a snapshot. A key whose expiry passed while the node was down is not
        restored (and any older copy of it goes: it expired)."""
        if expire_at_ms is not None and expire_at_ms <= self.now_ms:
            self.engine(db).delete(key)
            self.keys_expired += 1
            return
        self.engine(db).restore(key, value, expire_at_ms)
        self.keys_loaded += 1

    def apply_set(self, db: int, key: bytes, value: bytes, expire_at_ms: int | None) -> None:
        """A SET record of a log: ``restore`` counted as a replayed record."""
        engine = self.engine(db)
        if expire_at_ms is not None and expire_at_ms <= self.now_ms:
            engine.delete(key)
            self.keys_expired += 1
        else:
            engine.restore(key, value, expire_at_ms)
        self.records_replayed += 1

    def apply(self, mutation: Mutation) -> None:
        """One record of a log (or of a snapshot's overlay), whatever its op."""
        if mutation.op is Op.SET:
            assert mutation.value is not None
            self.apply_set(mutation.db, mutation.key, mutation.value, mutation.expire_at_ms)
            return
        for db in (mutation.db, mutation.other_db):
            self.engine(db)
        replay((mutation,), self.databases)
        self.records_replayed += 1

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def should_pause(self) -> bool:
        return time.perf_counter() >= self._deadline

    async def pause(self, loaded_bytes: int = 0) -> None:
        """Count progress and let the loop run one turn."""
        self.status.loading_loaded_bytes += loaded_bytes
        await asyncio.sleep(0)
        self.now_ms = unix_time_ms()
        self._deadline = time.perf_counter() + self.slice_seconds

    def add_progress(self, loaded_bytes: int) -> None:
        self.status.loading_loaded_bytes += loaded_bytes

    def reset(self) -> None:
        """Forget a partly loaded snapshot that turned out corrupt."""
        for engine in self.databases:
            engine.clear()
        self.keys_loaded = self.keys_expired = self.records_replayed = 0
