"""Reading a complete snapshot environment in batches, checking its count and checksum.

Both versions of :mod:`.layout` come out the same way, as (database, keys, values, expiries)
batches that a loader hands to ``RecoveryTarget.restore_block``; version 2's come straight
from LMDB's cursor (values as stored, the checksum one ``crc32`` call a batch), version 1's
are cut out of their records.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

import lmdb

from .layout import (
    CHECKSUM_V1_MODULUS,
    EXPIRY,
    HAS_EXPIRY,
    RECORD_V1,
    RECORD_V1_SIZE,
    STRING,
    LayoutError,
    db_name,
    decode_long,
    entry_term_v1,
    long_name,
    ttl_name,
)
from .store import batches, chain_crc, databases, open_table

#: (logical database, keys, values, expiries or None when no key of the batch has one)
Batch = tuple[int, Sequence[bytes], Sequence[bytes], Sequence[int | None] | None]

_SWAP = sys.byteorder != "little"
_first = itemgetter(0)
_second = itemgetter(1)


class SnapshotReader:
    """``for batch in reader.batches(): ...`` then ``reader.verify()``, within one read
    transaction ``txn`` of ``env``, whose meta is ``fields``."""

    def __init__(self, env: lmdb.Environment, txn: lmdb.Transaction,
                 fields: dict[bytes, bytes]) -> None:
        self.env = env
        self.txn = txn
        self.fields = fields
        self.version = int(fields[b"format_version"])
        self.expected_keys = int(fields[b"keys"])
        self.keys = 0
        self._checksum = 0

    def batches(self) -> Iterator[Batch]:
        read = self._database_v2 if self.version >= 2 else self._database_v1
        for db in databases(self.fields):
            yield from read(db)

    def verify(self) -> None:
        """After every batch: the meta's key count and checksum, or :class:`LayoutError`."""
        if self.keys != self.expected_keys:
            raise LayoutError(f"the meta counts {self.expected_keys} keys, found {self.keys}")
        expected = int(self.fields[b"checksum"])
        if self.version < 2:
            self._checksum %= CHECKSUM_V1_MODULUS
        if self._checksum != expected:
            raise LayoutError("checksum mismatch")

    def _tables(self, db: int, names: Sequence[bytes]) -> list[Any]:
        handles = [open_table(self.env, self.txn, name) for name in names]
        if all(handle is None for name, handle in zip(names, handles, strict=True)
               if not name.endswith(b".ttl")):
            raise LayoutError(f"the meta lists database {db}, the environment lacks it")
        return handles

    def _database_v2(self, db: int) -> Iterator[Batch]:
        name = db_name(db)
        ttl, main, long = self._tables(db, (ttl_name(name), name, long_name(name)))
        cursor = self.txn.cursor
        expiries: dict[bytes, int] = {}
        if ttl is not None:
            for batch in batches(cursor(db=ttl)):
                self._checksum = chain_crc(batch, self._checksum)
                keys, stamps = zip(*batch, strict=True)
                if stamps.count(b"") or set(map(len, stamps)) != {EXPIRY.size}:
                    raise LayoutError(f"database {db}: an expiry that is not 8 bytes")
                column = array("q")
                column.frombytes(b"".join(stamps))
                if _SWAP:
                    column.byteswap()
                expiries.update(zip(keys, column, strict=True))
        take = expiries.pop
        if main is not None:
            for batch in batches(cursor(db=main)):
                self._checksum = chain_crc(batch, self._checksum)
                keys, values = zip(*batch, strict=True)
                self.keys += len(keys)
                yield db, keys, values, list(map(take, keys, repeat(None))) if expiries else None
        if long is not None:
            for batch in batches(cursor(db=long)):
                self._checksum = chain_crc(batch, self._checksum)
                self.keys += len(batch)
                entries = [decode_long(stored) for _, stored in batch]
                hashes = list(map(_first, batch))
                yield (db, list(map(_first, entries)), list(map(_second, entries)),
                       list(map(take, hashes, repeat(None))) if expiries else None)
        if expiries:
            raise LayoutError(f"database {db}: {len(expiries)} expiries of keys it lacks")

    def _database_v1(self, db: int) -> Iterator[Batch]:
        name = db_name(db)
        main, long = self._tables(db, (name, long_name(name)))
        if main is not None:
            for batch in batches(self.txn.cursor(db=main)):
                yield db, *self._records_v1(name, batch)
        if long is not None:
            for batch in batches(self.txn.cursor(db=long)):
                yield db, *self._records_v1(name, [decode_long(s) for _, s in batch])

    def _records_v1(self, name: bytes, batch: list[tuple[bytes, bytes]]
                    ) -> tuple[list[bytes], list[bytes], list[int | None]]:
        keys = [key for key, _ in batch]
        values: list[bytes] = []
        expiries: list[int | None] = []
        add_value, add_expiry, unpack = values.append, expiries.append, RECORD_V1.unpack_from
        for key, record in batch:
            if len(record) < RECORD_V1_SIZE:
                raise LayoutError(f"record of {len(record)} bytes, shorter than its header")
            value_type, flags, expire_at_ms = unpack(record)
            if value_type != STRING:
                raise LayoutError(f"unknown value type {value_type}")
            add_value(record[RECORD_V1_SIZE:])
            add_expiry(expire_at_ms if flags & HAS_EXPIRY else None)
            self._checksum += entry_term_v1(name, key, record)
        self.keys += len(keys)
        return keys, values, expiries
