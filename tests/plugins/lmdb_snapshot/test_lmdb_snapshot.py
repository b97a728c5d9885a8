"""The persistence contract on the LMDB snapshot, and its layout as LMDB tools see it."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import lmdb
import pytest

from distcache_core.contracts import StorageEngine
from distcache_core.mutations import Mutation, Op
from distcache_core.persistence import PersistenceStatus, RecoveryTarget
from distcache_core.testing.persistence_contract import Harness, PersistenceContract, run
from distcache_plugins.lmdb_snapshot import LmdbSnapshot, LmdbSnapshotSettings
from distcache_plugins.lmdb_snapshot.check import check_environments, verify
from distcache_plugins.lmdb_snapshot.layout import LayoutError, decode_long, encode_long
from distcache_plugins.lru_ttl import LruTtlEngine


def databases(count: int) -> list[StorageEngine]:
    root = LruTtlEngine(capacity=0)
    return [root.open_database(i) for i in range(count)]


def change_a_value_behind_its_back(path: Path) -> None:
    """Silent damage LMDB itself cannot see: one value's bytes changed in place."""
    env = lmdb.open(str(path), subdir=True, max_dbs=64, map_size=1 << 30)
    try:
        with env.begin(write=True) as txn:
            db = env.open_db(b"db0", txn=txn)
            key, record = next(iter(txn.cursor(db=db)))
            txn.put(key, record + b"!", db=db)  # the value gains a byte
    finally:
        env.close()


class TestLmdbSnapshotContract(PersistenceContract):
    role = "snapshot"

    def make_plugin(self, data_dir: Path) -> LmdbSnapshot:
        return LmdbSnapshot(LmdbSnapshotSettings(map_size_bytes=1 << 30), data_dir)

    def make_databases(self, count: int) -> list[StorageEngine]:
        return databases(count)

    def damage(self, ref: Any) -> None:
        # A flipped byte in data.mdb may land in a free page; change a live value instead.
        change_a_value_behind_its_back(Path(ref.path))


def saved(data_dir: Path, mutations: list[Mutation]) -> Path:
    async def go() -> None:
        h = Harness(LmdbSnapshot(LmdbSnapshotSettings(map_size_bytes=1 << 30), data_dir),
                    data_dir, databases(3))
        await h.start()
        for mutation in mutations:
            h.apply(mutation)
        await h.manager.save()
        await h.stop(save=False)

    run(go())
    (environment,) = (data_dir / "lmdb_snapshot").glob("snapshot-*.lmdb")
    return environment


def test_the_layout_as_lmdb_tools_see_it(tmp_path: Path) -> None:
    environment = saved(tmp_path / "data", [
        Mutation(Op.SET, 0, b"plain", b"v"),
        Mutation(Op.SET, 2, b"ttl", b"w", 4_102_444_800_000),
        Mutation(Op.SET, 0, b"gone", b"x", 4_102_444_800_000),
        Mutation(Op.DEL, 0, b"gone"),
        Mutation(Op.SET, 0, b"", b"empty key"),
        Mutation(Op.SET, 0, b"L" * 600, b"long key", 4_102_444_800_001),
    ])
    env = lmdb.open(str(environment), readonly=True, lock=False, max_dbs=64)
    with env.begin() as txn:
        def table(name: bytes) -> dict[bytes, bytes]:
            return dict(txn.cursor(db=env.open_db(name, txn=txn, create=False)))

        meta = table(b"meta")
        assert meta[b"format_version"] == b"2" and meta[b"complete"] == b"1"
        assert meta[b"seq"] == b"6" and meta[b"keys"] == b"4"
        assert meta[b"databases"] == b"0,2"
        db0, db0_ttl, db2, db2_ttl, long = (table(name) for name in (
            b"db0", b"db0.ttl", b"db2", b"db2.ttl", b"db0.long"))
        stream = b"".join(key + value for name in (b"db0.ttl", b"db0", b"db0.long", b"db2.ttl",
                                                   b"db2")
                          for key, value in txn.cursor(db=env.open_db(name, txn=txn,
                                                                      create=False)))
    env.close()
    assert db0 == {b"plain": b"v"} and db2 == {b"ttl": b"w"}
    assert db2_ttl == {b"ttl": struct.pack("<q", 4_102_444_800_000)}
    long_id = hashlib.sha256(b"L" * 600).digest()
    assert db0_ttl == {long_id: struct.pack("<q", 4_102_444_800_001)}
    assert {decode_long(v) for v in long.values()} == {(b"", b"empty key"),
                                                       (b"L" * 600, b"long key")}
    assert set(long) == {hashlib.sha256(b"").digest(), long_id}
    assert int(meta[b"checksum"]) == zlib.crc32(stream)
    if shutil.which("mdb_stat"):
        done = subprocess.run(["mdb_stat", "-a", str(environment)], capture_output=True,
                              text=True)
        assert done.returncode == 0 and "db0" in done.stdout


