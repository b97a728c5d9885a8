"""``distcache check-snapshot PATH`` for LMDB snapshots: PATH is one environment (a
``snapshot-*.lmdb`` directory) or the folder of them. Each gets a line with its sequence
number, keys and OK, or the problem (meta, count, checksum). Exit 0 when all are sound."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from .layout import LayoutError
from .reader import SnapshotReader
from .store import open_readonly, read_meta


def verify(path: Path) -> tuple[int, int]:
    """(seq, keys) of a sound environment, or :class:`LayoutError`."""
    env = open_readonly(path)
    try:
        with env.begin() as txn:
            fields = read_meta(env, txn)
            reader = SnapshotReader(env, txn, fields)
            for _ in reader.batches():
                pass
            reader.verify()
            return int(fields[b"seq"]), reader.keys
    finally:
        env.close()


def check_environments(path: Path, out: TextIO) -> int:
    if not path.exists():
        print(f"{path}: no such file or directory", file=out)
        return 2
    if (path / "data.mdb").exists():
        environments = [path]
    else:
        environments = sorted(p for p in path.iterdir()
                              if p.is_dir() and p.suffix == ".lmdb" and not p.name.startswith("."))
    bad = 0
    for environment in environments:
        try:
            seq, keys = verify(environment)
        except LayoutError as exc:
            bad += 1
            print(f"{environment}: BAD: {exc}", file=out)
            continue
        print(f"{environment}: sequence {seq}, {keys} keys: OK", file=out)
    print(f"{len(environments)} LMDB snapshots, {bad} bad", file=out)
    return 1 if bad else 0
