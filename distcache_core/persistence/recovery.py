"""Where recovery puts what it reads, and how a loader keeps the loop responsive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import ExitStack
from itertools import repeat
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

    A loader's inner loop calls ``target.restore`` (or, faster, ``target.restore_block``),
    and every few hundred records
    ``if target.should_pause(): await target.pause(bytes_read_since_last_pause)``.

    Keys whose expiry passed while the node was down: a later record of the log may still
    move that expiry (SET k v PX 100, then EXPIRE k 3600, then a restart an hour later: k is
    alive). So while :meth:`hold_expiry` is in force (engines with ``loading()``, which
    suspends their expiry, as Redis expires nothing while it loads), such keys go into the
    engine like any other, are remembered, and :meth:`end_hold` removes those still expired
    once everything is replayed. Without it they are left out at once.
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
        self._holding: ExitStack | None = None
        self._held_engines: set[int] = set()
        #: (engine, key) restored with a passed expiry while expiry was held.
        self._expired: list[tuple[Any, bytes]] = []
        #: apply_set's engines by database index, resolved once rather than per record;
        #: forgotten whenever a record other than SET runs (SWAPDB moves databases).
        self._set_engines: dict[int, Any] = {}

    def hold_expiry(self) -> None:
        """From now until :meth:`end_hold`, engines that can suspend expiry do."""
        self._holding = ExitStack()
        self._set_engines.clear()

    def end_hold(self) -> None:
        """Resume expiry and remove the keys restored expired that nothing revived."""
        if self._holding is None:
            return
        self._holding.close()
        self._holding = None
        self._held_engines.clear()
        self._set_engines.clear()
        now_ms = unix_time_ms()
        for engine, key in self._expired:
            try:
                expire_at_ms = engine.get_expire_at(key)
            except KeyError:  # deleted by a later record: it was counted expired
                continue
            if expire_at_ms is not None and expire_at_ms <= now_ms:
                engine.delete(key)
            else:  # a later record moved its expiry: alive after all
                self.keys_expired -= 1
                self.keys_loaded += 1
        self._expired.clear()

    def _holds(self, engine: Any) -> bool:
        if self._holding is None:
            return False
        if id(engine) not in self._held_engines:
            loading = getattr(engine, "loading", None)  # optional in the contract
            if loading is None:
                return False
            self._holding.enter_context(loading())
            self._held_engines.add(id(engine))
        return True

    def engine(self, db: int) -> StorageEngine:
        try:
            engine: StorageEngine = self.databases[db]
            self._holds(engine)
            return engine
        except (IndexError, CommandError):
            raise PersistenceError(
                f"the data names database {db} but this node has {len(self.databases)} "
                "(the storage engine must serve it)") from None

    def restore(self, db: int, key: bytes, value: bytes, expire_at_ms: int | None) -> None:
        """One key of a snapshot. A key whose expiry passed while the node was down is not
        restored (and any older copy of it goes: it expired; see the class docstring)."""
        if self._put(self.engine(db), key, value, expire_at_ms):
            self.keys_loaded += 1

    def apply_set(self, db: int, key: bytes, value: bytes, expire_at_ms: int | None) -> None:
        """A SET record of a log: ``restore`` counted as a replayed record."""
        # Once per record of a log: kept to a dict lookup and the engine's own call.
        engine = self._set_engines.get(db)
        if engine is None:
            engine = self._set_engines[db] = self.engine(db)
        if expire_at_ms is None or expire_at_ms > self.now_ms:
            engine.restore(key, value, expire_at_ms)
        else:
            self._put(engine, key, value, expire_at_ms)
        self.records_replayed += 1

    def _put(self, engine: Any, key: bytes, value: bytes, expire_at_ms: int | None) -> bool:
        """Restore one key; False (and counted) when its expiry has passed."""
        if expire_at_ms is None or expire_at_ms > self.now_ms:
            engine.restore(key, value, expire_at_ms)
            return True
        self.keys_expired += 1
        if self._holds(engine):
            engine.restore(key, value, expire_at_ms)
            self._expired.append((engine, key))
        else:
            engine.delete(key)
        return False

    def restore_block(self, engine: Any, keys: Sequence[bytes], values: Sequence[bytes],
                      expiries: Sequence[int | None] | None) -> None:
        """A block of a snapshot into ``engine`` (from :meth:`engine`), in bulk when it can
        (``restore_many``, optional in the contract); expired keys as in :meth:`restore`."""
        now_ms = self.now_ms
        expired = [] if expiries is None else [
            key for key, e in zip(keys, expiries, strict=True) if e is not None and e <= now_ms]
        restore_many = getattr(engine, "restore_many", None)
        if restore_many is not None and (not expired or self._holds(engine)):
            restore_many(keys, values, repeat(None, len(keys)) if expiries is None else expiries)
            self._expired.extend((engine, key) for key in expired)
            self.keys_loaded += len(keys) - len(expired)
            self.keys_expired += len(expired)
            return
        for key, value, expire_at_ms in zip(keys, values, expiries or repeat(None),
                                            strict=False):
            if self._put(engine, key, value, expire_at_ms):
                self.keys_loaded += 1

    def apply(self, mutation: Mutation) -> None:
        """One record of a log (or of a snapshot's overlay), whatever its op."""
        if mutation.op is Op.SET:
            assert mutation.value is not None
            self.apply_set(mutation.db, mutation.key, mutation.value, mutation.expire_at_ms)
            return
        self._set_engines.clear()
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
        self._expired.clear()
        self._set_engines.clear()
