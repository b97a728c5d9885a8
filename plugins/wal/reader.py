"""Reading WAL files: one scanner for recovery (which applies records) and ``check-wal``
(which only counts them), so both judge damage the same way.

A bad record is a *torn tail* when nothing valid follows it in the newest log segment: a crash
while appending leaves exactly that, and the records before it are all there is; it is cut
off, reported and the node starts. Anywhere else (a valid record after it, or in an older
segment or a base), records after the damage exist that cannot be applied without the
damaged one: that is corruption, and recovery refuses to guess.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from distcache_core.persistence.codec import ReadableBuffer

from .format import (
    KIND_BASE,
    KIND_NAMES,
    SEGMENT_HEADER_SIZE,
    BadRecord,
    HeaderError,
    decode_payload,
    next_valid_record,
    parse_segment_header,
    read_record,
)

#: A whole file's bytes: read, or mapped.
FileBytes = bytes | mmap.mmap


@contextmanager
def mapped(path: Path) -> Iterator[FileBytes]:
    """The file's bytes, through mmap (b"" when empty: mmap refuses empty files)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            yield b""
            return
        view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield view
        finally:
            view.close()


@attrs.define
class ScanResult:
    """What scanning one file found."""

    path: Path
    kind: int = 0
    #: The header's sequence number (first of a log segment, image of a base).
    header_seq: int = 0
    header_count: int = 0
    records: int = 0
    first_seq: int = 0
    last_seq: int = 0
    file_size: int = 0
    #: Bytes from the start that are sound (header and whole, valid records).
    valid_end: int = 0
    #: The first problem, if any: where and why.
    bad_offset: int | None = None
    reason: str = ""
    #: True when the problem is a torn tail (nothing valid after it).
    torn: bool = False

    @property
    def ok(self) -> bool:
        return self.bad_offset is None

    def describe(self) -> str:
        kind = KIND_NAMES.get(self.kind, "unknown")
        text = (f"{self.path}: {kind}, {self.records} records"
                + (f", sequence {self.first_seq}..{self.last_seq}" if self.records else "")
                + f", {self.file_size} bytes")
        if self.bad_offset is not None:
            what = "torn tail" if self.torn else "CORRUPT"
            text += (f"; {what} at offset {self.bad_offset} ({self.reason}), "
                     f"{self.file_size - self.bad_offset} bytes after it")
        return text


class SegmentScanner:
    """Walks the records of one file. Iterate :meth:`records` to the end, then read
    :attr:`result`.

    :param is_last_log: the newest log segment, the only file whose tail may be torn.
    :param min_seq: a log's records must have sequence numbers of at least this (its header's
        first sequence number), strictly increasing; the next segment's first sequence number
        bounds them from above (``next_seq``).
    """

    def __init__(self, path: Path, data: ReadableBuffer, *, is_last_log: bool,
                 next_seq: int | None = None) -> None:
        self.data = data
        self.is_last_log = is_last_log
        self.next_seq = next_seq
        self.result = ScanResult(path=path, file_size=len(data))

    def records(self) -> Iterator[tuple[int, int, int, int]]:
        """(offset, seq, payload start, payload end) of each sound record, in order."""
        data, result = self.data, self.result
        end = len(data)
        try:
            kind, header_seq, count = parse_segment_header(data)
        except HeaderError as exc:
            # The newest segment with no room for a record after its header was being
            # created when the node died: nothing follows, so it is a torn tail.
            torn = self.is_last_log and len(data) <= SEGMENT_HEADER_SIZE
            self._bad(0, str(exc), torn=torn)
            return
        result.kind, result.header_seq, result.header_count = kind, header_seq, count
        result.valid_end = offset = SEGMENT_HEADER_SIZE
        is_base = kind == KIND_BASE
        previous = header_seq - 1
        while offset < end:
            try:
                seq, payload_start, payload_end = read_record(data, offset, end)
                if not is_base:
                    if seq <= previous:
                        raise BadRecord(offset, f"sequence number {seq} after {previous}")
                    if self.next_seq is not None and seq >= self.next_seq:
                        raise BadRecord(offset, f"sequence number {seq} belongs to the "
                                                f"next segment (from {self.next_seq})")
            except BadRecord as exc:
                self._judge(exc, previous + 1 if not is_base else 0)
                return
            yield offset, seq, payload_start, payload_end
            if not result.records:
                result.first_seq = seq
            result.records += 1
            result.last_seq = seq
            previous = max(previous, seq)
            offset = result.valid_end = payload_end
        if is_base and result.records != count:
            self._bad(offset, f"header promises {count} records, found {result.records}",
                      torn=False)

    def fail(self, offset: int, reason: str) -> None:
        """A record that checked out but could not be applied (an unknown op, say)."""
        self._bad(offset, reason, torn=False)

    def _judge(self, exc: BadRecord, min_seq: int) -> None:
        torn = self.is_last_log and next_valid_record(
            self.data, exc.offset + 1, len(self.data), min_seq) is None
        self._bad(exc.offset, exc.reason, torn=torn)

    def _bad(self, offset: int, reason: str, *, torn: bool) -> None:
        self.result.bad_offset = offset
        self.result.reason = reason
        self.result.torn = torn


def scan_file(path: Path, *, is_last_log: bool, next_seq: int | None = None) -> ScanResult:
    """Scan a whole file, decoding every payload but applying nothing (``check-wal``)."""
    with mapped(path) as data:
        scanner = SegmentScanner(path, data, is_last_log=is_last_log, next_seq=next_seq)
        for offset, _, start, end in scanner.records():
            try:
                decode_payload(data, start, end, offset)
            except BadRecord as exc:
                scanner.fail(offset, exc.reason)
                break
        return scanner.result
