"""The LMDB snapshot builder process and the frames the node sends it: real processes, real
environments, the failures the node must hear about."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from distcache_core.errors import PersistenceError
from distcache_core.mutations import Mutation, Op
from distcache_core.persistence import PersistenceManager, PersistenceStatus
from distcache_core.testing.persistence_contract import Harness, run
from distcache_plugins.lmdb_snapshot import LmdbSnapshot, LmdbSnapshotSettings, frames
from distcache_plugins.lmdb_snapshot.builder import BuilderProcess
from distcache_plugins.lmdb_snapshot.check import verify
from distcache_plugins.lru_ttl import LruTtlEngine


def test_keys_frames_round_trip_with_and_without_expiries() -> None:
    items = [(b"", b"", None), (b"\x00\r\n" * 200, b"v" * 70_000, 1_900_000_000_000),
             (b"k", b"\xff", None)]
    for block in (items, [(key, value, None) for key, value, _ in items]):
        frame = frames.encode_keys(7, block)
        ((kind, payload),) = frames.read_frames(io.BytesIO(frame))
        assert kind == frames.KEYS
        db, keys, values, expiries = frames.decode_keys(payload)
        assert db == 7 and list(zip(keys, values, expiries, strict=True)) == block


def test_overlay_and_finish_frames_round_trip() -> None:
    mutations = [Mutation(Op.SET, 1, b"a", b"1", 123), Mutation(Op.DEL, 0, b"b"),
                 Mutation(Op.EXPIRE, 2, b"c", None, None), Mutation(Op.FLUSHDB, 3, b"")]
    stream = io.BytesIO(frames.encode_overlay(mutations)
                        + frames.encode_finish(42, 1_700_000_000_000, b"/x/snapshot"))
    (overlay_kind, overlay), (finish_kind, finish) = frames.read_frames(stream)
    assert (overlay_kind, finish_kind) == (frames.OVERLAY, frames.FINISH)
    decoded = frames.decode_overlay(overlay)
    assert [(m.op, m.db, m.key, m.value, m.expire_at_ms) for m in decoded] == [
        (m.op, m.db, m.key, m.value, m.expire_at_ms) for m in mutations]
    assert frames.decode_finish(finish) == (42, 1_700_000_000_000, b"/x/snapshot")


def test_a_frame_cut_short_is_an_error() -> None:
    frame = frames.encode_keys(0, [(b"k", b"v", None)])
    with pytest.raises(frames.FrameError):
        list(frames.read_frames(io.BytesIO(frame[:-1])))
    with pytest.raises(frames.FrameError):
        list(frames.read_frames(io.BytesIO(frame[:3])))


def test_a_builder_publishes_an_environment_that_checks_sound(tmp_path: Path) -> None:
    builder = BuilderProcess(tmp_path / ".tmp-snapshot-test.lmdb", 1 << 30)
    builder.start()
    builder.send(frames.encode_keys(0, [(b"k%d" % i, b"v%d" % i, None) for i in range(1000)]))
    builder.send(frames.encode_keys(2, [(b"x" * 600, b"long key", 1_900_000_000_000)]))
    builder.send(frames.encode_overlay([Mutation(Op.DEL, 0, b"k1"),
                                        Mutation(Op.SET, 0, b"k1000", b"new")]))
    final = tmp_path / "snapshot-00000000000000000009.lmdb"
    assert builder.finish(9, 1_700_000_000_000, final) > 0
    assert not builder.alive()
    assert verify(final) == (9, 1001)
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_a_builder_whose_input_ends_early_leaves_nothing(tmp_path: Path) -> None:
    unused = BuilderProcess(tmp_path / ".tmp-unused.lmdb", 1 << 30)
    unused.start()
    cut = BuilderProcess(tmp_path / ".tmp-cut.lmdb", 1 << 30)
    cut.start()
    cut.send(frames.encode_keys(0, [(b"k", b"v", None)]))
    for builder in (unused, cut):
        builder.abort()
        assert not builder.alive()
    assert list(tmp_path.iterdir()) == []


def test_a_builder_failure_fails_the_checkpoint_with_its_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def go() -> None:
        plugin = LmdbSnapshot(LmdbSnapshotSettings(map_size_bytes=64 * 1024), data_dir)
        engine = LruTtlEngine(capacity=0)
        h = Harness(plugin, data_dir, [engine])
        h.manager = PersistenceManager([("lmdb_snapshot", plugin)], data_dir)
        await h.start()
        for index in range(2000):  # more than a 64 KB map holds
            h.apply(Mutation(Op.SET, 0, b"key%d" % index, b"value" * 10))
        with pytest.raises(PersistenceError, match="builder failed: MapFullError"):
            await h.manager.save()
        assert h.manager.status.write_error is not None  # as Redis's stop-writes-on-error
        await h.stop(save=False)

    run(go())
    leftovers = [p.name for p in (data_dir / "lmdb_snapshot").iterdir()]
    assert leftovers == []


def test_the_spare_builder_is_stopped_at_close(tmp_path: Path) -> None:
    plugin = LmdbSnapshot(LmdbSnapshotSettings(), tmp_path)
    plugin.open(PersistenceStatus())

    async def go() -> BuilderProcess:
        plugin.start(0)
        assert plugin._spare is not None
        spare = plugin._spare.result(timeout=60)
        await plugin.close()
        return spare

    spare = run(go())
    assert not spare.alive() and os.listdir(tmp_path / "lmdb_snapshot") == []
