"""The binary form of a :class:`~distcache_core.mutations.Mutation` (format version 1).

One payload per mutation, shared by every file format that stores mutations (the WAL, the
snapshot files) and later by replication, so a reader of one understands the others. All
integers are little-endian; the payload is self-describing except for its own length, which
the container frames it with::

    offset  size  field
    0       1     format version (1)
    1       1     op (Op: 1 SET, 2 DEL, 3 EXPIRE, 4 FLUSHDB, 5 FLUSHALL, 6 SWAPDB)
    2       1     value type (ValueType: 0 none, 1 string)
    3       1     flags: bit 0 has expiry, bit 1 has value, bits 4-5 cause (Cause)
    4       2     db
    6       2     other db (SWAPDB), else 0
    8       8     expire_at_ms, absolute Unix ms (signed; 0 when bit 0 is clear)
    16      8     version (replication; 0 until the cluster assigns one)
    24      4     key length K
    28      K     key
    28+K    rest  value (present when bit 1 is set; may be empty)

A reader refuses a version it does not know rather than guess: a new field means a new
version number, never a reinterpreted one.
"""

from __future__ import annotations

import mmap
import struct

from ..mutations import Cause, Mutation, Op, ValueType

FORMAT_VERSION = 1

#: version, op, value type, flags, db, other db, expire_at_ms, version, key length
HEADER = struct.Struct("<BBBBHHqQI")
HEADER_SIZE = HEADER.size  # 28

HAS_EXPIRY = 0x01
HAS_VALUE = 0x02
CAUSE_SHIFT = 4
CAUSE_MASK = 0x30

#: What the decoders read from: file bytes, a slice of them, or a mapped file.
ReadableBuffer = bytes | bytearray | memoryview | mmap.mmap

_OPS = {int(op): op for op in Op}
_VALUE_TYPES = {int(t): t for t in ValueType}
_CAUSES = {int(c): c for c in Cause}

_pack_header = HEADER.pack
_unpack_header = HEADER.unpack_from


class DecodeError(ValueError):
    """A payload that is not a valid version-1 mutation; the message says what is wrong."""


def encode_header(mutation: Mutation) -> bytes:
    """The fixed header of ``mutation``'s payload; the key and value follow it."""
    expire_at_ms = mutation.expire_at_ms
    value = mutation.value
    flags = (int(mutation.cause) << CAUSE_SHIFT) & CAUSE_MASK
    if expire_at_ms is not None:
        flags |= HAS_EXPIRY
    else:
        expire_at_ms = 0
    if value is not None:
        flags |= HAS_VALUE
    return _pack_header(FORMAT_VERSION, mutation.op, mutation.value_type, flags, mutation.db,
                        mutation.other_db, expire_at_ms, mutation.version, len(mutation.key))


def encode(mutation: Mutation) -> bytes:
    """The whole payload of ``mutation``."""
    value = mutation.value
    head = encode_header(mutation) + mutation.key
    return head if value is None else head + value


def payload_size(mutation: Mutation) -> int:
    value = mutation.value
    return HEADER_SIZE + len(mutation.key) + (0 if value is None else len(value))


def encode_set(db: int, key: bytes, value: bytes, expire_at_ms: int | None,
               value_type: int = ValueType.STRING) -> bytes:
    """The header of a ``SET`` payload (key and value follow), without building a Mutation:
    what a snapshot writes for each key."""
    if expire_at_ms is None:
        return _pack_header(FORMAT_VERSION, Op.SET, value_type, HAS_VALUE, db, 0, 0, 0, len(key))
    return _pack_header(FORMAT_VERSION, Op.SET, value_type, HAS_VALUE | HAS_EXPIRY, db, 0,
                        expire_at_ms, 0, len(key))


def decode(buffer: ReadableBuffer, offset: int = 0, end: int | None = None) -> Mutation:
    """The mutation whose payload is ``buffer[offset:end]`` (``seq`` is left 0)."""
    if end is None:
        end = len(buffer)
    if end - offset < HEADER_SIZE:
        raise DecodeError(f"payload of {end - offset} bytes is shorter than the "
                          f"{HEADER_SIZE}-byte header")
    (version, op, value_type, flags, db, other_db, expire_at_ms, repl_version,
     key_len) = _unpack_header(buffer, offset)
    if version != FORMAT_VERSION:
        raise DecodeError(f"unknown payload format version {version}")
    op_enum = _OPS.get(op)
    if op_enum is None:
        raise DecodeError(f"unknown op {op}")
    type_enum = _VALUE_TYPES.get(value_type)
    if type_enum is None:
        raise DecodeError(f"unknown value type {value_type}")
    key_start = offset + HEADER_SIZE
    key_end = key_start + key_len
    if key_end > end:
        raise DecodeError(f"key length {key_len} runs past the payload end")
    key = bytes(buffer[key_start:key_end])
    if flags & HAS_VALUE:
        value: bytes | None = bytes(buffer[key_end:end])
    elif key_end != end:
        raise DecodeError(f"{end - key_end} bytes after a payload without a value")
    else:
        value = None
    if (op_enum is Op.SET) != (value is not None):
        raise DecodeError(f"op {op_enum.name} {'without' if value is None else 'with'} a value")
    mutation = Mutation(op_enum, db, key, value,
                        expire_at_ms if flags & HAS_EXPIRY else None,
                        _CAUSES.get((flags & CAUSE_MASK) >> CAUSE_SHIFT, Cause.COMMAND),
                        type_enum, other_db)
    mutation.version = repl_version
    return mutation
