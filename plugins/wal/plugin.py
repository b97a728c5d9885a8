"""The ``wal`` persistence plugin: recovery, recording, rewrite and compaction."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, TextIO

from distcache_core.contracts import SnapshotRef
from distcache_core.errors import CorruptLogError, CorruptSnapshotError
from distcache_core.mutations import Mutation
from distcache_core.persistence import KeyspaceImage, PersistenceBase, RecoveryTarget, codec
from distcache_core.persistence.files import ensure_directory, fsync_dir
from distcache_core.persistence.pipeline import WritePipeline

from .check import check_wal
from .format import SEGMENT_HEADER_SIZE
from .reader import FileBytes, SegmentScanner, mapped
from .rewrite import BaseFileWriter, encode_items, encode_mutations
from .segments import ActiveSegment, SegmentFile, list_files, remove_temporaries
from .settings import WalSettings
from .writer import GroupCommitWriter

#: Bases kept after a rewrite: the newest, and the one before in case the newest is damaged.
KEEP_BASES = 2

_unpack_header = codec.HEADER.unpack_from
_HEADER_SIZE = codec.HEADER_SIZE
_SET = 1
_HAS_VALUE = codec.HAS_VALUE
_HAS_EXPIRY = codec.HAS_EXPIRY
_PAUSE_CHECK_EVERY = 256


class WalPersistence(PersistenceBase):
    """A write-ahead log of every mutation, in segments under ``<data_dir>/wal/``."""

    role = "log"
    name = "wal"
    #: ``distcache check-wal`` finds this plugin's checker by it.
    check_kind = "log"

    def __init__(self, settings: WalSettings | None, data_dir: Path) -> None:
        super().__init__()
        self.settings = settings if settings is not None else WalSettings()
        self.directory = Path(data_dir) / "wal"
        self.segment = ActiveSegment(self.directory, self.settings.segment_max_bytes)
        self.writer = GroupCommitWriter(self.segment, self.settings.fsync, self._report_error)
        self.bases: list[SegmentFile] = []
        self._tail: tuple[SegmentFile, int] | None = None
        self._base_size = 0

    @property
    def wants_barrier(self) -> bool:  # type: ignore[override]
        return self.settings.fsync == "always"

    def _report_error(self, message: str | None) -> None:
        if self.status is not None:
            self.status.set_write_error(self.name, message)

    # --- start-up -------------------------------------------------------------------------------

    def open(self, status: Any) -> None:
        super().open(status)
        ensure_directory(self.directory, "WAL directory")
        remove_temporaries(self.directory)
        self.segment.logs, self.bases = list_files(self.directory)

    def snapshots(self) -> list[SnapshotRef]:
        refs = []
        for base in reversed(self.bases):
            stat = base.path.stat()
            refs.append(SnapshotRef(seq=base.seq, path=str(base.path), size_bytes=stat.st_size,
                                    created_at_ms=int(stat.st_mtime * 1000), source=self.name))
        return refs

    async def load_snapshot(self, ref: SnapshotRef, target: RecoveryTarget) -> None:
        path = Path(ref.path)
        with mapped(path) as data:
            scanner = SegmentScanner(path, data, is_last_log=False)
            await self._apply(scanner, data, -1, target, snapshot=True)
        result = scanner.result
        if not result.ok:
            raise CorruptSnapshotError(result.describe())
        if result.header_seq != ref.seq:
            raise CorruptSnapshotError(f"{path}: header says sequence {result.header_seq}, "
                                       f"the name {ref.seq}")

    def _segments_after(self, after_seq: int) -> list[SegmentFile]:
        """The log segments that may hold records above ``after_seq`` (the newest always,
        since recovery must find where appending resumes)."""
        logs = self.segment.logs
        return [segment for index, segment in enumerate(logs)
                if index == len(logs) - 1 or logs[index + 1].seq - 1 > after_seq]

    def replay_size(self, after_seq: int) -> int:
        total = 0
        for segment in self._segments_after(after_seq):
            try:
                total += segment.path.stat().st_size
            except OSError:
                pass
        return total

    async def replay(self, after_seq: int, target: RecoveryTarget) -> int:
        logs = self.segment.logs
        segments = self._segments_after(after_seq)
        last_seq = after_seq
        if segments and segments[0].seq > after_seq + 1:
            target.warn(f"{self.directory}: the log starts at sequence {segments[0].seq}, "
                        f"the data recovered so far ends at {after_seq}: the writes between "
                        "are missing (a damaged or deleted snapshot?)")
        for segment in segments:
            index = logs.index(segment)
            is_last = index == len(logs) - 1
            next_seq = None if is_last else logs[index + 1].seq
            with mapped(segment.path) as data:
                scanner = SegmentScanner(segment.path, data, is_last_log=is_last,
                                         next_seq=next_seq)
                last_seq = max(last_seq, await self._apply(scanner, data, after_seq, target,
                                                           snapshot=False))
            result = scanner.result
            if not result.ok and not result.torn:
                raise CorruptLogError(str(segment.path), result.bad_offset or 0, result.reason,
                                      f"distcache check-wal {self.directory}")
            if result.torn:
                target.warn(self._truncate_torn(segment, result.bad_offset or 0,
                                                result.file_size, result.reason))
            if is_last and segment in self.segment.logs:
                self._tail = (segment, result.valid_end)
        return last_seq

    def _truncate_torn(self, segment: SegmentFile, offset: int, size: int, reason: str) -> str:
        lost = size - offset
        if offset < SEGMENT_HEADER_SIZE:
            # Died while creating the segment: no record ever went into it.
            os.unlink(segment.path)
            self.segment.logs.remove(segment)
            return (f"{segment.path}: incomplete new segment ({size} bytes, {reason}) "
                    "removed")
        with open(segment.path, "r+b") as fh:
            fh.truncate(offset)
            os.fsync(fh.fileno())
        return (f"{segment.path}: torn tail truncated: {lost} bytes from offset {offset} "
                f"({reason})")

    async def _apply(self, scanner: SegmentScanner, data: FileBytes, after_seq: int,
                     target: RecoveryTarget, *, snapshot: bool) -> int:
        """Apply the scanner's records above ``after_seq``; the last sequence number seen."""
        restore = target.restore if snapshot else target.apply_set
        last_seq = after_seq
        count = 0
        paused_at = 0
        for offset, seq, start, end in scanner.records():
            count += 1
            if count % _PAUSE_CHECK_EVERY == 0 and target.should_pause():
                await target.pause(offset - paused_at)
                paused_at = offset
            if seq > last_seq:
                last_seq = seq
            if seq <= after_seq:
                continue
            version, op, _, flags, db, _, expire_at_ms, _, key_len = _unpack_header(data, start)
            key_start = start + _HEADER_SIZE
            value_start = key_start + key_len
            if op == _SET and version == 1 and flags & _HAS_VALUE and value_start <= end:
                restore(db, data[key_start:value_start], data[value_start:end],
                        expire_at_ms if flags & _HAS_EXPIRY else None)
                continue
            try:
                mutation = codec.decode(data, start, end)
            except codec.DecodeError as exc:
                scanner.fail(offset, f"bad payload: {exc}")
                break
            target.apply(mutation)
        target.add_progress(scanner.result.valid_end - paused_at)
        return last_seq

    def start(self, seq: int) -> None:
        if self._tail is not None and self._tail[0] in self.segment.logs:
            self.segment.open_existing(*self._tail)
        else:
            self.segment.create(seq + 1)
        self.segment.last_seq = seq
        self._base_size = self._current_size()
        self.writer.start(asyncio.get_running_loop())
        # The manager subscribes ``record`` after start: hand it the writer's own method,
        # one Python call less on every write.
        self.record = self.writer.record  # type: ignore[method-assign]
        self.record_fields = self.writer.record_fields  # type: ignore[method-assign]

    # --- recording ------------------------------------------------------------------------------

    def record(self, mutation: Mutation) -> None:
        self.writer.record(mutation)

    def record_fields(self, seq: int, op: int, db: int, key: bytes, value: bytes | None,
                      expire_at_ms: int | None, cause: int) -> None:
        self.writer.record_fields(seq, op, db, key, value, expire_at_ms, cause)

    def barrier(self) -> Any:
        return self.writer.barrier()

    def tick(self, now: float) -> None:
        self.writer.tick()

    # --- rewrite and compaction -----------------------------------------------------------------

    def checkpoint_due(self, now: float, seq: int) -> bool:
        percentage = self.settings.auto_rewrite_percentage
        if not percentage:
            return False
        size = self._current_size()
        return (size >= self.settings.auto_rewrite_min_bytes
                and size * 100 >= self._base_size * (100 + percentage))

    async def checkpoint(self, image: KeyspaceImage) -> SnapshotRef | None:
        """BGREWRITEAOF: the keyspace as a base file, on the writer thread between flushes."""
        async with self.checkpoint_lock:
            return await self._write_checkpoint(image)

    async def _write_checkpoint(self, image: KeyspaceImage) -> SnapshotRef:
        run = self.writer.run
        writer = BaseFileWriter(self.directory)
        pipeline = WritePipeline(self.writer.run_in_thread)
        try:
            await run(writer.open)
            async for db, items in image.entries():
                await pipeline.submit(writer.write, encode_items(db, items), len(items))
            async for mutations in image.overlay():
                await pipeline.submit(writer.write, encode_mutations(mutations), len(mutations))
            await pipeline.drain()
            assert image.seq is not None
            base = await run(writer.publish, image.seq)
        except BaseException:
            await pipeline.cancel()
            await run(writer.abort)
            raise
        self.bases = [b for b in self.bases if b.seq != base.seq] + [base]
        stale, self.bases = self.bases[:-KEEP_BASES], self.bases[-KEEP_BASES:]
        if stale:
            await run(_delete_files, [b.path for b in stale], self.directory)
        return SnapshotRef(seq=base.seq, path=str(base.path), size_bytes=writer.size,
                           created_at_ms=int(time.time() * 1000), source=self.name)

    async def compact(self, retain_after_seq: int) -> None:
        stale = [b for b in self.bases if b.seq < retain_after_seq]
        self.bases = [b for b in self.bases if b.seq >= retain_after_seq]
        await self.writer.run(self._compact_in_thread, retain_after_seq, stale)
        self._base_size = self._current_size()

    def _compact_in_thread(self, retain_after_seq: int, stale: list[SegmentFile]) -> None:
        segment = self.segment
        if segment.first_seq <= retain_after_seq and segment.size > SEGMENT_HEADER_SIZE:
            # The active segment holds covered records: close it so that the next compaction
            # can drop it whole once everything in it is covered.
            segment.roll(segment.last_seq + 1)
        segment.delete_covered(retain_after_seq)
        if stale:
            _delete_files([b.path for b in stale], self.directory)

    def _current_size(self) -> int:
        size = self.segment.total_size()
        if self.bases:
            try:
                size += self.bases[-1].path.stat().st_size
            except OSError:
                pass
        return size

    # --- the rest -------------------------------------------------------------------------------

    def info(self) -> list[tuple[str, Any]]:
        writer = self.writer
        return [
            ("aof_last_write_status", "err" if writer.error else "ok"),
            ("aof_current_size", self._current_size()),
            ("aof_base_size", self._base_size),
            ("aof_buffer_length", writer.buffered_bytes),
            ("aof_pending_bio_fsync", int(writer.sync_in_flight)),
            ("wal_fsync", writer.policy),
            ("wal_records_written", writer.records),
            ("wal_flushes", writer.flushes),
            ("wal_fsyncs", writer.fsyncs),
            ("wal_fsync_seconds_total", f"{self.segment.fsync_seconds_total:.6f}"),
            ("wal_writes_per_fsync",
             f"{writer.records_synced / writer.fsyncs:.2f}" if writer.fsyncs else "0.00"),
            ("wal_segments", len(self.segment.logs)),
        ]

    async def close(self) -> None:
        await self.writer.close()

    # --- offline checks (the CLI) ---------------------------------------------------------------

    @staticmethod
    def recognizes(path: Path) -> bool:
        path = Path(path)
        if path.is_dir():
            return any(path.glob("log-*.wal")) or any(path.glob("base-*.wal"))
        return path.suffix == ".wal"

    @staticmethod
    def check(path: Path, repair: bool, out: TextIO) -> int:
        """``distcache check-wal``; see :mod:`distcache_plugins.wal.check`."""
        return check_wal(Path(path), repair, out)


def _delete_files(paths: list[Path], directory: Path) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    fsync_dir(directory)
