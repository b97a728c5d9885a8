"""The WAL's bytes without any file: frames, headers, the payload codec, damage detection."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distcache_core.mutations import Cause, Mutation, Op, ValueType
from distcache_core.persistence import codec
from distcache_plugins.wal.format import (
    FRAME_SIZE,
    KIND_BASE,
    KIND_LOG,
    SEGMENT_HEADER_SIZE,
    BadRecord,
    HeaderError,
    append_fields,
    append_mutation,
    append_set,
    iter_records,
    next_valid_record,
    parse_segment_header,
    read_record,
    segment_header,
)
from distcache_plugins.wal.writer import GroupCommitWriter

keys = st.binary(max_size=64)
values = st.binary(max_size=300)
expiries = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    op = draw(st.sampled_from(list(Op)))
    mutation = Mutation(op, draw(st.integers(0, 65535)), draw(keys),
                        draw(values) if op is Op.SET else None,
                        draw(expiries) if op in (Op.SET, Op.EXPIRE) else None,
                        draw(st.sampled_from(list(Cause))),
                        other_db=draw(st.integers(0, 65535)) if op is Op.SWAPDB else 0)
    mutation.seq = draw(st.integers(1, 2**64 - 1))
    mutation.version = draw(st.integers(0, 2**64 - 1))
    return mutation


@given(mutations())
def test_codec_round_trip(mutation: Mutation) -> None:
    decoded = codec.decode(codec.encode(mutation))
    decoded.seq = mutation.seq
    assert decoded == mutation


@given(st.lists(mutations(), max_size=20))
def test_frames_carry_the_codec_payload_and_the_sequence_number(batch: list[Mutation]) -> None:
    buffer = bytearray()
    for mutation in batch:
        append_mutation(buffer, mutation)
    found = list(iter_records(buffer, 0, len(buffer)))
    assert len(found) == len(batch)
    for (offset, seq, start, end), mutation in zip(found, batch, strict=True):
        assert seq == mutation.seq
        assert bytes(buffer[start:end]) == codec.encode(mutation)
        assert start - offset == FRAME_SIZE


@given(st.lists(mutations().filter(lambda m: m.op is not Op.SWAPDB), max_size=20))
def test_a_change_s_fields_frame_as_its_mutation_does(batch: list[Mutation]) -> None:
    """The stream's fast form (no Mutation object) writes the same bytes, for what it carries:
    every change but SWAPDB, with replication version 0. The writer's inlined copy too."""
    expected, fields = bytearray(), bytearray()
    writer = GroupCommitWriter(None, "always", lambda error: None)  # type: ignore[arg-type]
    for mutation in batch:
        mutation.version = 0
        append_mutation(expected, mutation)
        append_fields(fields, mutation.seq, int(mutation.op), mutation.db, mutation.key,
                      mutation.value, mutation.expire_at_ms, int(mutation.cause))
        writer.record_fields(mutation.seq, int(mutation.op), mutation.db, mutation.key,
                             mutation.value, mutation.expire_at_ms, int(mutation.cause))
    assert fields == expected
    assert writer._buffer == expected
    assert writer.buffered_bytes == len(expected)


def test_set_frames_of_a_walk_decode_as_set_mutations() -> None:
    buffer = bytearray()
    append_set(buffer, 3, b"k", b"v", None)
    append_set(buffer, 0, b"", b"", 1234)
    (_, seq1, s1, e1), (_, seq2, s2, e2) = iter_records(buffer, 0, len(buffer))
    assert seq1 == seq2 == 0
    first, second = codec.decode(buffer, s1, e1), codec.decode(buffer, s2, e2)
    assert (first.op, first.db, first.key, first.value, first.expire_at_ms) == (
        Op.SET, 3, b"k", b"v", None)
    assert (second.key, second.value, second.expire_at_ms, second.value_type) == (
        b"", b"", 1234, ValueType.STRING)


def test_segment_header() -> None:
    header = segment_header(KIND_LOG, 42)
    assert len(header) == SEGMENT_HEADER_SIZE
    assert parse_segment_header(header) == (KIND_LOG, 42, 0)
    assert parse_segment_header(segment_header(KIND_BASE, 7, 9)) == (KIND_BASE, 7, 9)
    with pytest.raises(HeaderError, match="shorter"):
        parse_segment_header(header[:-1])
    with pytest.raises(HeaderError, match="magic"):
        parse_segment_header(b"X" + header[1:])
    damaged = bytearray(header)
    damaged[20] ^= 1
    with pytest.raises(HeaderError, match="checksum"):
        parse_segment_header(bytes(damaged))


def _log(count: int) -> tuple[bytearray, list[int]]:
    buffer = bytearray()
    offsets = []
    for seq in range(1, count + 1):
        offsets.append(len(buffer))
        mutation = Mutation(Op.SET, 0, b"key%d" % seq, b"value%d" % seq)
        mutation.seq = seq
        append_mutation(buffer, mutation)
    return buffer, offsets


def test_every_single_byte_flip_is_detected() -> None:
    buffer, offsets = _log(3)
    for position in range(len(buffer)):
        for bit in (0x01, 0x80):
            damaged = bytearray(buffer)
            damaged[position] ^= bit
            with pytest.raises(BadRecord):
                list(iter_records(damaged, 0, len(damaged)))


def test_a_huge_length_is_rejected_before_anything_is_read() -> None:
    buffer, _ = _log(1)
    buffer[0:4] = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(BadRecord, match="impossible payload length"):
        read_record(buffer, 0, len(buffer))


def test_crc_covers_the_sequence_number() -> None:
    buffer, _ = _log(1)
    length = int.from_bytes(buffer[0:4], "little")
    assert int.from_bytes(buffer[4:8], "little") == zlib.crc32(buffer[8:16 + length])


def test_next_valid_record_finds_what_follows_damage() -> None:
    buffer, offsets = _log(5)
    damaged = bytearray(buffer)
    damaged[offsets[2] + 20] ^= 0xFF
    assert next_valid_record(damaged, offsets[2] + 1, len(damaged), 3) == offsets[3]
    # Nothing valid after the damage in the last record: a torn tail.
    damaged = bytearray(buffer)
    damaged[offsets[4] + 20] ^= 0xFF
    assert next_valid_record(damaged, offsets[4] + 1, len(damaged), 5) is None
    # A record with a sequence number not above the last good one does not count.
    assert next_valid_record(buffer, 0, len(buffer), 6) is None


def test_unknown_payload_versions_and_ops_are_refused() -> None:
    payload = bytearray(codec.encode(Mutation(Op.DEL, 0, b"k")))
    payload[0] = 2
    with pytest.raises(codec.DecodeError, match="version 2"):
        codec.decode(payload)
    payload[0], payload[1] = 1, 99
    with pytest.raises(codec.DecodeError, match="unknown op 99"):
        codec.decode(payload)
