"""Writing snapshot environments (see :mod:`.layout`), and opening them to read.

:class:`EnvironmentWriter` runs in the snapshot builder process (:mod:`.builder`), on its one
thread: the node only encodes slices and pipes them there. Write transactions span many
slices (a commit every :data:`COMMIT_EVERY_KEYS` keys: each commit writes the dirty pages,
so one per slice cost a third more time) and are committed without syncing; only the final
sync, fsyncs and rename make the environment durable, and the meta says it is complete, so
nobody reads an unfinished one. Reading (:mod:`.reader`) happens on the node's loop, a batch
at a time, in a read-only environment that takes no lock.
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any

import lmdb

from distcache_core.mutations import Mutation, Op
from distcache_core.persistence.files import fsync_dir

from .layout import (
    EXPIRY,
    FORMAT_VERSION,
    META,
    READABLE_VERSIONS,
    LayoutError,
    db_name,
    encode_long,
    fits,
    long_key,
    long_name,
    ttl_name,
)

#: Named databases an environment may hold: ``meta`` and three per logical database.
MAX_DBS = 3 * 1024 + 1
#: Keys written between commits of the builder's write transaction.
COMMIT_EVERY_KEYS = 65536
#: Entries read at a time, for the checksum and by loaders.
READ_BATCH = 2048


def batches(cursor: Any) -> Iterator[list[tuple[bytes, bytes]]]:
    """Lists of up to :data:`READ_BATCH` (key, value) pairs of an LMDB cursor."""
    entries = iter(cursor)
    while batch := list(islice(entries, READ_BATCH)):
        yield batch


def chain_crc(batch: list[tuple[bytes, bytes]], crc: int) -> int:
    """The layout's checksum stream continued over ``batch``: each key, then its value."""
    return zlib.crc32(b"".join(chain.from_iterable(batch)), crc)


class EnvironmentWriter:
    """The snapshot's environment and its write transaction, used from one thread."""

    def __init__(self, temporary: Path, map_size: int) -> None:
        self.temporary = temporary
        self.map_size = map_size
        self._env: lmdb.Environment | None = None
        #: The open write transaction (None between commits).
        self._txn: lmdb.Transaction | None = None
        #: Handles of the named databases opened so far, by name.
        self._dbs: dict[bytes, Any] = {}
        self.keys = 0
        self._uncommitted = 0

    def open(self) -> None:
        shutil.rmtree(self.temporary, ignore_errors=True)
        # sync/metasync off: nothing is durable until the explicit sync before the rename.
        self._env = lmdb.open(str(self.temporary), map_size=self.map_size, subdir=True,
                              max_dbs=MAX_DBS, sync=False, metasync=False, lock=True)

    def _begin(self) -> lmdb.Transaction:
        """The open write transaction, or a new one."""
        assert self._env is not None
        if self._txn is None:
            self._txn = self._env.begin(write=True)
        return self._txn

    def _commit(self, changed: int = 0, *, now: bool = False) -> None:
        """Count ``changed`` keys; commit once enough are uncommitted (or ``now``)."""
        self._uncommitted += changed
        if self._txn is not None and (now or self._uncommitted >= COMMIT_EVERY_KEYS):
            txn, self._txn = self._txn, None
            self._uncommitted = 0
            txn.commit()

    def _db(self, name: bytes) -> Any:
        db = self._dbs.get(name)
        if db is None:
            assert self._env is not None
            db = self._dbs[name] = self._env.open_db(name, txn=self._txn)
        return db

    def put_block(self, name: bytes, pairs: list[tuple[bytes, bytes]],
                  ttl_pairs: list[tuple[bytes, bytes]],
                  long_pairs: list[tuple[bytes, bytes]]) -> None:
        """Keys of the walk of database ``name`` (:func:`.layout.encode_items`)."""
        txn = self._begin()
        for table, entries in ((name, pairs), (ttl_name(name), ttl_pairs),
                               (long_name(name), long_pairs)):
            if entries:
                txn.cursor(db=self._db(table)).putmulti(entries)
        self.keys += len(pairs) + len(long_pairs)
        self._commit(len(pairs) + len(long_pairs))

    def apply(self, mutations: list[Mutation]) -> None:
        """The overlay: changes made during the walk, in order."""
        self._begin()
        self._apply(mutations)
        self._commit(len(mutations))

    def _apply(self, mutations: list[Mutation]) -> None:
        for mutation in mutations:
            op = mutation.op
            if op is Op.FLUSHALL:
                for table in list(self._dbs):
                    self._drop(table)
                continue
            name = db_name(mutation.db)
            if op is Op.FLUSHDB:
                for table in (name, ttl_name(name), long_name(name)):
                    self._drop(table)
                continue
            key = mutation.key
            if op is Op.SET:
                assert mutation.value is not None
                self._put(name, key, mutation.value, mutation.expire_at_ms)
            elif op is Op.EXPIRE:
                if self._exists(name, key):  # EXPIRE changes only a key that exists
                    self._put_expiry(name, key, mutation.expire_at_ms)
            elif op is Op.DEL:
                self._delete(name, key)
            else:  # SWAPDB never reaches here: the image aborts on it
                raise ValueError(f"unexpected op {op!r} in a snapshot overlay")

    def _exists(self, name: bytes, key: bytes) -> bool:
        assert self._txn is not None
        if fits(key):
            return self._txn.get(key, db=self._db(name)) is not None
        return self._txn.get(long_key(key), db=self._db(long_name(name))) is not None

    def _put(self, name: bytes, key: bytes, value: bytes, expire_at_ms: int | None) -> None:
        assert self._txn is not None
        if fits(key):
            self._txn.put(key, value, db=self._db(name))
        else:
            self._txn.put(long_key(key), encode_long(key, value), db=self._db(long_name(name)))
        self._put_expiry(name, key, expire_at_ms)

    def _put_expiry(self, name: bytes, key: bytes, expire_at_ms: int | None) -> None:
        assert self._txn is not None
        stored = key if fits(key) else long_key(key)
        if expire_at_ms is None:
            self._txn.delete(stored, db=self._db(ttl_name(name)))
        else:
            self._txn.put(stored, EXPIRY.pack(expire_at_ms), db=self._db(ttl_name(name)))

    def _delete(self, name: bytes, key: bytes) -> None:
        assert self._txn is not None
        if fits(key):
            self._txn.delete(key, db=self._db(name))
        else:
            self._txn.delete(long_key(key), db=self._db(long_name(name)))
        self._put_expiry(name, key, None)

    def _drop(self, table: bytes) -> None:
        assert self._txn is not None
        self._txn.drop(self._db(table), delete=False)

    def finish(self, seq: int, created_at_ms: int) -> None:
        """Write the meta that marks the environment complete, with the key count and the
        checksum read back from the tables, and commit."""
        assert self._env is not None
        txn = self._begin()
        counts: dict[int, int] = {}
        for table, handle in self._dbs.items():
            if not table.endswith(b".ttl"):
                index = int(table.removesuffix(b".long")[2:])
                counts[index] = counts.get(index, 0) + txn.stat(handle)["entries"]
        indexes = sorted(index for index, count in counts.items() if count)
        crc = 0
        for index in indexes:
            name = db_name(index)
            for table in (ttl_name(name), name, long_name(name)):
                if table in self._dbs:
                    for batch in batches(txn.cursor(db=self._dbs[table])):
                        crc = chain_crc(batch, crc)
        meta = self._env.open_db(META, txn=txn)
        for field, value in ((b"format_version", FORMAT_VERSION), (b"seq", seq),
                             (b"keys", sum(counts[i] for i in indexes)),
                             (b"created_at_ms", created_at_ms), (b"checksum", crc),
                             (b"complete", 1)):
            txn.put(field, str(value).encode(), db=meta)
        txn.put(b"databases", b",".join(b"%d" % i for i in indexes), db=meta)
        self._commit(now=True)

    def publish(self, final: Path) -> int:
        """After :meth:`finish`: sync, close, fsync, rename into place (over an environment
        of the same sequence number: nothing changed since it was taken); the size in
        bytes."""
        assert self._env is not None and self._txn is None
        self._env.sync(True)
        self._env.close()
        self._env = None
        for file in self.temporary.iterdir():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(self.temporary)
        if final.exists():
            shutil.rmtree(final)
        os.replace(self.temporary, final)
        fsync_dir(final.parent)
        return sum(f.stat().st_size for f in final.iterdir())

    def abort(self) -> None:
        """After a failure, or when the node gave up: drop the transaction, close and
        remove the environment."""
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        if self._env is not None:
            self._env.close()
            self._env = None
        shutil.rmtree(self.temporary, ignore_errors=True)


