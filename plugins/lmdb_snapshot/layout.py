"""The LMDB snapshot layout, sans I/O: what is stored under which name.

One LMDB environment per snapshot, a directory ``snapshot-<seq, 20 digits>.lmdb/`` holding
LMDB's own ``data.mdb`` and ``lock.mdb``. Version 2 (written since 2026-11-30) has these
named databases:

* ``meta``: ASCII values, so ``mdb_dump -s meta -p`` shows them as text:
  ``format_version`` (``2``), ``seq`` (the image's sequence number: every mutation up to it is
  in the snapshot, none after), ``keys`` (how many), ``databases`` (the logical databases that
  have keys, comma-separated, ascending), ``created_at_ms``, ``checksum`` (below) and
  ``complete`` (``1``, written in the same transaction as everything else).
* ``db<N>`` for each logical database ``N`` that has keys: the key, as the client wrote it,
  maps to its value, as it is (string values; ``mdb_dump -s db0 -p`` shows them).
* ``db<N>.ttl``: the keys of ``db<N>`` that have an expiry, each to 8 bytes little-endian
  signed: the absolute expiry in Unix ms.
* ``db<N>.long``: the keys LMDB cannot take as keys (empty, or longer than its 511-byte
  limit; Redis keys go up to 512 MB): SHA-256 of the key maps to 4 bytes little-endian key
  length, the key, then the value. Their expiries are in ``db<N>.ttl`` under that hash.

``checksum`` is the CRC32 of one stream: for each database of ``databases`` in order, every
entry of ``db<N>.ttl``, then of ``db<N>``, then of ``db<N>.long``, each in LMDB's key order
as its key followed by its value. LMDB keeps its B-tree consistent but does not checksum data
pages; this catches a flipped bit in a key or value. A loader checks it while it reads, with
one ``crc32`` call over a joined batch of entries (a call per entry, as version 1 needed,
cost 0.25 us an entry, and cutting the value out of its record another 0.4 us).

Version 1 (still read) had no ``.ttl`` tables: ``db<N>`` mapped each key to a record (1 byte
value type, 1 byte flags with bit 0 "has an expiry", 8 bytes expiry, then the value), and its
checksum was the sum modulo 2**64 of CRC32(``db<N>`` + key + record) over every key.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable

FORMAT_VERSION = 2
#: Versions a loader reads.
READABLE_VERSIONS = (1, 2)
META = b"meta"
EXPIRY = struct.Struct("<q")
#: LMDB's limit on key size (MDB_MAXKEYSIZE of the default build py-lmdb ships).
MAX_KEY_SIZE = 511
KEY_LENGTH = struct.Struct("<I")

_crc32 = zlib.crc32


class LayoutError(ValueError):
    """Not a sound LMDB snapshot; the message says what is wrong."""


def db_name(db: int) -> bytes:
    return b"db%d" % db


def long_name(name: bytes) -> bytes:
    return name + b".long"


def ttl_name(name: bytes) -> bytes:
    return name + b".ttl"


def fits(key: bytes) -> bool:
    """Whether LMDB takes ``key`` as a key as it is."""
    return 0 < len(key) <= MAX_KEY_SIZE


def long_key(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def encode_long(key: bytes, value: bytes) -> bytes:
    return KEY_LENGTH.pack(len(key)) + key + value


def decode_long(stored: bytes) -> tuple[bytes, bytes]:
    """(key, value) of a ``db<N>.long`` entry (the value is a record in version 1)."""
    if len(stored) < KEY_LENGTH.size:
        raise LayoutError("long-key entry shorter than its key length")
    (length,) = KEY_LENGTH.unpack_from(stored)
    end = KEY_LENGTH.size + length
    if end > len(stored):
        raise LayoutError("long-key entry shorter than its key")
    return stored[KEY_LENGTH.size:end], stored[end:]


def encode_items(items: Iterable[tuple[bytes, bytes, int | None]]
                 ) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]],
                            list[tuple[bytes, bytes]]]:
    """The (key, value) pairs of ``db<N>``, the (key, expiry) pairs of ``db<N>.ttl`` and the
    (hash, entry) pairs of ``db<N>.long`` for a slice of the walk."""
    pairs = []
    ttl_pairs = []
    long_pairs = []
    pack_expiry = EXPIRY.pack
    for key, value, expire_at_ms in items:
        if 0 < len(key) <= MAX_KEY_SIZE:
            pairs.append((key, value))
        else:
            hashed = long_key(key)
            long_pairs.append((hashed, encode_long(key, value)))
            key = hashed
        if expire_at_ms is not None:
            ttl_pairs.append((key, pack_expiry(expire_at_ms)))
    return pairs, ttl_pairs, long_pairs


# --- version 1, read only -------------------------------------------------------------------

RECORD_V1 = struct.Struct("<BBq")
RECORD_V1_SIZE = RECORD_V1.size  # 10
STRING = 1
HAS_EXPIRY = 0x01
CHECKSUM_V1_MODULUS = 1 << 64


def decode_record_v1(record: bytes) -> tuple[bytes, int | None]:
    """(value, expire_at_ms) of a version-1 record."""
    if len(record) < RECORD_V1_SIZE:
        raise LayoutError(f"record of {len(record)} bytes, shorter than its header")
    value_type, flags, expire_at_ms = RECORD_V1.unpack_from(record)
    if value_type != STRING:
        raise LayoutError(f"unknown value type {value_type}")
    return record[RECORD_V1_SIZE:], expire_at_ms if flags & HAS_EXPIRY else None


def entry_term_v1(name: bytes, key: bytes, record: bytes) -> int:
    """One entry's share of a version-1 checksum."""
    return _crc32(record, _crc32(key, _crc32(name)))