def write_version_1(path: Path, keys: dict[tuple[int, bytes], tuple[bytes, int | None]]
                    ) -> None:
    """An environment as the version-1 layout had it (records, a sum of CRCs)."""
    path.mkdir(parents=True)
    env = lmdb.open(str(path), subdir=True, max_dbs=64, map_size=1 << 30)
    total = 0
    with env.begin(write=True) as txn:
        for (db, key), (value, expiry) in keys.items():
            name = b"db%d" % db
            record = struct.pack("<BBq", 1, 0 if expiry is None else 1, expiry or 0) + value
            if 0 < len(key) <= 511:
                txn.put(key, record, db=env.open_db(name, txn=txn))
            else:
                txn.put(hashlib.sha256(key).digest(), encode_long(key, record),
                        db=env.open_db(name + b".long", txn=txn))
            total += zlib.crc32(record, zlib.crc32(key, zlib.crc32(name)))
        meta = env.open_db(b"meta", txn=txn)
        dbs = sorted({db for db, _ in keys})
        for field, value in ((b"format_version", b"1"), (b"seq", b"7"),
                             (b"keys", b"%d" % len(keys)), (b"created_at_ms", b"1"),
                             (b"checksum", b"%d" % (total % (1 << 64))), (b"complete", b"1"),
                             (b"databases", b",".join(b"%d" % db for db in dbs))):
            txn.put(field, value, db=meta)
    env.close()


def test_a_version_1_environment_still_loads_and_checks(tmp_path: Path) -> None:
    keys = {(0, b"a"): (b"1", None), (0, b"b"): (b"2", 4_102_444_800_000),
            (1, b"L" * 600): (b"long", None), (1, b""): (b"", 4_102_444_800_000)}
    environment = tmp_path / "lmdb_snapshot" / "snapshot-00000000000000000007.lmdb"
    write_version_1(environment, keys)
    assert verify(environment) == (7, 4)
    plugin = LmdbSnapshot(LmdbSnapshotSettings(), tmp_path)
    plugin.open(PersistenceStatus())
    loaded = databases(2)
    run(plugin.load_snapshot(plugin.snapshots()[0],
                             RecoveryTarget(loaded, PersistenceStatus())))
    assert {(db, key): (value, expiry) for db, engine in enumerate(loaded)
            for key, value, expiry in engine.items()} == keys
    change_a_value_behind_its_back(environment)
    with pytest.raises(LayoutError, match="checksum mismatch"):
        verify(environment)


def test_check_snapshot_finds_silent_damage(tmp_path: Path, cli) -> None:
    environment = saved(tmp_path / "data", [Mutation(Op.SET, 0, b"k%d" % i, b"v" * i)
                                            for i in range(50)])
    out = io.StringIO()
    assert check_environments(environment.parent, out) == 0
    assert "sequence 50, 50 keys: OK" in out.getvalue()
    done = cli("check-snapshot", str(environment))
    assert done.returncode == 0, done.stdout + done.stderr
    change_a_value_behind_its_back(environment)
    done = cli("check-snapshot", str(environment.parent))
    assert done.returncode == 1 and "checksum mismatch" in done.stdout


@pytest.mark.parametrize("field", [b"complete", b"seq"])
def test_an_environment_with_a_bad_meta_is_not_loaded(tmp_path: Path, field: bytes) -> None:
    environment = saved(tmp_path / "data", [Mutation(Op.SET, 0, b"k", b"v")])
    env = lmdb.open(str(environment), subdir=True, max_dbs=64, map_size=1 << 30)
    with env.begin(write=True) as txn:
        txn.delete(field, db=env.open_db(b"meta", txn=txn))
    env.close()
    out = io.StringIO()
    assert check_environments(environment, out) == 1
    assert "BAD" in out.getvalue()
