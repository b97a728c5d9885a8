"""Writing and reading snapshot environments (see :mod:`.layout`).

:class:`EnvironmentWriter` runs in the snapshot builder process (:mod:`.builder`), on its one
thread: the node only encodes slices and pipes them there. Write transactions span many
slices (a commit every :data:`COMMIT_EVERY_KEYS` keys: each commit writes the dirty pages,
so one per slice cost a third more time) and are committed without syncing; only the final
sync, fsyncs and rename make the environment durable, and the meta says it is complete, so
nobody reads an unfinished one. Reading (:func:`iter_entries`) happens on the node's loop, a
slice at a time, in a read-only environment that takes no lock.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import lmdb

from distcache_core.mutations import Mutation, Op
from distcache_core.persistence.files import fsync_dir

from .layout import (
    CHECKSUM_MODULUS,
    FORMAT_VERSION,
    META,
    LayoutError,
    db_name,
    decode_long,
    decode_record,
    encode_long,
    encode_record,
    entry_term,
    fits,
    long_key,
    long_name,
)

#: Named databases an environment may hold: ``meta`` and one per logical database.
MAX_DBS = 1025
#: Keys written between commits of the builder's write transaction.
COMMIT_EVERY_KEYS = 65536


class EnvironmentWriter:
    """The snapshot's environment and its write transaction, used from one thread."""

    def __init__(self, temporary: Path, map_size: int) -> None:
        self.temporary = temporary
        self.map_size = map_size
        self._env: lmdb.Environment | None = None
        #: The write transaction of the slice being written (None between slices).
        self._txn: lmdb.Transaction | None = None
        self._dbs: dict[bytes, Any] = {}
        #: Checksum terms per database, so FLUSHDB in the overlay can take a database out.
        self._sums: dict[bytes, int] = {}
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
            self._sums.setdefault(name, 0)
        return db

    def put_block(self, name: bytes, pairs: list[tuple[bytes, bytes]],
                  long_pairs: list[tuple[bytes, bytes]], term_sum: int) -> None:
        """Keys of the walk (each key once: nothing to take out of the checksum)."""
        txn = self._begin()
        self._db(name)  # the checksum is kept by the database's own name
        if pairs:
            txn.cursor(db=self._db(name)).putmulti(pairs)
        if long_pairs:
            txn.cursor(db=self._db(long_name(name))).putmulti(long_pairs)
        self._sums[name] += term_sum
        self.keys += len(pairs) + len(long_pairs)
        self._commit(len(pairs) + len(long_pairs))

    def apply(self, mutations: list[Mutation]) -> None:
        """The overlay: changes made during the walk, in order, keeping the checksum."""
        self._begin()
        self._apply(mutations)
        self._commit(len(mutations))

    def _apply(self, mutations: list[Mutation]) -> None:
        for mutation in mutations:
            op = mutation.op
            if op is Op.FLUSHALL:
                for name in list(self._dbs):
                    self._drop(name)
                continue
            name = db_name(mutation.db)
            if op is Op.FLUSHDB:
                self._drop(name)
                self._drop(long_name(name))
                continue
            key = mutation.key
            old = self._get(name, key)
            if old is not None:
                self._sums[name] -= entry_term(name, key, old)
            if op is Op.SET:
                assert mutation.value is not None
                record = encode_record(mutation.value, mutation.expire_at_ms)
            elif op is Op.EXPIRE and old is not None:
                record = encode_record(decode_record(old)[0], mutation.expire_at_ms)
            elif op is Op.DEL or op is Op.EXPIRE:
                if old is not None:
                    self._delete(name, key)
                continue
            else:  # SWAPDB never reaches here: the image aborts on it
                raise ValueError(f"unexpected op {op!r} in a snapshot overlay")
            self._put(name, key, record)
            self._sums[name] += entry_term(name, key, record)

    def _get(self, name: bytes, key: bytes) -> bytes | None:
        assert self._txn is not None
        if fits(key):
            found = self._txn.get(key, db=self._db(name))
            return bytes(found) if found is not None else None
        found = self._txn.get(long_key(key), db=self._db(long_name(name)))
        return decode_long(bytes(found))[1] if found is not None else None

    def _put(self, name: bytes, key: bytes, record: bytes) -> None:
        assert self._txn is not None
        if fits(key):
            self._txn.put(key, record, db=self._db(name))
        else:
            self._txn.put(long_key(key), encode_long(key, record),
                          db=self._db(long_name(name)))

    def _delete(self, name: bytes, key: bytes) -> None:
        assert self._txn is not None
        if fits(key):
            self._txn.delete(key, db=self._db(name))
        else:
            self._txn.delete(long_key(key), db=self._db(long_name(name)))

    def _drop(self, name: bytes) -> None:
        assert self._txn is not None
        self._txn.drop(self._db(name), delete=False)
        self._sums[name] = 0

    def finish(self, seq: int, created_at_ms: int) -> None:
        """Write the meta that marks the environment complete, and commit."""
        assert self._env is not None
        txn = self._begin()
        counts: dict[bytes, int] = {}
        for table, handle in self._dbs.items():
            owner = table.removesuffix(b".long")
            counts[owner] = counts.get(owner, 0) + txn.stat(handle)["entries"]
        names = sorted((n for n, count in counts.items() if count), key=lambda n: int(n[2:]))
        keys = sum(counts[n] for n in names)
        checksum = sum(self._sums.get(n, 0) for n in names) % CHECKSUM_MODULUS
        meta = self._env.open_db(META, txn=txn)
        for field, value in ((b"format_version", FORMAT_VERSION), (b"seq", seq),
                             (b"keys", keys), (b"created_at_ms", created_at_ms),
                             (b"checksum", checksum), (b"complete", 1)):
            txn.put(field, str(value).encode(), db=meta)
        txn.put(b"databases", b",".join(n[2:] for n in names), db=meta)
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
    if fields.get(b"format_version") != str(FORMAT_VERSION).encode():
        raise LayoutError(f"format version {fields.get(b'format_version')!r}")
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


def iter_entries(env: lmdb.Environment, txn: lmdb.Transaction, db: int
                 ) -> Iterator[tuple[bytes, bytes]]:
    """(key, record) of every key of logical database ``db``, short keys then long ones."""
    name = db_name(db)
    try:
        handle = env.open_db(name, txn=txn, create=False)
    except lmdb.Error:
        handle = None
    try:
        long_handle = env.open_db(long_name(name), txn=txn, create=False)
    except lmdb.Error:
        long_handle = None
    if handle is None and long_handle is None:
        raise LayoutError(f"the meta lists database {db}, the environment lacks it")
    if handle is not None:
        # buffers=False (the default): keys and values come as bytes, not memoryviews.
        yield from cast(Iterator[tuple[bytes, bytes]], iter(txn.cursor(db=handle)))
    if long_handle is not None:
        for _, stored in txn.cursor(db=long_handle):
            yield decode_long(bytes(stored))
