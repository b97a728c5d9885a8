"""``distcache check-wal PATH [--repair]``: judge a WAL as recovery would, and cut it back.

PATH is the WAL directory (``<data_dir>/wal``) or one file in it. Each file gets a line with
its records, sequence range and the first problem (offset and why). Exit status 0 when the log
recovers as it is (a torn tail counts: the node truncates it itself), 1 when it is corrupt.

``--repair`` keeps the sound prefix: the damaged file is copied to ``<name>.bak-<unix time>``
and truncated at the first bad record (a file whose header is bad is moved aside whole), and
every later log segment is moved aside the same way, since its records come after the damage.
A damaged base is moved aside (recovery then uses an older snapshot and the log).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TextIO

from .format import KIND_BASE
from .reader import ScanResult, scan_file
from .segments import SegmentFile, list_files


def _files(path: Path) -> tuple[Path, list[SegmentFile], list[SegmentFile]]:
    directory = path if path.is_dir() else path.parent
    logs, bases = list_files(directory)
    if not path.is_dir():
        logs = [segment for segment in logs if segment.path == path]
        bases = [base for base in bases if base.path == path]
        if not logs and not bases:
            raise FileNotFoundError(f"{path} is not a WAL file (log-*.wal or base-*.wal)")
    return directory, logs, bases


def check_wal(path: Path, repair: bool, out: TextIO) -> int:
    path = Path(path)
    if not path.exists():
        print(f"{path}: no such file or directory", file=out)
        return 2
    directory, logs, bases = _files(path)
    all_logs, _ = list_files(directory)
    results: list[tuple[SegmentFile, ScanResult]] = []
    for base in bases:
        results.append((base, scan_file(base.path, is_last_log=False)))
    for segment in logs:
        index = all_logs.index(segment)
        is_last = index == len(all_logs) - 1
        next_seq = None if is_last else all_logs[index + 1].seq
        results.append((segment, scan_file(segment.path, is_last_log=is_last,
                                           next_seq=next_seq)))
    corrupt = False
    first_bad: tuple[SegmentFile, ScanResult] | None = None
    for segment, result in results:
        print(result.describe(), file=out)
        if not result.ok:
            if not result.torn:
                corrupt = True
            if first_bad is None and segment.kind != KIND_BASE:
                first_bad = (segment, result)
    records = sum(r.records for _, r in results)
    print(f"{len(results)} files, {records} records: "
          + ("CORRUPT" if corrupt else "torn tail only" if first_bad else "OK"), file=out)
    if not repair:
        return 1 if corrupt else 0
    stamp = int(time.time())
    for segment, result in results:
        if segment.kind == KIND_BASE and not result.ok:
            moved = _move_aside(segment.path, stamp)
            print(f"repair: damaged base moved to {moved}", file=out)
    if first_bad is not None:
        segment, result = first_bad
        offset = result.bad_offset or 0
        later = [s for s in all_logs if s.seq > segment.seq]
        if result.valid_end == 0:
            moved = _move_aside(segment.path, stamp)
            print(f"repair: {segment.path} had no sound records; moved to {moved}", file=out)
        else:
            backup = _backup_name(segment.path, stamp)
            shutil.copy2(segment.path, backup)
            with open(segment.path, "r+b") as fh:
                fh.truncate(offset)
                os.fsync(fh.fileno())
            print(f"repair: {segment.path} truncated at offset {offset} "
                  f"({result.file_size - offset} bytes cut; backup {backup})", file=out)
        for later_segment in later:
            moved = _move_aside(later_segment.path, stamp)
            print(f"repair: {later_segment.path} comes after the damage; moved to {moved}",
                  file=out)
    return 0


def _backup_name(path: Path, stamp: int) -> Path:
    return path.with_name(f"{path.name}.bak-{stamp}")


def _move_aside(path: Path, stamp: int) -> Path:
    target = _backup_name(path, stamp)
    os.replace(path, target)
    return target
