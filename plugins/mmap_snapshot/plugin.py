"""The ``mmap_snapshot`` persistence plugin: snapshots as single files, loaded through mmap."""

from __future__ import annotations

import asyncio
import mmap
import os
import re
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from distcache_core.contracts import SnapshotRef
from distcache_core.errors import CorruptSnapshotError
from distcache_core.persistence import KeyspaceImage, PersistenceBase, RecoveryTarget
from distcache_core.persistence.files import atomic_publish, ensure_directory, fsync_dir, write_all
from distcache_core.persistence.pipeline import WritePipeline

from .format import (
    BLOCK_SIZE,
    HEADER_SIZE,
    KIND_KEYS,
    PLACEHOLDER_HEADER,
    FormatError,
    Header,
    decode_keys,
    decode_overlay,
    encode_keys,
    encode_overlay,
    read_block,
)
from .settings import SnapshotSettings

NAME_RE = re.compile(r"^snapshot-(\d{20})\.dcsnap$")
TMP_PREFIX = ".tmp-snapshot-"


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.dcsnap"


class SnapshotFileWriter:
    """Thread-side: writes the body, keeps its CRC (zlib releases the GIL for it), publishes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.temporary = directory / f"{TMP_PREFIX}{os.getpid()}.dcsnap"
        self._fd: int | None = None
        self.crc = 0
        self.body_size = 0

    def open(self) -> None:
        self._fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        write_all(self._fd, PLACEHOLDER_HEADER)

    def write(self, data: bytes | bytearray) -> None:
        assert self._fd is not None
        write_all(self._fd, data)
        self.crc = zlib.crc32(data, self.crc)
        self.body_size += len(data)

    def publish(self, header: Header) -> Path:
        assert self._fd is not None
        os.pwrite(self._fd, header.pack(), 0)
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        final = self.directory / snapshot_name(header.seq)
        atomic_publish(self.temporary, final)
        return final

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass


class MmapSnapshot(PersistenceBase):
    """Snapshots in ``<data_dir>/mmap_snapshot/`` (see :mod:`.format`)."""

    role = "snapshot"
    name = "mmap_snapshot"
    check_kind = "snapshot"
    folder = "mmap_snapshot"

    def __init__(self, settings: SnapshotSettings | None, data_dir: Path) -> None:
        super().__init__()
        self.settings = settings if settings is not None else SnapshotSettings()
        self.directory = Path(data_dir) / self.folder
        self.snapshot_on_shutdown = self.settings.on_shutdown
        self._executor: ThreadPoolExecutor | None = None
        self._last_seq = 0
        self._last_time = time.time()
        self._last_seconds = -1.0
        self._last_size = 0
        self._peak_overlay = 0

    # --- files ----------------------------------------------------------------------------------

    def open(self, status: Any) -> None:
        super().open(status)
        ensure_directory(self.directory, "snapshot directory")
        for entry in os.scandir(self.directory):
            if entry.name.startswith(TMP_PREFIX):
                os.unlink(entry.path)  # a snapshot that did not finish
        refs = self.snapshots()
        if refs:
            self._last_seq = refs[0].seq
            self._last_time = refs[0].created_at_ms / 1000

    def snapshots(self) -> list[SnapshotRef]:
        refs = []
        for entry in os.scandir(self.directory):
            match = NAME_RE.match(entry.name)
            if match is not None:
                stat = entry.stat()
                refs.append(SnapshotRef(seq=int(match.group(1)), path=entry.path,
                                        size_bytes=stat.st_size,
                                        created_at_ms=int(stat.st_mtime * 1000),
                                        source=self.name))
        refs.sort(key=lambda ref: ref.seq, reverse=True)
        return refs

    # --- loading --------------------------------------------------------------------------------

    async def load_snapshot(self, ref: SnapshotRef, target: RecoveryTarget) -> None:
        with open(ref.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < HEADER_SIZE:
                raise CorruptSnapshotError(f"{ref.path}: {size} bytes, no header")
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            try:
                header = Header.unpack(data)
            except FormatError as exc:
                raise CorruptSnapshotError(f"{ref.path}: {exc}") from None
            if header.seq != ref.seq:
                raise CorruptSnapshotError(f"{ref.path}: header says sequence {header.seq}")
            # ~1 GB/s, on a thread: the loop answers -LOADING meanwhile.
            crc = await asyncio.to_thread(_body_crc, data)
            if crc != header.body_crc:
                raise CorruptSnapshotError(f"{ref.path}: body checksum mismatch")
            try:
                await self._apply(data, header, target)
            except FormatError as exc:
                raise CorruptSnapshotError(f"{ref.path}: {exc}") from None
        finally:
            data.close()

    async def _apply(self, data: mmap.mmap, header: Header, target: RecoveryTarget) -> None:
        """Key blocks into the engines, then the overlay; a pause between blocks (a block is
        one slice of the walk that wrote it, a few thousand keys)."""
        end = len(data)
        offset = paused_at = HEADER_SIZE
        keys_seen = overlay_seen = 0
        while offset < end:
            kind, count, stop = read_block(data, offset, end)
            start = offset + BLOCK_SIZE
            if kind == KIND_KEYS:
                if overlay_seen:
                    raise FormatError(f"keys block at offset {offset} after the overlay")
                db, keys, values, expiries = decode_keys(data, start, stop, count)
                target.restore_block(target.engine(db), keys, values, expiries)
                keys_seen += count
            else:
                for mutation in decode_overlay(data, start, stop, count):
                    target.apply(mutation)
                overlay_seen += count
            offset = stop
            if target.should_pause():
                await target.pause(offset - paused_at)
                paused_at = offset
        if (keys_seen, overlay_seen) != (header.key_count, header.overlay_count):
            raise FormatError(f"the header counts {header.key_count} keys and "
                              f"{header.overlay_count} overlay records, the blocks "
                              f"{keys_seen} and {overlay_seen}")
        target.add_progress(offset - paused_at)

    # --- writing --------------------------------------------------------------------------------

    def start(self, seq: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix=f"distcache-{self.name}")

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
        writer = SnapshotFileWriter(self.directory)
        pipeline = WritePipeline(self._run)
        keys = overlay = 0
        try:
            await self._run(writer.open)
            async for db, items in image.entries():
                keys += len(items)
                await pipeline.submit(writer.write, encode_keys(db, items))
            async for mutations in image.overlay():
                overlay += len(mutations)
                await pipeline.submit(writer.write, encode_overlay(mutations))
            await pipeline.drain()
            assert image.seq is not None
            header = Header(seq=image.seq, key_count=keys, overlay_count=overlay,
                            body_size=writer.body_size,
                            created_at_ms=int(time.time() * 1000), body_crc=writer.crc)
            path = await self._run(writer.publish, header)
        except BaseException:
            await pipeline.cancel()
            await self._run(writer.abort)
            raise
        self._last_seq, self._last_time = header.seq, time.time()
        self._last_seconds = time.monotonic() - started
        self._last_size = HEADER_SIZE + header.body_size
        self._peak_overlay = image.peak_overlay
        stale = self.snapshots()[self.settings.keep:]
        if stale:
            await self._run(_delete, [Path(ref.path) for ref in stale], self.directory)
        return SnapshotRef(seq=header.seq, path=str(path), size_bytes=self._last_size,
                           created_at_ms=header.created_at_ms, source=self.name)

    def info(self) -> list[tuple[str, Any]]:
        prefix = self.name
        return [
            (f"{prefix}_last_seq", self._last_seq),
            (f"{prefix}_last_size", self._last_size),
            (f"{prefix}_last_seconds", f"{self._last_seconds:.3f}"),
            (f"{prefix}_last_peak_overlay", self._peak_overlay),
            (f"{prefix}_files", len(self.snapshots())),
        ]

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # --- offline checks (the CLI) ---------------------------------------------------------------

    @staticmethod
    def recognizes(path: Path) -> bool:
        path = Path(path)
        if path.is_dir():
            return any(NAME_RE.match(p.name) for p in path.iterdir())
        try:
            with open(path, "rb") as fh:
                return fh.read(8) == b"DCSNAP\r\n"
        except OSError:
            return False

    @staticmethod
    def check(path: Path, repair: bool, out: TextIO) -> int:
        from .check import check_snapshots

        return check_snapshots(Path(path), out)


def _body_crc(data: mmap.mmap) -> int:
    with memoryview(data) as view:
        return zlib.crc32(view[HEADER_SIZE:])


def _delete(paths: list[Path], directory: Path) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    fsync_dir(directory)
