"""A rewrite's base file (BGREWRITEAOF): the keyspace as SET records, written beside the log.

The loop encodes each slice of the image (:func:`encode_items`, :func:`encode_mutations`);
the writer thread appends it to ``.tmp-base-<pid>.wal`` (:class:`BaseFileWriter`). At the end
the header gets the record count, the file is fsynced, renamed to ``base-<seq>.wal`` and the
directory fsynced: until then recovery never sees it, after that it is complete.
"""

from __future__ import annotations

import os
from pathlib import Path

from distcache_core.mutations import Mutation
from distcache_core.persistence.files import atomic_publish, write_all

from .format import KIND_BASE, append_mutation, append_set, segment_header
from .segments import SUFFIX, TMP_PREFIX, SegmentFile, base_name


def encode_items(db: int, items: list[tuple[bytes, bytes, int | None]]) -> bytearray:
    buffer = bytearray()
    for key, value, expire_at_ms in items:
        append_set(buffer, db, key, value, expire_at_ms)
    return buffer


def encode_mutations(mutations: list[Mutation]) -> bytearray:
    buffer = bytearray()
    for mutation in mutations:
        append_mutation(buffer, mutation)
    return buffer


class BaseFileWriter:
    """Thread-side: every method runs on the WAL's writer thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.temporary = directory / f"{TMP_PREFIX}base-{os.getpid()}{SUFFIX}"
        self._fd: int | None = None
        self.records = 0
        self.size = 0

    def open(self) -> None:
        self._fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        header = segment_header(KIND_BASE, 0, 0)
        write_all(self._fd, header)
        self.size = len(header)

    def write(self, data: bytes | bytearray, records: int) -> None:
        assert self._fd is not None
        write_all(self._fd, data)
        self.size += len(data)
        self.records += records

    def publish(self, seq: int) -> SegmentFile:
        assert self._fd is not None
        os.pwrite(self._fd, segment_header(KIND_BASE, seq, self.records), 0)
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        final = self.directory / base_name(seq)
        atomic_publish(self.temporary, final)
        return SegmentFile(final, KIND_BASE, seq)

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass
