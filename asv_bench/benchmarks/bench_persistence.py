"""Persistence, as the node drives it: the WAL's per-write cost and its group commit, a
snapshot's write and load, and recovering 1M keys.

Keys are 16 bytes (``k:%014d``) and values 32 bytes, as in ``make bench``. Files go to a
temporary directory per process. ``track_recovery_seconds`` is the issue's figure: the time
to load a 1M-key snapshot into an empty engine (target under 2 s; redis-server loads its RDB
of the same keys in 0.73 s on the 2-core test machine).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from distcache_core.mutations import Mutation, MutationStream, Op
from distcache_core.persistence import KeyspaceImage, PersistenceStatus, RecoveryTarget
from distcache_plugins.lmdb_snapshot import LmdbSnapshot, LmdbSnapshotSettings
from distcache_plugins.lru_ttl import LruTtlEngine
from distcache_plugins.mmap_snapshot import MmapSnapshot, SnapshotSettings
from distcache_plugins.wal import WalPersistence, WalSettings

BATCH = 10_000
SNAPSHOT_SIZES = [100_000, 1_000_000]
VALUE = b"v" * 32
KINDS = ["mmap_snapshot", "lmdb_snapshot"]


def key(index: int) -> bytes:
    return b"k:%014d" % index


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="distcache-asv-persistence-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def make_snapshot_plugin(kind: str, data_dir: Path) -> Any:
    if kind == "mmap_snapshot":
        return MmapSnapshot(SnapshotSettings(), data_dir)
    return LmdbSnapshot(LmdbSnapshotSettings(map_size_bytes=8 << 30), data_dir)


@functools.cache
def filled_engine(keys: int) -> LruTtlEngine:
    engine = LruTtlEngine(capacity=0)
    engine.restore_many([key(i) for i in range(keys)], [VALUE] * keys, [None] * keys)
    return engine


async def write_snapshot(kind: str, data_dir: Path, keys: int) -> float:
    plugin = make_snapshot_plugin(kind, data_dir)
    plugin.open(PersistenceStatus())
    plugin.start(0)
    started = time.perf_counter()
    async with KeyspaceImage([filled_engine(keys)], MutationStream()) as image:
        await plugin.checkpoint(image)
    seconds = time.perf_counter() - started
    await plugin.close()
    return seconds


async def load_snapshot(kind: str, data_dir: Path) -> tuple[float, int]:
    plugin = make_snapshot_plugin(kind, data_dir)
    plugin.open(PersistenceStatus())
    engine = LruTtlEngine(capacity=0)
    # As the node's recovery loads (PersistenceManager.recover): without the cyclic collector,
    # whose full collections would walk the engine being filled.
    gc.disable()
    try:
        started = time.perf_counter()
        await plugin.load_snapshot(plugin.snapshots()[0],
                                   RecoveryTarget([engine], PersistenceStatus()))
        return time.perf_counter() - started, len(engine)
    finally:
        gc.enable()


@functools.cache
def snapshot_on_disk(kind: str, keys: int) -> Path:
    data_dir = workdir() / f"{kind}-{keys}"
    shutil.rmtree(data_dir, ignore_errors=True)
    asyncio.run(write_snapshot(kind, data_dir, keys))
    return data_dir


class SnapshotWrite:
    """A whole snapshot of an engine of ``keys`` keys: walk, encode, write, fsync, rename."""

    params = [KINDS, SNAPSHOT_SIZES]
    param_names = ["kind", "keys"]
    number = 1
    warmup_time = 0.0
    repeat = (1, 3, 60.0)
    timeout = 300

    def setup(self, kind: str, keys: int) -> None:
        filled_engine(keys)
        self.data_dir = workdir() / f"write-{kind}-{keys}"

    def time_snapshot_write(self, kind: str, keys: int) -> None:
        asyncio.run(write_snapshot(kind, self.data_dir, keys))

    def teardown(self, kind: str, keys: int) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


class SnapshotLoad:
    """Recovery from a snapshot of ``keys`` keys into an empty engine (checksum included),
    in seconds (a ``track_``, so the figure is the load alone, not the fixture)."""

    params = [KINDS, SNAPSHOT_SIZES]
    param_names = ["kind", "keys"]
    number = 1
    warmup_time = 0.0
    repeat = (1, 3, 60.0)
    timeout = 300

    def setup(self, kind: str, keys: int) -> None:
        self.data_dir = snapshot_on_disk(kind, keys)

    def track_recovery_seconds(self, kind: str, keys: int) -> float:
        seconds, loaded = asyncio.run(load_snapshot(kind, self.data_dir))
        assert loaded == keys
        return seconds

    track_recovery_seconds.unit = "seconds"


class WalAppend:
    """The WAL's cost per write: ``record`` (encode a mutation into the buffer), and whole
    loop turns of 100 writes each ending in the barrier, with ``fsync = no`` (the disk's
    speed is not what this measures) and ``always`` (group commit: one fsync a turn)."""

    params = ["no", "always"]
    param_names = ["fsync"]
    timeout = 120

    def setup(self, fsync: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.data_dir = Path(tempfile.mkdtemp(prefix="wal-", dir=workdir()))
        self.plugin = WalPersistence(WalSettings(fsync=fsync), self.data_dir)
        self.plugin.open(PersistenceStatus())
        self.loop.run_until_complete(self._start())
        self.mutations = []
        for index in range(BATCH):
            mutation = Mutation(Op.SET, 0, key(index), VALUE)
            mutation.seq = index + 1
            self.mutations.append(mutation)

    async def _start(self) -> None:
        self.plugin.start(0)

    def teardown(self, fsync: str) -> None:
        self.loop.run_until_complete(self.plugin.close())
        self.loop.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def time_record(self, fsync: str) -> None:
        record = self.plugin.record
        for mutation in self.mutations:
            record(mutation)
        self.plugin.writer._buffer.clear()  # only the encoding is timed here

    def time_turns_of_100_writes(self, fsync: str) -> None:
        self.loop.run_until_complete(self._turns())

    async def _turns(self) -> None:
        record, barrier = self.plugin.record, self.plugin.barrier
        mutations = self.mutations
        for start in range(0, BATCH, 100):
            for mutation in mutations[start:start + 100]:
                record(mutation)
            wait = barrier()
            if wait is not None:
                await wait
            else:
                await asyncio.sleep(0)

    def track_records_per_second(self, fsync: str) -> float:
        started = time.perf_counter()
        self.time_turns_of_100_writes(fsync)
        return BATCH / (time.perf_counter() - started)

    track_records_per_second.unit = "records/s"