def open_readonly(path: Path) -> lmdb.Environment:
    try:
        size = (path / "data.mdb").stat().st_size
        return lmdb.open(str(path), readonly=True, lock=False, subdir=True, max_dbs=MAX_DBS,
                         map_size=max(size, 1 << 20))
    except (OSError, lmdb.Error) as exc:
        raise LayoutError(f"cannot open the LMDB environment: {exc}") from None


def read_meta(env: lmdb.Environment, txn: lmdb.Transaction) -> dict[bytes, bytes]:
    try:
        meta = env.open_db(META, txn=txn, create=False)
    except lmdb.Error:
        raise LayoutError("no meta database") from None
    fields = {bytes(key): bytes(value) for key, value in txn.cursor(db=meta)}
    if fields.get(b"complete") != b"1":
        raise LayoutError("not complete (the meta says so)")
    if fields.get(b"format_version") not in [b"%d" % v for v in READABLE_VERSIONS]:
        raise LayoutError(f"format version {fields.get(b'format_version')!r} (this build "
                          f"reads {', '.join(map(str, READABLE_VERSIONS))})")
    for field in (b"seq", b"keys", b"checksum", b"created_at_ms"):
        if not fields.get(field, b"x").isdigit():
            raise LayoutError(f"meta field {field.decode()} is missing or not a number")
    return fields


def databases(fields: dict[bytes, bytes]) -> list[int]:
    text = fields.get(b"databases", b"")
    try:
        return [int(part) for part in text.split(b",")] if text else []
    except ValueError:
        raise LayoutError(f"meta field databases = {text!r}") from None


def open_table(env: lmdb.Environment, txn: lmdb.Transaction, name: bytes) -> Any:
    """The handle of named database ``name``, or None when the environment lacks it."""
    try:
        return env.open_db(name, txn=txn, create=False)
    except lmdb.Error:
        return None
