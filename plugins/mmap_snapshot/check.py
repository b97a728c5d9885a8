"""``distcache check-snapshot PATH``: verify mmap snapshot files as recovery would read them.

PATH is a snapshot file or the folder of them. Each file gets a line: its sequence number,
records, size and OK, or the first problem. Exit status 0 when every file is sound, 1 if not.
"""

from __future__ import annotations

import mmap
import os
import zlib
from pathlib import Path
from typing import TextIO

from .format import (
    BLOCK_SIZE,
    HEADER_SIZE,
    KIND_KEYS,
    FormatError,
    Header,
    decode_keys,
    decode_overlay,
    read_block,
)


def verify(path: Path) -> Header:
    """The header of a sound snapshot, or :class:`FormatError` saying what is wrong."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < HEADER_SIZE:
            raise FormatError("shorter than the header")
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        header = Header.unpack(data)
        with memoryview(data) as view:
            if zlib.crc32(view[HEADER_SIZE:]) != header.body_crc:
                raise FormatError("body checksum mismatch")
        offset, end = HEADER_SIZE, len(data)
        keys = overlay = 0
        while offset < end:
            kind, count, stop = read_block(data, offset, end)
            if kind == KIND_KEYS:
                if overlay:
                    raise FormatError(f"keys block at offset {offset} after the overlay")
                decode_keys(data, offset + BLOCK_SIZE, stop, count)
                keys += count
            else:
                decode_overlay(data, offset + BLOCK_SIZE, stop, count)
                overlay += count
            offset = stop
        if (keys, overlay) != (header.key_count, header.overlay_count):
            raise FormatError(f"the header counts {header.key_count} keys and "
                              f"{header.overlay_count} overlay records, the blocks {keys} "
                              f"and {overlay}")
        return header
    finally:
        data.close()


def check_snapshots(path: Path, out: TextIO) -> int:
    if not path.exists():
        print(f"{path}: no such file or directory", file=out)
        return 2
    files = sorted(p for p in path.iterdir() if p.suffix == ".dcsnap"
                   and not p.name.startswith(".")) if path.is_dir() else [path]
    bad = 0
    for file in files:
        try:
            header = verify(file)
        except (FormatError, OSError) as exc:
            bad += 1
            print(f"{file}: BAD: {exc}", file=out)
            continue
        print(f"{file}: sequence {header.seq}, {header.key_count} keys, "
              f"{header.overlay_count} overlay records, {HEADER_SIZE + header.body_size} "
              "bytes: OK", file=out)
    print(f"{len(files)} snapshot files, {bad} bad", file=out)
    return 1 if bad else 0
