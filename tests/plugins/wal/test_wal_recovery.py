"""The WAL on real files: torn tails at every offset, damage in the middle, repair, segments,
compaction and rewrite, group commit."""

from __future__ import annotations

import asyncio
import io
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from distcache_core.errors import CorruptLogError
from distcache_core.mutations import Mutation, Op
from distcache_core.persistence import PersistenceStatus, RecoveryTarget
from distcache_core.testing.persistence_contract import (
    Harness,
    State,
    apply_to_model,
    engine_state,
    live,
    random_mutation,
    run,
)
from distcache_plugins.wal import WalPersistence, WalSettings
from distcache_plugins.wal.check import check_wal
from distcache_plugins.wal.format import SEGMENT_HEADER_SIZE, iter_records
from distcache_plugins.wal.segments import list_files

from .test_wal_contract import databases

DBS = 2


def harness(data_dir: Path, **settings) -> Harness:
    plugin = WalPersistence(WalSettings(**{"fsync": "always", **settings}), data_dir)
    return Harness(plugin, data_dir, databases(DBS))


def write_log(data_dir: Path, count: int, seed: int = 1, value_size: int = 12,
              **settings) -> list[Mutation]:
    """A log of ``count`` random mutations; returns them in order (with their seq)."""
    rng = random.Random(seed)
    keys = [b"k%d" % i for i in range(max(count // 3, 3))]

    async def go() -> list[Mutation]:
        h = harness(data_dir, **settings)
        await h.start()
        for index in range(count):
            h.apply(random_mutation(rng, keys, DBS, value_size))
            if index % 5 == 4:
                await h.turn()
                if settings.get("fsync", "always") != "always":
                    # Nothing waits for everysec's barrier: let the loop run the flush and
                    # the writer thread's roll, as a serving node's loop would.
                    await asyncio.sleep(0.001)
        await h.turn()
        await h.stop()
        return h.history

    history: list[Mutation] = run(go())
    return history


@pytest.fixture
def memory_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on tmpfs when there is one: the every-offset test truncates and fsyncs a
    thousand times, 4 ms each on this machine's disk and nothing on tmpfs."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="distcache-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def model_after(history: list[Mutation], count: int) -> State:
    model: State = {}
    for mutation in history[:count]:
        apply_to_model(model, mutation)
    return live(model)


async def replay_alone(data_dir: Path) -> tuple[State, list[str], int]:
    """Replay the WAL alone (no thread, no manager): state, warnings, last seq."""
    plugin = WalPersistence(WalSettings(), data_dir)
    plugin.open(PersistenceStatus())
    dbs = databases(DBS)
    target = RecoveryTarget(dbs, PersistenceStatus())
    last = await plugin.replay(0, target)
    return engine_state(dbs), target.warnings, last


def recover(data_dir: Path) -> tuple[State, list[str], int]:
    result: tuple[State, list[str], int] = run(replay_alone(data_dir))
    return result


def only_segment(data_dir: Path) -> Path:
    logs, _ = list_files(data_dir / "wal")
    assert len(logs) == 1
    return logs[0].path


def record_ends(path: Path) -> list[int]:
    data = path.read_bytes()
    return [end for _, _, _, end in iter_records(data, SEGMENT_HEADER_SIZE, len(data))]


def test_truncated_at_every_byte_offset(tmp_path: Path, memory_dir: Path) -> None:
    """Whatever prefix of the file survives a crash, recovery starts, applies exactly the whole
    records in it and cuts the rest off."""
    source = tmp_path / "source"
    history = write_log(source, 24, value_size=6)
    segment = only_segment(source)
    data = segment.read_bytes()
    ends = record_ends(segment)
    assert len(ends) == 24
    work = memory_dir / "work"
    shutil.copytree(source, work)
    target_file = work / "wal" / segment.name

    async def every_size() -> None:
        for size in range(len(data) + 1):
            target_file.write_bytes(data[:size])
            whole = sum(1 for end in ends if end <= size)
            state, warnings, last = await replay_alone(work)
            assert state == model_after(history, whole), size
            assert last == (history[whole - 1].seq if whole else 0), size
            at_boundary = size == SEGMENT_HEADER_SIZE or size in ends
            assert bool(warnings) != at_boundary, (size, warnings)
            if size < SEGMENT_HEADER_SIZE:
                assert not target_file.exists()  # a segment cut off in its header is removed
            else:
                expected_size = max([SEGMENT_HEADER_SIZE] + [e for e in ends if e <= size])
                assert target_file.stat().st_size == expected_size

    run(every_size())


def test_truncated_at_random_offsets_of_a_large_log(tmp_path: Path) -> None:
    source = tmp_path / "source"
    history = write_log(source, 3000, seed=2, value_size=200)
    segment = only_segment(source)
    data = segment.read_bytes()
    ends = record_ends(segment)
    rng = random.Random(3)
    work = tmp_path / "work"
    for size in sorted(rng.sample(range(SEGMENT_HEADER_SIZE, len(data)), 12)):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work)
        (work / "wal" / segment.name).write_bytes(data[:size])
        whole = sum(1 for end in ends if end <= size)
        state, _, _ = recover(work)
        assert state == model_after(history, whole)


def test_damage_in_the_middle_refuses_to_start_and_repair_keeps_the_prefix(tmp_path: Path
                                                                        ) -> None:
    source = tmp_path / "source"
    history = write_log(source, 200, seed=4)
    segment = only_segment(source)
    data = segment.read_bytes()
    ends = record_ends(segment)
    starts = [SEGMENT_HEADER_SIZE, *ends[:-1]]
    rng = random.Random(5)
    work = tmp_path / "work"
    for _ in range(15):
        index = rng.randrange(0, len(starts) - 2)  # a record with valid records after it
        position = rng.randrange(starts[index], ends[index])
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work)
        damaged = bytearray(data)
        damaged[position] ^= 1 << rng.randrange(8)
        wal_file = work / "wal" / segment.name
        wal_file.write_bytes(bytes(damaged))
        with pytest.raises(CorruptLogError) as caught:
            recover(work)
        assert caught.value.offset == starts[index]
        assert caught.value.path == str(wal_file)
        message = str(caught.value)
        assert f"offset {starts[index]}" in message and str(wal_file) in message
        assert f"distcache check-wal {work / 'wal'}" in message
        out = io.StringIO()
        assert check_wal(work / "wal", repair=False, out=out) == 1
        assert f"CORRUPT at offset {starts[index]}" in out.getvalue()
        assert check_wal(work / "wal", repair=True, out=io.StringIO()) == 0
        backups = list((work / "wal").glob("*.bak-*"))
        assert len(backups) == 1 and backups[0].read_bytes() == bytes(damaged)
        state, warnings, _ = recover(work)
        assert state == model_after(history, index)
        assert not warnings
        assert check_wal(work / "wal", repair=False, out=io.StringIO()) == 0


def test_damaged_header_refuses_and_repair_moves_the_segment_aside(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_log(data_dir, 20)
    segment = only_segment(data_dir)
    damaged = bytearray(segment.read_bytes())
    damaged[10] ^= 0xFF
    segment.write_bytes(bytes(damaged))
    with pytest.raises(CorruptLogError) as caught:
        recover(data_dir)
    assert caught.value.offset == 0
    assert check_wal(data_dir / "wal", repair=True, out=io.StringIO()) == 0
    assert recover(data_dir)[0] == {}


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_segments_roll_and_recovery_reads_them_in_order(tmp_path: Path, fsync: str) -> None:
    """With ``everysec`` and ``no`` the loop writes the records itself and the thread rolls."""
    data_dir = tmp_path / "data"
    history = write_log(data_dir, 400, seed=6, segment_max_bytes=2048, fsync=fsync)
    logs, _ = list_files(data_dir / "wal")
    assert len(logs) > 5
    assert [s.seq for s in logs] == sorted(s.seq for s in logs)
    state, warnings, last = recover(data_dir)
    assert state == model_after(history, len(history)) and not warnings
    assert last == history[-1].seq
    # Damage in an older segment is never a torn tail, even at its very end.
    older = logs[1].path
    older.write_bytes(older.read_bytes()[:-3])
    with pytest.raises(CorruptLogError, match=older.name):
        recover(data_dir)


def test_rewrite_compacts_and_recovery_uses_the_base(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(7)
    keys = [b"k%d" % i for i in range(50)]

    async def go() -> State:
        h = harness(data_dir, segment_max_bytes=4096)
        await h.start()
        for _ in range(3):
            for index in range(500):
                h.apply(random_mutation(rng, keys, DBS, 30))
                if index % 10 == 9:
                    await h.turn()
            assert "started" in h.manager.bgrewriteaof()
            while h.manager.checkpoint_in_progress or h.manager._background is None:
                await asyncio.sleep(0.01)
            await h.manager._background
            assert h.manager.aof_last_status == "ok"
        await h.turn()
        await h.stop()
        return live(h.model)

    expected = run(go())
    logs, bases = list_files(data_dir / "wal")
    assert len(bases) == 2  # the newest and the one before
    # Compacted: no segment is left whose records the older of the two bases covers.
    assert len(logs) == 1 or logs[1].seq - 1 > bases[0].seq
    assert logs[0].seq <= bases[0].seq + 1  # ... and nothing after it is missing
    state, _, _ = recover_with_manager(data_dir)
    assert state == expected


def recover_with_manager(data_dir: Path) -> tuple[State, object, Harness]:
    async def go() -> tuple[State, object, Harness]:
        h = harness(data_dir)
        report = await h.start()
        state = engine_state(h.databases)
        await h.stop(save=False)
        return state, report, h

    result: tuple[State, object, Harness] = run(go())
    return result


def test_a_damaged_base_falls_back_to_the_older_one_and_the_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(8)
    keys = [b"k%d" % i for i in range(50)]

    async def go() -> State:
        h = harness(data_dir)
        await h.start()
        for _ in range(2):
            for _ in range(300):
                h.apply(random_mutation(rng, keys, DBS, 30))
            await h.turn()
            await h.manager.save()  # no snapshot plugin: SAVE rewrites the log
            for _ in range(100):
                h.apply(random_mutation(rng, keys, DBS, 30))
            await h.turn()
        await h.stop()
        return live(h.model)

    expected = run(go())
    _, bases = list_files(data_dir / "wal")
    newest = bases[-1].path
    damaged = bytearray(newest.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    newest.write_bytes(bytes(damaged))
    state, report, _ = recover_with_manager(data_dir)
    assert state == expected
    assert any("not used" in w and newest.name in w for w in report.warnings)  # type: ignore


def test_group_commit_shares_fsyncs_and_acknowledges_only_durable_records(tmp_path: Path
                                                                       ) -> None:
    data_dir = tmp_path / "data"
    clients, writes_each = 40, 25

    async def go() -> tuple[int, int]:
        h = harness(data_dir)
        await h.start()
        plugin = h.plugin
        assert isinstance(plugin, WalPersistence)
        segment_path = plugin.segment.path
        assert segment_path is not None

        async def client(number: int) -> None:
            for index in range(writes_each):
                mutation = h.apply(Mutation(Op.SET, 0, b"c%d:%d" % (number, index), b"v"))
                barrier = h.manager.barrier()
                assert barrier is not None
                await barrier
                # Acknowledged: the record is in the file now.
                assert plugin.segment.size >= 0
                assert mutation.seq <= plugin.segment.last_seq

        await asyncio.gather(*(client(n) for n in range(clients)))
        fsyncs = plugin.writer.fsyncs
        records = plugin.writer.records_synced
        await h.stop()
        return fsyncs, records

    fsyncs, records = run(go())
    assert records == clients * writes_each
    assert fsyncs < records / 4  # forty writers share each fsync, not one each
    state, _, _ = recover(data_dir)
    assert len(state) == clients * writes_each
