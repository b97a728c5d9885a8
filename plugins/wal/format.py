"""The WAL's bytes (format version 1), sans I/O: segment headers, record frames, a scanner.

A segment file is a header then records::

    header, 40 bytes
    0   8  magic b"DCWAL\\x00\\r\\n" (the CR LF catches text-mode mangling, as PNG's does)
    8   2  format version (1)
    10  2  kind: 1 log segment, 2 base (an image of the keyspace, written by a rewrite)
    12  4  header size (40)
    16  8  log: the first sequence number it may hold; base: the image's sequence number
    24  8  base: number of records; log: 0 (unknown while appending)
    32  4  reserved (0)
    36  4  CRC32 of bytes 0..35

    record, 16 bytes + payload
    0   4  payload length N
    4   4  CRC32 of bytes 8..16+N (the sequence number and the payload)
    8   8  sequence number (base records: 0 for keys of the walk, else the mutation's)
    16  N  payload: a mutation in the core's codec (distcache_core.persistence.codec: format
           version, op, value type, flags, db, other db, absolute expiry, version, key, value)

CRC32 is zlib's (the IEEE polynomial, as gzip and PNG use): it is in the standard library and
runs at ~1 GB/s here; CRC32C would need a third-party package for the same job.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from distcache_core.mutations import Mutation
from distcache_core.persistence import codec
from distcache_core.persistence.codec import ReadableBuffer

MAGIC = b"DCWAL\x00\r\n"
FORMAT_VERSION = 1
KIND_LOG = 1
KIND_BASE = 2
KIND_NAMES = {KIND_LOG: "log", KIND_BASE: "base"}

SEGMENT_HEADER = struct.Struct("<8sHHIQQI")
SEGMENT_HEADER_SIZE = SEGMENT_HEADER.size + 4  # 40, with the CRC
#: Payload length and CRC.
FRAME = struct.Struct("<II")
FRAME_SIZE = FRAME.size + 8  # 16, with the sequence number
#: Sequence number then the codec's fixed payload header: one pack call per record.
SEQ_AND_HEADER = struct.Struct("<Q" + codec.HEADER.format.lstrip("<"))
#: No record is larger (the biggest value Redis accepts is 512 MB): a length above it is
#: damage, not a record, and the scanner never allocates what a damaged length asks for.
MAX_PAYLOAD = 1 << 30

_crc32 = zlib.crc32
pack_frame = _pack_frame = FRAME.pack
pack_seq_and_header = _pack_seq_and_header = SEQ_AND_HEADER.pack
_unpack_frame = FRAME.unpack_from
_unpack_seq = struct.Struct("<Q").unpack_from
_HAS_EXPIRY = codec.HAS_EXPIRY
_HAS_VALUE = codec.HAS_VALUE
_CAUSE_SHIFT = codec.CAUSE_SHIFT
_VERSION = codec.FORMAT_VERSION
_SET = 1


def segment_header(kind: int, seq: int, record_count: int = 0) -> bytes:
    head = SEGMENT_HEADER.pack(MAGIC, FORMAT_VERSION, kind, SEGMENT_HEADER_SIZE, seq,
                               record_count, 0)
    return head + struct.pack("<I", _crc32(head))


class HeaderError(ValueError):
    """The first 40 bytes are not a version-1 WAL segment header."""


def parse_segment_header(data: ReadableBuffer) -> tuple[int, int, int]:
    """(kind, seq, record count) of a segment header, or :class:`HeaderError`."""
    if len(data) < SEGMENT_HEADER_SIZE:
        raise HeaderError(f"file is {len(data)} bytes, shorter than the "
                          f"{SEGMENT_HEADER_SIZE}-byte header")
    magic, version, kind, size, seq, count, _ = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise HeaderError("not a DistCache WAL file (bad magic)")
    (crc,) = struct.unpack_from("<I", data, SEGMENT_HEADER.size)
    if crc != _crc32(bytes(data[:SEGMENT_HEADER.size])):
        raise HeaderError("header checksum mismatch")
    if version != FORMAT_VERSION:
        raise HeaderError(f"format version {version} (this build reads {FORMAT_VERSION})")
    if kind not in KIND_NAMES or size != SEGMENT_HEADER_SIZE:
        raise HeaderError(f"unknown segment kind {kind} or header size {size}")
    return kind, seq, count


def append_mutation(buffer: bytearray, mutation: Mutation) -> None:
    """Frame ``mutation`` (its ``seq`` included) onto ``buffer``: the per-write cost of the WAL.
    One pack, one concatenation, one CRC over it and two appends: measured 30% cheaper than
    chaining the CRC over header, key and value and appending each (1.8 against 2.6 us on the
    loaded test machine)."""
    key = mutation.key
    value = mutation.value
    expire_at_ms = mutation.expire_at_ms
    flags = mutation.cause << _CAUSE_SHIFT
    if expire_at_ms is None:
        expire_at_ms = 0
    else:
        flags |= _HAS_EXPIRY
    if value is None:
        record = _pack_seq_and_header(mutation.seq, _VERSION, mutation.op, mutation.value_type,
                                      flags, mutation.db, mutation.other_db, expire_at_ms,
                                      mutation.version, len(key)) + key
    else:
        record = _pack_seq_and_header(mutation.seq, _VERSION, mutation.op, mutation.value_type,
                                      flags | _HAS_VALUE, mutation.db, mutation.other_db,
                                      expire_at_ms, mutation.version, len(key)) + key + value
    buffer += _pack_frame(len(record) - 8, _crc32(record))
    buffer += record


def append_fields(buffer: bytearray, seq: int, op: int, db: int, key: bytes,
                  value: bytes | None, expire_at_ms: int | None, cause: int) -> None:
    """:func:`append_mutation` from a change's fields (the mutation stream's fast form: a
    string value or none, no other database, replication version 0)."""
    flags = cause << _CAUSE_SHIFT
    if expire_at_ms is None:
        expire_at_ms = 0
    else:
        flags |= _HAS_EXPIRY
    if value is None:
        record = _pack_seq_and_header(seq, _VERSION, op, 0, flags, db, 0, expire_at_ms, 0,
                                      len(key)) + key
    else:
        record = _pack_seq_and_header(seq, _VERSION, op, 1, flags | _HAS_VALUE, db, 0,
                                      expire_at_ms, 0, len(key)) + key + value
    buffer += _pack_frame(len(record) - 8, _crc32(record))
    buffer += record


def append_set(buffer: bytearray, db: int, key: bytes, value: bytes,
               expire_at_ms: int | None) -> None:
    """Frame a SET of a walked key (sequence number 0) onto ``buffer``: a base's bulk."""
    if expire_at_ms is None:
        head = _pack_seq_and_header(0, _VERSION, _SET, 1, _HAS_VALUE, db, 0, 0, 0, len(key))
    else:
        head = _pack_seq_and_header(0, _VERSION, _SET, 1, _HAS_VALUE | _HAS_EXPIRY, db, 0,
                                    expire_at_ms, 0, len(key))
    buffer += _pack_frame(len(head) - 8 + len(key) + len(value),
                          _crc32(value, _crc32(key, _crc32(head))))
    buffer += head
    buffer += key
    buffer += value


