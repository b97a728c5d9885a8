"""The LMDB snapshot layout (version 1), sans I/O: what is stored under which name.

One LMDB environment per snapshot, a directory ``snapshot-<seq, 20 digits>.lmdb/`` holding
LMDB's own ``data.mdb`` and ``lock.mdb``. Its named databases:

* ``meta``: ASCII values, so ``mdb_dump -s meta -p`` shows them as text:
  ``format_version`` (``1``), ``seq`` (the image's sequence number: every mutation up to it is
  in the snapshot, none after), ``keys`` (how many), ``databases`` (the logical databases that
  have keys, comma-separated), ``created_at_ms``, ``checksum`` (below) and ``complete``
  (``1``, written in the same transaction as everything else).
* ``db<N>`` for each logical database ``N`` that has keys: the key, as the client wrote it,
  maps to a record: 1 byte value type (1: string), 1 byte flags (bit 0: has an expiry), 8
  bytes little-endian signed absolute expiry in Unix ms (0 when none), then the value.
* ``db<N>.long``: the keys LMDB cannot take as keys (empty, or longer than its 511-byte
  limit; Redis keys go up to 512 MB): SHA-256 of the key maps to 4 bytes little-endian key
  length, the key, then the record as above.

``checksum`` is the sum, modulo 2**64, of CRC32(``db<N>`` + key + record) over every key
(its real key, in either table).
LMDB keeps its B-tree consistent but does not checksum data pages; this catches a flipped bit
in a key or value. A sum, not a running CRC, because an entry's term can be taken out and put
back when the changes made during the walk (the overlay) overwrite it, in any order.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable

FORMAT_VERSION = 1
META = b"meta"
RECORD = struct.Struct("<BBq")
RECORD_SIZE = RECORD.size  # 10
STRING = 1
HAS_EXPIRY = 0x01
CHECKSUM_MODULUS = 1 << 64

_pack_record = RECORD.pack
_crc32 = zlib.crc32


class LayoutError(ValueError):
    """Not a sound version-1 LMDB snapshot; the message says what is wrong."""


#: LMDB's limit on key size (MDB_MAXKEYSIZE of the default build py-lmdb ships).
MAX_KEY_SIZE = 511
KEY_LENGTH = struct.Struct("<I")


def db_name(db: int) -> bytes:
    return b"db%d" % db


def long_name(name: bytes) -> bytes:
    return name + b".long"


def fits(key: bytes) -> bool:
    """Whether LMDB takes ``key`` as a key as it is."""
    return 0 < len(key) <= MAX_KEY_SIZE


def long_key(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def encode_long(key: bytes, record: bytes) -> bytes:
    return KEY_LENGTH.pack(len(key)) + key + record


def decode_long(stored: bytes) -> tuple[bytes, bytes]:
    """(key, record) of a ``db<N>.long`` value."""
    if len(stored) < KEY_LENGTH.size:
        raise LayoutError("long-key entry shorter than its key length")
    (length,) = KEY_LENGTH.unpack_from(stored)
    end = KEY_LENGTH.size + length
    if end > len(stored):
        raise LayoutError("long-key entry shorter than its key")
    return stored[KEY_LENGTH.size:end], stored[end:]


def encode_record(value: bytes, expire_at_ms: int | None) -> bytes:
    if expire_at_ms is None:
        return _pack_record(STRING, 0, 0) + value
    return _pack_record(STRING, HAS_EXPIRY, expire_at_ms) + value


def decode_record(record: bytes) -> tuple[bytes, int | None]:
    """(value, expire_at_ms) of a record."""
    if len(record) < RECORD_SIZE:
        raise LayoutError(f"record of {len(record)} bytes, shorter than its header")
    value_type, flags, expire_at_ms = RECORD.unpack_from(record)
    if value_type != STRING:
        raise LayoutError(f"unknown value type {value_type}")
    return record[RECORD_SIZE:], expire_at_ms if flags & HAS_EXPIRY else None


def entry_term(name: bytes, key: bytes, record: bytes) -> int:
    """One entry's share of the checksum."""
    return _crc32(record, _crc32(key, _crc32(name)))


def encode_items(name: bytes, items: Iterable[tuple[bytes, bytes, int | None]]
                 ) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], int]:
    """(key, record) pairs for ``db<N>``, pairs for ``db<N>.long``, and their checksum terms
    summed, for a slice of the walk."""
    pairs = []
    long_pairs = []
    total = 0
    name_crc = _crc32(name)
    for key, value, expire_at_ms in items:
        record = (_pack_record(STRING, 0, 0) if expire_at_ms is None
                  else _pack_record(STRING, HAS_EXPIRY, expire_at_ms)) + value
        if 0 < len(key) <= MAX_KEY_SIZE:
            pairs.append((key, record))
        else:
            long_pairs.append((long_key(key), encode_long(key, record)))
        total += _crc32(record, _crc32(key, name_crc))
    return pairs, long_pairs, total
