"""The behaviour every :class:`~distcache_core.contracts.Persistence` plugin must show.

Use it from a plugin's test module::

    class TestMyPersistence(PersistenceContract):
        role = "snapshot"                       # or "log"
        def make_plugin(self, data_dir): return MyPersistence(None, data_dir)
        def make_databases(self, count): return [MyEngine() for _ in range(count)]

Everything runs for real: files in pytest's ``tmp_path``, the node's
:class:`~distcache_core.persistence.PersistenceManager` driving the plugin on an asyncio loop,
a real storage engine. Writes are applied to the engines and emitted on a
:class:`~distcache_core.mutations.MutationStream` in that order, as the node does; a dict model
applies the same mutations, and after a restart the recovered engines must equal it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..contracts import Persistence, StorageEngine
from ..errors import PersistenceError
from ..mutations import Mutation, MutationStream, Op, replay
from ..persistence import PersistenceManager

#: (db, key) -> (value, expire_at_ms)
State = dict[tuple[int, bytes], tuple[bytes, int | None]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def apply_to_model(model: State, mutation: Mutation) -> None:
    """What a mutation does, as plainly as possible: the reference the engines must match."""
    op, db, key = mutation.op, mutation.db, mutation.key
    if op is Op.SET:
        assert mutation.value is not None
        model[(db, key)] = (mutation.value, mutation.expire_at_ms)
    elif op is Op.DEL:
        model.pop((db, key), None)
    elif op is Op.EXPIRE:
        if (db, key) in model:
            model[(db, key)] = (model[(db, key)][0], mutation.expire_at_ms)
    elif op is Op.FLUSHDB:
        for entry in [k for k in model if k[0] == db]:
            del model[entry]
    elif op is Op.FLUSHALL:
        model.clear()
    elif op is Op.SWAPDB:
        other = mutation.other_db
        swapped = {(other if d == db else db if d == other else d, k): v
                   for (d, k), v in model.items()}
        model.clear()
        model.update(swapped)
    else:  # pragma: no cover
        raise AssertionError(op)


def live(model: State, at_ms: int | None = None) -> State:
    at_ms = now_ms() if at_ms is None else at_ms
    return {k: v for k, v in model.items() if v[1] is None or v[1] > at_ms}


def engine_state(databases: Sequence[StorageEngine]) -> State:
    return {(db, key): (value, expire_at_ms)
            for db, engine in enumerate(databases)
            for key, value, expire_at_ms in engine.items()}


class Harness:
    """A node's persistence side without its network: engines, stream, manager."""

    def __init__(self, plugin: Persistence, data_dir: Path,
                 databases: Sequence[StorageEngine]) -> None:
        self.plugin = plugin
        self.databases = list(databases)
        self.stream = MutationStream()
        self.manager = PersistenceManager([(plugin.name, plugin)], data_dir)
        self.model: State = {}
        self.history: list[Mutation] = []

    async def start(self) -> Any:
        self.manager.open()
        report = await self.manager.recover(self.databases, self.stream)
        self.model = engine_state(self.databases)
        return report

    def apply(self, mutation: Mutation) -> Mutation:
        """Apply to the engines, then emit (the stream numbers it), as an engine does."""
        replay((mutation,), self.databases)
        if self.stream.active:
            self.stream.emit(mutation)
        apply_to_model(self.model, mutation)
        self.history.append(mutation)
        return mutation

    async def turn(self) -> None:
        """End of a loop turn that wrote: wait for the durability barrier, as dispatch does."""
        barrier = self.manager.barrier()
        if barrier is not None:
            await barrier

    async def stop(self, *, save: bool = True) -> None:
        await self.manager.close(save=save)


def random_mutation(rng: random.Random, keys: Sequence[bytes], dbs: int,
                    max_value: int = 64) -> Mutation:
    key = rng.choice(keys)
    db = rng.randrange(dbs)
    roll = rng.random()
    if roll < 0.6:
        expire = None if rng.random() < 0.7 else now_ms() + rng.randrange(60_000, 600_000)
        return Mutation(Op.SET, db, key, rng.randbytes(rng.randrange(max_value + 1)), expire)
    if roll < 0.8:
        return Mutation(Op.DEL, db, key)
    if roll < 0.97:
        expire = None if rng.random() < 0.3 else now_ms() + rng.randrange(60_000, 600_000)
        return Mutation(Op.EXPIRE, db, key, None, expire)
    return Mutation(Op.FLUSHDB, db, b"")


