"""The WAL directory: which files it holds, and the log segment being appended to.

Layout of ``<data_dir>/wal/``:

* ``log-<first seq, 20 digits>.wal``: log segments, in sequence order. A segment holds records
  from its first sequence number up to the one before the next segment's. The newest is
  appended to; the others are complete (fsynced before the next one was created).
* ``base-<seq, 20 digits>.wal``: a rewrite's image of the keyspace as of ``seq``, complete
  once it has this name (written as ``.tmp-base-*``, fsynced, renamed, directory fsynced).
* ``.tmp-*``: a rewrite that did not finish; removed at start.

:class:`ActiveSegment` is used from the WAL's writer thread only (one thread, so every write,
fsync, roll and deletion happens in order) and, before that thread starts, by recovery.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import attrs

from distcache_core.persistence.files import fsync_dir, write_all

from .format import KIND_BASE, KIND_LOG, segment_header

SUFFIX = ".wal"
TMP_PREFIX = ".tmp-"
_NAME_RE = re.compile(r"^(log|base)-(\d{20})\.wal$")


def log_name(first_seq: int) -> str:
    return f"log-{first_seq:020d}{SUFFIX}"


def base_name(seq: int) -> str:
    return f"base-{seq:020d}{SUFFIX}"


@attrs.frozen
class SegmentFile:
    path: Path
    kind: int
    #: From the name: a log's first sequence number, a base's image sequence number.
    seq: int


def list_files(directory: Path) -> tuple[list[SegmentFile], list[SegmentFile]]:
    """(log segments, bases), each sorted by sequence number."""
    logs: list[SegmentFile] = []
    bases: list[SegmentFile] = []
    for entry in os.scandir(directory):
        match = _NAME_RE.match(entry.name)
        if match is None or not entry.is_file():
            continue
        kind = KIND_LOG if match.group(1) == "log" else KIND_BASE
        (logs if kind == KIND_LOG else bases).append(
            SegmentFile(Path(entry.path), kind, int(match.group(2))))
    logs.sort(key=lambda s: s.seq)
    bases.sort(key=lambda s: s.seq)
    return logs, bases


def remove_temporaries(directory: Path) -> list[str]:
    removed = []
    for entry in os.scandir(directory):
        if entry.name.startswith(TMP_PREFIX):
            os.unlink(entry.path)
            removed.append(entry.name)
    return removed


class SegmentWriteError(OSError):
    """A write or sync failed and the segment could not be put back to its size before it:
    the log cannot take more records until the node restarts."""


class ActiveSegment:
    """The log segment being appended to, and the list of log segments on disk."""

    def __init__(self, directory: Path, segment_max_bytes: int) -> None:
        self.directory = directory
        self.segment_max_bytes = segment_max_bytes
        self.logs: list[SegmentFile] = []
        self.fd: int | None = None
        self.path: Path | None = None
        self.first_seq = 0
        #: Bytes of the active segment known to be written.
        self.size = 0
        #: Last sequence number written (0: none in this process).
        self.last_seq = 0
        self.broken: str | None = None
        #: Bytes written since the last sync.
        self.unsynced = 0
        #: Seconds spent in fdatasync on appends and syncs (the writer thread adds to it).
        self.fsync_seconds_total = 0.0

    def open_existing(self, segment: SegmentFile, valid_size: int) -> None:
        """Append to ``segment``, whose first ``valid_size`` bytes recovery checked."""
        fd = os.open(segment.path, os.O_WRONLY)
        os.lseek(fd, valid_size, os.SEEK_SET)
        self.fd, self.path, self.first_seq, self.size = fd, segment.path, segment.seq, valid_size

    def create(self, first_seq: int) -> None:
        """Start a new segment whose records begin at ``first_seq``; its header and name are
        durable before any record goes into it."""
        path = self.directory / log_name(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            header = segment_header(KIND_LOG, first_seq)
            write_all(fd, header)
            os.fdatasync(fd)
            fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        self.fd, self.path, self.first_seq, self.size = fd, path, first_seq, len(header)
        self.logs.append(SegmentFile(path, KIND_LOG, first_seq))

    def append(self, data: bytes | bytearray, sync: bool, last_seq: int) -> None:
        """Write ``data`` (whole records) and, with ``sync``, make it durable. On failure the
        segment is cut back to where it was, so a retry writes the records once."""
        if self.broken is not None:
            raise SegmentWriteError(self.broken)
        assert self.fd is not None
        before = self.size
        try:
            write_all(self.fd, data)
            if sync:
                self._fdatasync()
        except OSError as exc:
            try:
                os.ftruncate(self.fd, before)
                os.lseek(self.fd, before, os.SEEK_SET)
            except OSError as undo:
                self.broken = (f"{self.path}: cannot undo a failed write ({exc.strerror}): "
                               f"{undo.strerror}; restart the node")
            raise
        self.size = before + len(data)
        self.last_seq = last_seq
        self.unsynced = 0 if sync else self.unsynced + len(data)
        if self.size >= self.segment_max_bytes:
            self.roll(last_seq + 1)

    def sync(self) -> None:
        if self.fd is not None and self.unsynced:
            self._fdatasync()
            self.unsynced = 0

    def _fdatasync(self) -> None:
        """On the writer thread; the loop reads the totals (INFO, /metrics)."""
        assert self.fd is not None
        started = time.perf_counter()
        os.fdatasync(self.fd)
        self.fsync_seconds_total += time.perf_counter() - started

    def roll(self, first_seq: int) -> None:
        """Close the active segment (synced) and start the next at ``first_seq``."""
        if self.fd is not None:
            os.fdatasync(self.fd)
            os.close(self.fd)
            self.fd = None
            self.unsynced = 0
        self.create(first_seq)

    def delete_covered(self, retain_after_seq: int) -> list[Path]:
        """Delete, oldest first, every closed segment whose records all have sequence numbers
        up to ``retain_after_seq``; a crash part way leaves a suffix of the log, never a gap."""
        deleted: list[Path] = []
        while len(self.logs) > 1 and self.logs[1].seq - 1 <= retain_after_seq:
            segment = self.logs.pop(0)
            os.unlink(segment.path)
            deleted.append(segment.path)
        if deleted:
            fsync_dir(self.directory)
        return deleted

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.fdatasync(self.fd)
            finally:
                os.close(self.fd)
                self.fd = None

    def total_size(self) -> int:
        total = 0
        for segment in self.logs:
            if segment.path == self.path:
                total += self.size
            else:
                try:
                    total += segment.path.stat().st_size
                except OSError:
                    pass
        return total
