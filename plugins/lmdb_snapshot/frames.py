"""What the node sends its snapshot builder (:mod:`.builder`) through a pipe, sans I/O.

A frame is 1 byte of kind, 4 bytes of payload length (little-endian, as every integer here),
then the payload:

* ``KEYS``, one slice of the walk of one database, in columns so that the node encodes it
  with C loops (its share of the work is this encoding, on the event loop)::

      2 db;  2 flags (bit 0: an expiry column follows the lengths);  4 count
      count x 4 key lengths;  count x 4 value lengths
      count x 8 absolute expiry in Unix ms, INT64_MIN for none (with flag bit 0)
      the keys, concatenated;  the values, concatenated

* ``OVERLAY``: 4 count, then count x (4 length, a mutation in the core's codec,
  :mod:`distcache_core.persistence.codec`), applied in order after every ``KEYS`` frame.
* ``FINISH``: 8 sequence number, 8 creation time in Unix ms, then the path to publish the
  environment under (the file system's bytes).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import BinaryIO

from distcache_core.mutations import Mutation
from distcache_core.persistence import codec

KEYS, OVERLAY, FINISH = 1, 2, 3
FRAME = struct.Struct("<BI")
KEYS_HEAD = struct.Struct("<HHI")
FINISH_HEAD = struct.Struct("<Qq")
U32 = struct.Struct("<I")
HAS_EXPIRY_COLUMN = 0x01
NO_EXPIRY = -(2**63)
_SWAP = sys.byteorder != "little"


class FrameError(ValueError):
    """A frame the builder cannot read; the message says which and why."""


def _column(typecode: str, values: object) -> bytes:
    column = array(typecode, values)  # type: ignore[call-overload]
    if _SWAP:
        column.byteswap()
    return column.tobytes()


def _array(typecode: str, data: bytes, start: int, stop: int) -> array:
    column = array(typecode)
    column.frombytes(data[start:stop])
    if _SWAP:
        column.byteswap()
    return column


def encode_keys(db: int, items: list[tuple[bytes, bytes, int | None]]) -> bytes:
    """A ``KEYS`` frame for a slice of the walk of database ``db``."""
    keys, values, expiries = zip(*items, strict=True)
    with_expiry = expiries.count(None) != len(expiries)
    parts = [b"", KEYS_HEAD.pack(db, HAS_EXPIRY_COLUMN if with_expiry else 0, len(items)),
             _column("I", map(len, keys)), _column("I", map(len, values))]
    if with_expiry:
        parts.append(_column("q", [NO_EXPIRY if e is None else e for e in expiries]))
    parts.append(b"".join(keys))
    parts.append(b"".join(values))
    parts[0] = FRAME.pack(KEYS, sum(map(len, parts)))
    return b"".join(parts)


def decode_keys(payload: bytes) -> tuple[int, list[bytes], list[bytes], list[int | None]]:
    """(db, keys, values, expiries) of a ``KEYS`` payload."""
    if len(payload) < KEYS_HEAD.size:
        raise FrameError("keys frame shorter than its header")
    db, flags, count = KEYS_HEAD.unpack_from(payload)
    position = KEYS_HEAD.size
    key_lengths = _array("I", payload, position, position + 4 * count)
    position += 4 * count
    value_lengths = _array("I", payload, position, position + 4 * count)
    position += 4 * count
    expiries: list[int | None]
    if flags & HAS_EXPIRY_COLUMN:
        column = _array("q", payload, position, position + 8 * count)
        position += 8 * count
        expiries = [None if e == NO_EXPIRY else e for e in column]
    else:
        expiries = [None] * count
    if len(key_lengths) != count or len(value_lengths) != count or len(expiries) != count:
        raise FrameError(f"keys frame of {len(payload)} bytes too short for {count} keys")
    key_offsets = list(accumulate(key_lengths, initial=position))
    value_offsets = list(accumulate(value_lengths, initial=key_offsets[-1]))
    if value_offsets[-1] != len(payload):
        raise FrameError(f"keys frame: lengths add up to {value_offsets[-1]} bytes, the "
                         f"frame has {len(payload)}")
    get: Callable[[slice], bytes] = payload.__getitem__
    keys = list(map(get, map(slice, key_offsets, key_offsets[1:])))
    values = list(map(get, map(slice, value_offsets, value_offsets[1:])))
    return db, keys, values, expiries


def encode_overlay(mutations: list[Mutation]) -> bytes:
    parts = [b"", U32.pack(len(mutations))]
    for mutation in mutations:
        payload = codec.encode(mutation)
        parts.append(U32.pack(len(payload)))
        parts.append(payload)
    parts[0] = FRAME.pack(OVERLAY, sum(map(len, parts)))
    return b"".join(parts)


def decode_overlay(payload: bytes) -> list[Mutation]:
    (count,) = U32.unpack_from(payload)
    offset = U32.size
    mutations = []
    for _ in range(count):
        (length,) = U32.unpack_from(payload, offset)
        end = offset + U32.size + length
        if end > len(payload):
            raise FrameError("overlay record runs past its frame")
        mutations.append(codec.decode(payload, offset + U32.size, end))
        offset = end
    if offset != len(payload):
        raise FrameError(f"overlay frame: {len(payload) - offset} stray bytes")
    return mutations


def encode_finish(seq: int, created_at_ms: int, final: bytes) -> bytes:
    payload = FINISH_HEAD.pack(seq, created_at_ms) + final
    return FRAME.pack(FINISH, len(payload)) + payload


def decode_finish(payload: bytes) -> tuple[int, int, bytes]:
    seq, created_at_ms = FINISH_HEAD.unpack_from(payload)
    return seq, created_at_ms, payload[FINISH_HEAD.size:]


def read_frames(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(kind, payload) of each frame until the end of ``stream``."""
    while True:
        head = stream.read(FRAME.size)
        if not head:
            return
        if len(head) != FRAME.size:
            raise FrameError("the stream ends inside a frame header")
        kind, length = FRAME.unpack(head)
        payload = stream.read(length)
        if len(payload) != length or kind not in (KEYS, OVERLAY, FINISH):
            raise FrameError(f"frame of kind {kind}, {length} bytes: cut short or unknown")
        yield kind, payload
