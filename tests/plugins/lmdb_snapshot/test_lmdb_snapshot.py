"""The persistence contract on the LMDB snapshot, and its layout as LMDB tools see it."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import lmdb
import pytest

from distcache_core.contracts import StorageEngine
from distcache_core.mutations import Mutation, Op
from distcache_core.testing.persistence_contract import Harness, PersistenceContract, run
from distcache_plugins.lmdb_snapshot import LmdbSnapshot, LmdbSnapshotSettings
from distcache_plugins.lmdb_snapshot.check import check_environments
from distcache_plugins.lmdb_snapshot.layout import decode_long, decode_record
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
        Mutation(Op.SET, 0, b"gone", b"x"),
        Mutation(Op.DEL, 0, b"gone"),
        Mutation(Op.SET, 0, b"", b"empty key"),
        Mutation(Op.SET, 0, b"L" * 600, b"long key"),
    ])
    env = lmdb.open(str(environment), readonly=True, lock=False, max_dbs=64)
    with env.begin() as txn:
        meta = dict(txn.cursor(db=env.open_db(b"meta", txn=txn, create=False)))
        assert meta[b"format_version"] == b"1" and meta[b"complete"] == b"1"
        assert meta[b"seq"] == b"6" and meta[b"keys"] == b"4"
        assert meta[b"databases"] == b"0,2"
        db0 = dict(txn.cursor(db=env.open_db(b"db0", txn=txn, create=False)))
        db2 = dict(txn.cursor(db=env.open_db(b"db2", txn=txn, create=False)))
        long = dict(txn.cursor(db=env.open_db(b"db0.long", txn=txn, create=False)))
    env.close()
    assert {decode_long(v)[0] for v in long.values()} == {b"", b"L" * 600}
    assert set(long) == {hashlib.sha256(b"").digest(), hashlib.sha256(b"L" * 600).digest()}
    assert {k: decode_record(v) for k, v in db0.items()} == {b"plain": (b"v", None)}
    assert decode_record(db2[b"ttl"]) == (b"w", 4_102_444_800_000)
    if shutil.which("mdb_stat"):
        done = subprocess.run(["mdb_stat", "-a", str(environment)], capture_output=True,
                              text=True)
        assert done.returncode == 0 and "db0" in done.stdout


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