class BadRecord(Exception):
    """Why the record at ``offset`` cannot be read."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason


def read_record(data: ReadableBuffer, offset: int, end: int) -> tuple[int, int, int]:
    """The record at ``offset``: (sequence number, payload start, payload end), or
    :class:`BadRecord`. Checks the frame and the CRC, not the payload's fields."""
    if end - offset < FRAME_SIZE:
        raise BadRecord(offset, f"{end - offset} bytes left, a record frame needs {FRAME_SIZE}")
    length, crc = _unpack_frame(data, offset)
    if length < codec.HEADER_SIZE or length > MAX_PAYLOAD:
        raise BadRecord(offset, f"impossible payload length {length}")
    payload_end = offset + FRAME_SIZE + length
    if payload_end > end:
        raise BadRecord(offset, f"record of {FRAME_SIZE + length} bytes runs "
                                f"{payload_end - end} bytes past the end of the file")
    if _crc32(data[offset + 8:payload_end]) != crc:
        raise BadRecord(offset, "checksum mismatch")
    (seq,) = _unpack_seq(data, offset + 8)
    return seq, offset + FRAME_SIZE, payload_end


def decode_payload(data: ReadableBuffer, start: int, end: int, offset: int) -> Mutation:
    try:
        return codec.decode(data, start, end)
    except codec.DecodeError as exc:
        raise BadRecord(offset, f"bad payload: {exc}") from None


def iter_records(data: ReadableBuffer, start: int, end: int
                 ) -> Iterator[tuple[int, int, int, int]]:
    """(offset, seq, payload start, payload end) of every record from ``start``; raises
    :class:`BadRecord` at the first one that does not check out."""
    offset = start
    while offset < end:
        seq, payload_start, payload_end = read_record(data, offset, end)
        yield offset, seq, payload_start, payload_end
        offset = payload_end


def next_valid_record(data: ReadableBuffer, start: int, end: int,
                      min_seq: int) -> int | None:
    """The offset of the first record at or after ``start`` that checks out (frame, CRC,
    payload, a sequence number of at least ``min_seq``), or None.

    This is what tells a torn tail from damage in the middle: after a crash only the end of
    the last segment can be incomplete, so a valid record *after* a bad one means the bad one
    is not the tail. Each offset is tried; a wrong length is rejected by the bounds check
    before any CRC is computed.
    """
    for offset in range(start, end - FRAME_SIZE - codec.HEADER_SIZE + 1):
        try:
            seq, payload_start, payload_end = read_record(data, offset, end)
            if seq < min_seq:
                continue
            decode_payload(data, payload_start, payload_end, offset)
        except BadRecord:
            continue
        return offset
    return None