BINARY_KEYS = [b"", b"\x00", b"\r\n", b"key\x00with\r\nnul", bytes(range(256)), b"k" * 1000,
               "ключ".encode(), b"\xff\xfe"]


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(_run(coro))


async def _run(coro: Awaitable[Any]) -> Any:
    return await coro


class PersistenceContract:
    """Mixin of ``test_*`` methods; subclasses implement :meth:`make_plugin` and
    :meth:`make_databases` and set :attr:`role`."""

    role = "snapshot"
    databases_count = 3

    def make_plugin(self, data_dir: Path) -> Persistence:
        raise NotImplementedError

    def make_databases(self, count: int) -> list[StorageEngine]:
        raise NotImplementedError

    # --- helpers --------------------------------------------------------------------------------

    def harness(self, data_dir: Path) -> Harness:
        return Harness(self.make_plugin(data_dir), data_dir,
                       self.make_databases(self.databases_count))

    def restart(self, data_dir: Path,
                check: Callable[[Harness, Any], Awaitable[None]] | None = None) -> Harness:
        """A new harness on ``data_dir``, recovered, checked, stopped without saving."""
        async def go() -> Harness:
            harness = self.harness(data_dir)
            report = await harness.start()
            try:
                if check is not None:
                    await check(harness, report)
            finally:
                await harness.stop(save=False)
            return harness

        result: Harness = run(go())
        return result

    async def write(self, harness: Harness, mutations: Sequence[Mutation],
                    per_turn: int = 7) -> None:
        for index, mutation in enumerate(mutations):
            harness.apply(mutation)
            if index % per_turn == per_turn - 1:
                await harness.turn()
        await harness.turn()

    def damage(self, ref: Any) -> None:
        """Corrupt the snapshot ``ref`` the way a bad disk would: a byte flipped in the middle
        of the file (of its largest file, for a directory). Override when that may hit
        bytes the format does not use."""
        path = Path(ref.path)
        if path.is_dir():
            path = max((p for p in path.iterdir() if p.is_file()), key=lambda p: p.stat().st_size)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))

    async def persist(self, harness: Harness) -> None:
        """Make what was written so far recoverable: snapshot plugins save."""
        if self.role == "snapshot":
            await harness.manager.save()

    # --- the tests ------------------------------------------------------------------------------

    def test_role_and_name(self, tmp_path: Path) -> None:
        plugin = self.make_plugin(tmp_path)
        assert plugin.role == self.role
        assert plugin.name

    def test_fresh_data_dir_recovers_nothing(self, tmp_path: Path) -> None:
        async def check(harness: Harness, report: Any) -> None:
            assert engine_state(harness.databases) == {}
            assert report.keys_loaded == report.records_replayed == 0
            assert not report.warnings
            assert not harness.manager.status.loading

        self.restart(tmp_path / "data", check)

    def test_round_trip_of_a_random_workload(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        rng = random.Random(8)
        keys = [b"key:%d" % i for i in range(40)] + BINARY_KEYS

        async def first_life() -> State:
            harness = self.harness(data_dir)
            await harness.start()
            await self.write(harness, [random_mutation(rng, keys, self.databases_count)
                                       for _ in range(600)])
            await self.persist(harness)
            await self.write(harness, [random_mutation(rng, keys, self.databases_count)
                                       for _ in range(300)])
            await harness.stop()  # graceful: snapshot plugins save at shutdown
            return live(harness.model)

        expected = run(first_life())
        assert expected  # the workload leaves keys behind

        async def check(harness: Harness, report: Any) -> None:
            assert engine_state(harness.databases) == live(expected)
            assert report.last_sequence >= 900 if self.role == "log" else True

        self.restart(data_dir, check)
        self.restart(data_dir, check)  # recovering twice changes nothing

    def test_value_sizes_from_0_bytes_to_1_MB(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        sizes = sorted({0, 1, 2, 3, 255, 256, 4095, 4096, 65535, 65536, 1 << 20,
                        *(1 << n for n in range(20)), *((1 << n) + 1 for n in range(19))})
        rng = random.Random(5)
        values = {b"v%d" % size: rng.randbytes(size) for size in sizes}

        async def first_life() -> None:
            harness = self.harness(data_dir)
            await harness.start()
            await self.write(harness, [Mutation(Op.SET, 0, key, value)
                                       for key, value in values.items()])
            await self.persist(harness)
            await harness.stop(save=False)

        run(first_life())

        async def check(harness: Harness, report: Any) -> None:
            assert engine_state(harness.databases) == {
                (0, key): (value, None) for key, value in values.items()}

        self.restart(data_dir, check)

    def test_keys_expiring_during_downtime_stay_expired(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        soon = now_ms() + 300
        later = now_ms() + 3_600_000

        async def first_life() -> None:
            harness = self.harness(data_dir)
            await harness.start()
            await self.write(harness, [
                Mutation(Op.SET, 0, b"short", b"1", soon),
                Mutation(Op.SET, 1, b"long", b"2", later),
                Mutation(Op.SET, 0, b"forever", b"3"),
                Mutation(Op.SET, 2, b"expire-later", b"4"),
                Mutation(Op.EXPIRE, 2, b"expire-later", None, soon),
                # Expired by its SET's time, revived by the EXPIRE after it: alive.
                Mutation(Op.SET, 0, b"revived", b"5", soon),
                Mutation(Op.EXPIRE, 0, b"revived", None, later),
            ])
            await self.persist(harness)
            await harness.stop(save=False)

        run(first_life())
        while now_ms() <= soon:  # the node is "down" until both expiries pass
            time.sleep(0.05)

        async def check(harness: Harness, report: Any) -> None:
            assert engine_state(harness.databases) == {
                (1, b"long"): (b"2", later), (0, b"forever"): (b"3", None),
                (0, b"revived"): (b"5", later)}
            assert report.keys_expired >= 1

        self.restart(data_dir, check)

    def test_checkpoint_under_writes_is_a_point_in_time(self, tmp_path: Path) -> None:
        """While the image is read, a writer keeps changing keys; the snapshot must hold
        exactly the keyspace as of its sequence number."""
        data_dir = tmp_path / "data"
        rng = random.Random(11)
        keys = [b"key:%d" % i for i in range(3000)]

        async def first_life() -> tuple[int, State]:
            harness = self.harness(data_dir)
            await harness.start()
            await self.write(harness, [Mutation(Op.SET, rng.randrange(3), key, b"old" + key)
                                       for key in keys], per_turn=200)
            done = asyncio.Event()

            async def writer() -> None:
                while not done.is_set():
                    for _ in range(20):
                        harness.apply(random_mutation(rng, keys, self.databases_count, 16))
                    await harness.turn()
                    # A real pause, as a loaded node has between bursts of requests. A loop
                    # that never idles starves the writer thread of the GIL: the loop takes it
                    # back after each brief release (select), and the thread's forced switch
                    # never fires (measured: ~100 ms per GIL round trip of the thread).
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(writer())
            plugin = harness.plugin
            from ..persistence import ImageAborted, KeyspaceImage

            for _ in range(3):  # as the manager does when the walk cannot go on
                try:
                    async with KeyspaceImage(harness.databases, harness.stream,
                                             slice_seconds=0.0002) as image:
                        ref = await plugin.checkpoint(image)
                    break
                except ImageAborted:
                    continue
            done.set()
            await task
            assert ref is not None and image.seq is not None and image.overlay_count > 0
            expected: State = {}
            for mutation in harness.history:
                if mutation.seq <= ref.seq:
                    apply_to_model(expected, mutation)
            await harness.stop(save=False)
            return ref.seq, live(expected)

        seq, expected = run(first_life())

        async def load() -> State:
            plugin = self.make_plugin(data_dir)
            from ..persistence import PersistenceStatus, RecoveryTarget

            plugin.open(PersistenceStatus())
            refs = plugin.snapshots()
            assert refs[0].seq == seq
            databases = self.make_databases(self.databases_count)
            await plugin.load_snapshot(refs[0], RecoveryTarget(databases, PersistenceStatus()))
            await plugin.close()
            return engine_state(databases)

        assert run(load()) == expected

    def test_a_damaged_newest_snapshot_falls_back_to_the_one_before(self, tmp_path: Path
                                                                    ) -> None:
        data_dir = tmp_path / "data"
        rng = random.Random(12)
        keys = [b"key:%d" % i for i in range(200)]

        async def first_life() -> tuple[list[State], Any]:
            harness = self.harness(data_dir)
            await harness.start()
            states = []
            for _ in range(2):
                await self.write(harness, [random_mutation(rng, keys, self.databases_count)
                                           for _ in range(400)])
                await harness.manager.save()
                states.append(live(harness.model))
            newest = harness.plugin.snapshots()[0]
            await harness.stop(save=False)
            return states, newest

        (state_at_first_save, state_at_second_save), newest = run(first_life())
        refs_before = len(self.make_plugin_snapshots(data_dir))
        assert refs_before >= 2
        self.damage(newest)

        async def check(harness: Harness, report: Any) -> None:
            assert any("not used" in warning for warning in report.warnings), report.warnings
            if self.role == "log":  # the older snapshot plus the log: nothing lost
                assert engine_state(harness.databases) == state_at_second_save
            else:  # the older snapshot alone: an older state, but a whole one
                assert report.snapshot and report.snapshot != newest.path
                assert engine_state(harness.databases) == state_at_first_save

        self.restart(data_dir, check)

    def make_plugin_snapshots(self, data_dir: Path) -> list[Any]:
        from ..persistence import PersistenceStatus

        plugin = self.make_plugin(data_dir)
        plugin.open(PersistenceStatus())
        return plugin.snapshots()

    def test_a_second_node_on_the_same_data_dir_is_refused(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"

        async def go() -> None:
            first = self.harness(data_dir)
            await first.start()
            try:
                second = self.harness(data_dir)
                with pytest.raises(PersistenceError, match="in use by another node"):
                    second.manager.open()
            finally:
                await first.stop()
            third = self.harness(data_dir)  # released on close
            await third.start()
            await third.stop()

        run(go())

    def test_a_data_dir_that_cannot_be_created_is_a_start_up_error(self, tmp_path: Path
                                                                   ) -> None:
        blocker = tmp_path / "a-file"
        blocker.write_bytes(b"")
        harness = self.harness(blocker / "data")
        with pytest.raises(PersistenceError, match="a-file"):
            harness.manager.open()

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a read-only tmpfs")
    def test_a_read_only_data_dir_is_a_start_up_error(self, tmp_path: Path) -> None:
        import subprocess

        mount_point = tmp_path / "ro"
        mount_point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                               str(mount_point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount: {done.stderr!r}")
        try:
            harness = self.harness(mount_point)
            with pytest.raises(PersistenceError, match="not writable|cannot be created"):
                harness.manager.open()
        finally:
            subprocess.run(["umount", str(mount_point)], check=True)

    def test_info_fields(self, tmp_path: Path) -> None:
        async def check(harness: Harness, report: Any) -> None:
            fields = dict(harness.manager.info_fields())
            for name in ("loading", "rdb_changes_since_last_save", "rdb_bgsave_in_progress",
                         "rdb_last_save_time", "rdb_last_bgsave_status", "aof_enabled",
                         "aof_rewrite_in_progress", "aof_last_bgrewrite_status"):
                assert name in fields, name
            assert fields["loading"] == 0
            assert fields["aof_enabled"] == (1 if self.role == "log" else 0)
            for name, value in harness.plugin.info():
                assert isinstance(name, str) and ":" not in name and "\n" not in str(value)

        self.restart(tmp_path / "data", check)
