"""The persistence contract on the mmap snapshot, alone and beside the WAL, and its file."""

from __future__ import annotations

import asyncio
import io
import logging
import random
from pathlib import Path

from distcache_core.contracts import StorageEngine
from distcache_core.mutations import Mutation, Op
from distcache_core.persistence import PersistenceManager, PersistenceStatus, RecoveryTarget
from distcache_core.testing.persistence_contract import (
    Harness,
    PersistenceContract,
    apply_to_model,
    engine_state,
    live,
    random_mutation,
    run,
)
from distcache_plugins.lru_ttl import LruTtlEngine
from distcache_plugins.mmap_snapshot import MmapSnapshot, SnapshotSettings
from distcache_plugins.mmap_snapshot.check import check_snapshots
from distcache_plugins.mmap_snapshot.format import HEADER_SIZE, Header
from distcache_plugins.wal import WalPersistence, WalSettings


def databases(count: int) -> list[StorageEngine]:
    root = LruTtlEngine(capacity=0)
    return [root.open_database(i) for i in range(count)]


class TestMmapSnapshotContract(PersistenceContract):
    role = "snapshot"

    def make_plugin(self, data_dir: Path) -> MmapSnapshot:
        return MmapSnapshot(SnapshotSettings(), data_dir)

    def make_databases(self, count: int) -> list[StorageEngine]:
        return databases(count)


def wal_and_snapshot(data_dir: Path, **settings) -> Harness:
    """A node's pair: the WAL and the snapshot under one manager."""
    wal = WalPersistence(WalSettings(fsync="always"), data_dir)
    snapshot = MmapSnapshot(SnapshotSettings(**settings), data_dir)
    harness = Harness(wal, data_dir, databases(2))
    harness.manager = PersistenceManager([("wal", wal), ("mmap_snapshot", snapshot)], data_dir)
    harness.snapshot = snapshot  # type: ignore[attr-defined]
    return harness


def test_wal_and_snapshot_recover_the_snapshot_then_the_log_after_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(1)
    keys = [b"k%d" % i for i in range(300)]

    async def first_life() -> dict:
        h = wal_and_snapshot(data_dir)
        await h.start()
        for _ in range(3):
            for _ in range(500):
                h.apply(random_mutation(rng, keys, 2, 40))
            await h.turn()
            await h.manager.save()  # a snapshot, then the log drops what it covers
        for _ in range(200):  # only in the log
            h.apply(random_mutation(rng, keys, 2, 40))
        await h.turn()
        await h.stop(save=False)
        return live(h.model)

    expected = run(first_life())
    assert len(list((data_dir / "mmap_snapshot").glob("snapshot-*.dcsnap"))) == 2

    async def second_life() -> tuple[dict, object]:
        h = wal_and_snapshot(data_dir)
        report = await h.start()
        state = engine_state(h.databases)
        await h.stop(save=False)
        return state, report

    state, report = run(second_life())
    assert state == expected
    assert report.snapshot.endswith(".dcsnap")  # type: ignore[attr-defined]
    assert 0 < report.records_replayed <= 200 + 50  # type: ignore[attr-defined]


def test_after_writes_and_interval_schedule_snapshots(tmp_path: Path) -> None:
    plugin = MmapSnapshot(SnapshotSettings(after_writes=100, interval_seconds=60), tmp_path)
    plugin.open(PersistenceStatus())
    start = plugin._last_time
    assert not plugin.checkpoint_due(start, 0)
    assert not plugin.checkpoint_due(start + 10, 99)
    assert plugin.checkpoint_due(start + 10, 100)
    assert plugin.checkpoint_due(start + 61, 1)
    assert not plugin.checkpoint_due(start + 61, 0)  # nothing changed


def test_the_manager_takes_a_snapshot_when_one_is_due(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def go() -> None:
        h = wal_and_snapshot(data_dir, after_writes=50)
        await h.start()
        for index in range(60):
            h.apply(Mutation(Op.SET, 0, b"k%d" % index, b"v"))
        await h.turn()
        h.manager.tick(0.0)
        await h.manager._background
        refs = h.snapshot.snapshots()
        assert refs and refs[0].seq == 60
        assert dict(h.manager.info_fields())["rdb_changes_since_last_save"] == 0
        await h.stop(save=False)

    run(go())


def test_a_snapshot_whose_walk_meets_a_resize_starts_again_and_is_exact(
        tmp_path: Path, caplog) -> None:
    """The engine walks its dict in place; when writes make the dict resize mid-walk, the walk
    cannot go on (KeyspaceChanged), the image is abandoned and the manager takes it again."""
    data_dir = tmp_path / "data"
    keys = 60_000

    async def go() -> tuple[int, dict]:
        h = wal_and_snapshot(data_dir)
        await h.start()
        for index in range(keys):
            h.apply(Mutation(Op.SET, 0, b"k%d" % index, b"v%d" % index))
        await h.turn()
        table = h.databases[0]._data  # type: ignore[attr-defined]
        size = dict.__sizeof__(table)  # the entry array, without the LRU links

        async def grow_once_the_walk_began() -> None:
            while (h.manager._current_image is None
                   or h.manager._current_image.keys_walked == 0):
                await asyncio.sleep(0)
            index = 0
            while dict.__sizeof__(table) == size:  # until the dict resizes
                h.apply(Mutation(Op.SET, 0, b"new%d" % index, b"v"))
                index += 1

        grower = asyncio.create_task(grow_once_the_walk_began())
        with caplog.at_level(logging.INFO, logger="distcache.persistence"):
            await h.manager.save()
        await grower
        seq = h.snapshot.snapshots()[0].seq
        expected: dict = {}
        for mutation in h.history:
            if mutation.seq <= seq:
                apply_to_model(expected, mutation)
        await h.stop(save=False)
        return seq, live(expected)

    seq, expected = run(go())
    assert "dict was resized during the walk" in caplog.text
    loaded = databases(2)

    async def load() -> None:
        snapshot = MmapSnapshot(SnapshotSettings(), data_dir)
        snapshot.open(PersistenceStatus())
        ref = snapshot.snapshots()[0]
        assert ref.seq == seq
        await snapshot.load_snapshot(ref, RecoveryTarget(loaded, PersistenceStatus()))
        await snapshot.close()

    run(load())
    assert engine_state(loaded) == expected


def test_check_snapshot_and_the_header(tmp_path: Path, cli) -> None:
    data_dir = tmp_path / "data"

    async def go() -> None:
        h = Harness(MmapSnapshot(SnapshotSettings(), data_dir), data_dir, databases(1))
        await h.start()
        for index in range(100):
            h.apply(Mutation(Op.SET, 0, b"k%d" % index, b"v" * index))
        await h.manager.save()
        await h.stop(save=False)

    run(go())
    folder = data_dir / "mmap_snapshot"
    (snapshot,) = folder.glob("snapshot-*.dcsnap")
    header = Header.unpack(snapshot.read_bytes())
    assert (header.seq, header.key_count, header.overlay_count) == (100, 100, 0)
    out = io.StringIO()
    assert check_snapshots(folder, out) == 0 and "100 keys" in out.getvalue()
    done = cli("check-snapshot", str(snapshot))
    assert done.returncode == 0 and "sequence 100, 100 keys" in done.stdout
    data = bytearray(snapshot.read_bytes())
    data[HEADER_SIZE + 500] ^= 1
    snapshot.write_bytes(bytes(data))
    done = cli("check-snapshot", str(folder))
    assert done.returncode == 1 and "body checksum mismatch" in done.stdout
