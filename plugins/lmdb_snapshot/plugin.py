"""The ``lmdb_snapshot`` persistence plugin: snapshots as LMDB environments."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from distcache_core.contracts import SnapshotRef
from distcache_core.errors import CorruptSnapshotError
from distcache_core.persistence import KeyspaceImage, PersistenceBase, RecoveryTarget
from distcache_core.persistence.files import ensure_directory, fsync_dir
from distcache_core.persistence.pipeline import WritePipeline

from . import frames
from .builder import BuilderProcess
from .layout import LayoutError
from .reader import SnapshotReader
from .settings import LmdbSnapshotSettings
from .store import open_readonly, read_meta

NAME_RE = re.compile(r"^snapshot-(\d{20})\.lmdb$")
TMP_PREFIX = ".tmp-snapshot-"


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.lmdb"


def _size(path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in path.iterdir())
    except OSError:
        return 0


class LmdbSnapshot(PersistenceBase):
    """Snapshots in ``<data_dir>/lmdb_snapshot/`` (see :mod:`.layout`)."""

    role = "snapshot"
    name = "lmdb_snapshot"
    check_kind = "snapshot"

    def __init__(self, settings: LmdbSnapshotSettings | None, data_dir: Path) -> None:
        super().__init__()
        self.settings = settings if settings is not None else LmdbSnapshotSettings()
        self.directory = Path(data_dir) / "lmdb_snapshot"
        self.snapshot_on_shutdown = self.settings.on_shutdown
        self._executor: ThreadPoolExecutor | None = None
        self._last_seq = 0
        self._last_time = time.time()
        self._last_seconds = -1.0
        self._last_size = 0
        self._peak_overlay = 0
        self._spare: Future[BuilderProcess] | None = None
        self._builders = 0

    def open(self, status: Any) -> None:
        super().open(status)
        ensure_directory(self.directory, "snapshot directory")
        for entry in os.scandir(self.directory):
            if entry.name.startswith(TMP_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)  # did not finish
        refs = self.snapshots()
        if refs:
            self._last_seq = refs[0].seq
            self._last_time = refs[0].created_at_ms / 1000

    def snapshots(self) -> list[SnapshotRef]:
        refs = []
        for entry in os.scandir(self.directory):
            match = NAME_RE.match(entry.name)
            if match is not None and entry.is_dir():
                path = Path(entry.path)
                refs.append(SnapshotRef(seq=int(match.group(1)), path=entry.path,
                                        size_bytes=_size(path),
                                        created_at_ms=int(entry.stat().st_mtime * 1000),
                                        source=self.name))
        refs.sort(key=lambda ref: ref.seq, reverse=True)
        return refs

    # --- loading --------------------------------------------------------------------------------

    async def load_snapshot(self, ref: SnapshotRef, target: RecoveryTarget) -> None:
        try:
            await self._load(Path(ref.path), ref.seq, target)
        except LayoutError as exc:
            raise CorruptSnapshotError(f"{ref.path}: {exc}") from None

    async def _load(self, path: Path, seq: int, target: RecoveryTarget) -> None:
        env = open_readonly(path)
        try:
            with env.begin() as txn:
                fields = read_meta(env, txn)
                if int(fields[b"seq"]) != seq:
                    raise LayoutError(f"the meta says sequence {int(fields[b'seq'])}")
                reader = SnapshotReader(env, txn, fields)
                # Progress in keys, scaled to the environment's bytes.
                size, expected = max(_size(path), 1), max(reader.expected_keys, 1)
                pending = 0
                for db, keys, values, expiries in reader.batches():
                    target.restore_block(target.engine(db), keys, values, expiries)
                    pending += len(keys)
                    if target.should_pause():
                        await target.pause(size * pending // expected)
                        pending = 0
                reader.verify()
                target.add_progress(size * pending // expected)
        finally:
            env.close()

    # --- writing --------------------------------------------------------------------------------

    def start(self, seq: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix="distcache-lmdb")
        self._spare = self._executor.submit(self._new_builder)

    def _new_builder(self) -> BuilderProcess:
        """On the thread: a started builder (see builder.py for the spare)."""
        self._builders += 1
        builder = BuilderProcess(
            self.directory / f"{TMP_PREFIX}{os.getpid()}-{self._builders}.lmdb",
            self.settings.map_size_bytes)
        builder.start()
        return builder

    async def _take_builder(self) -> BuilderProcess:
        """The spare builder if it started and still runs, else a new one."""
        assert self._executor is not None
        spare, self._spare = self._spare, None
        builder = None
        if spare is not None:
            try:
                builder = await asyncio.wrap_future(spare)
            except Exception:  # the spare could not start: the new one below reports why
                builder = None
        if builder is None or not builder.alive():
            builder = await self._run(self._new_builder)
        return builder

    def _run(self, fn: Any, *args: Any) -> asyncio.Future[Any]:
        assert self._executor is not None
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def checkpoint_due(self, now: float, seq: int) -> bool:
        changes = seq - self._last_seq
        if changes <= 0:
            return False
        settings = self.settings
        if settings.after_writes and changes >= settings.after_writes:
            return True
        return bool(settings.interval_seconds) and (now - self._last_time
                                                    >= settings.interval_seconds)

    async def checkpoint(self, image: KeyspaceImage) -> SnapshotRef | None:
        async with self.checkpoint_lock:
            return await self._write_checkpoint(image)

    async def _write_checkpoint(self, image: KeyspaceImage) -> SnapshotRef:
        started = time.monotonic()
        # The environment is written by a builder process (builder.py says why); the loop
        # encodes each slice into a frame, the writer thread pipes it over.
        builder = await self._take_builder()
        pipeline = WritePipeline(self._run)
        try:
            async for db, items in image.entries():
                await pipeline.submit(builder.send, frames.encode_keys(db, items))
            async for mutations in image.overlay():
                await pipeline.submit(builder.send, frames.encode_overlay(mutations))
            await pipeline.drain()
            assert image.seq is not None
            created_at_ms = int(time.time() * 1000)
            final = self.directory / snapshot_name(image.seq)
            size = await self._run(builder.finish, image.seq, created_at_ms, final)
        except BaseException:
            await pipeline.cancel()
            await self._run(builder.abort)
            raise
        finally:
            # The next snapshot's builder, started once this one is done (not beside it: one
            # idle Python process less at the snapshot's peak memory).
            assert self._executor is not None
            self._spare = self._executor.submit(self._new_builder)
        self._last_seq, self._last_time = image.seq, time.time()
        self._last_seconds = time.monotonic() - started
        self._last_size = size
        self._peak_overlay = image.peak_overlay
        stale = self.snapshots()[self.settings.keep:]
        if stale:
            await self._run(_delete, [Path(ref.path) for ref in stale], self.directory)
        return SnapshotRef(seq=image.seq, path=str(final), size_bytes=size,
                           created_at_ms=created_at_ms, source=self.name)

    def info(self) -> list[tuple[str, Any]]:
        prefix = self.name
        return [
            (f"{prefix}_last_seq", self._last_seq),
            (f"{prefix}_last_size", self._last_size),
            (f"{prefix}_last_seconds", f"{self._last_seconds:.3f}"),
            (f"{prefix}_last_peak_overlay", self._peak_overlay),
            (f"{prefix}_environments", len(self.snapshots())),
        ]

    async def close(self) -> None:
        if self._executor is not None:
            spare, self._spare = self._spare, None
            if spare is not None:
                try:
                    builder = await asyncio.wrap_future(spare)
                except Exception:  # it never started: nothing to stop
                    pass
                else:
                    await self._run(builder.abort)
            self._executor.shutdown(wait=True)
            self._executor = None

    # --- offline checks (the CLI) ---------------------------------------------------------------

    @staticmethod
    def recognizes(path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and ((path / "data.mdb").exists()
                                  or any(NAME_RE.match(p.name) for p in path.iterdir()))

    @staticmethod
    def check(path: Path, repair: bool, out: TextIO) -> int:
        from .check import check_environments

        return check_environments(Path(path), out)


def _delete(paths: list[Path], directory: Path) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    fsync_dir(directory)
