"""Bit commands on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP, and LCS.

Behaviour, reply types and error lines follow Redis 7.0 (``src/bitops.c``, ``lcsCommand`` in
``src/t_string.c``); the order in which arguments and keys are checked is Redis's too, since it
decides which error a client sees. Values are handled as Python integers (``int.from_bytes``)
so that BITCOUNT and BITOP over large strings run in C, not byte by byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..command_table import Command
from ..errors import SYNTAX, CommandError
from ..hookspecs import hookimpl
from .arguments import MAX_STRING_BYTES, parse_int
from .lcs import lcs_command

BIT_OFFSET_ERROR: Final = "ERR bit offset is not an integer or out of range"
BIT_VALUE_ERROR: Final = "ERR bit is not an integer or out of range"


def parse_bit_offset(raw: bytes) -> int:
    """``getBitOffsetFromArgument``: a non-negative integer whose byte index fits in
    ``proto-max-bulk-len`` (512 MiB)."""
    try:
        offset = parse_int(raw)
    except CommandError:
        raise CommandError(BIT_OFFSET_ERROR) from None
    if offset < 0 or offset >> 3 >= MAX_STRING_BYTES:
        raise CommandError(BIT_OFFSET_ERROR)
    return offset


def setbit(conn: Any, argv: list[bytes]) -> int:
    offset = parse_bit_offset(argv[2])
    try:
        on = parse_int(argv[3])
    except CommandError:
        raise CommandError(BIT_VALUE_ERROR) from None
    if on & ~1:
        raise CommandError(BIT_VALUE_ERROR)
    engine = conn.engine
    key = argv[1]
    old = engine.peek(key)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    if old is None:
        value = bytearray(byte + 1)
        previous = 0
    else:
        previous = old[byte] >> shift & 1 if byte < len(old) else 0
        if previous == on and byte < len(old):
            return previous  # nothing changes: no write, no mutation (Redis's dirty check)
        value = bytearray(old)
        if byte >= len(value):
            value.extend(bytes(byte + 1 - len(value)))
    value[byte] = (value[byte] & ~(1 << shift)) | (on << shift)
    # The value is modified in place in Redis, so an existing key keeps its TTL.
    engine.set(key, bytes(value), keep_ttl=old is not None)
    return previous


def getbit(conn: Any, argv: list[bytes]) -> int:
    offset = parse_bit_offset(argv[2])
    value = conn.engine.get(argv[1])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return value[byte] >> (7 - (offset & 7)) & 1


def _bit_or_byte(raw: bytes) -> bool:
    unit = raw.lower()
    if unit == b"bit":
        return True
    if unit == b"byte":
        return False
    raise CommandError(SYNTAX)


def _clamp_range(start: int, end: int, total: int) -> tuple[int, int]:
    """Negative indexes count from the end; both are clamped into ``[0, total - 1]`` (the
    range may come out empty: ``start > end``)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    return start, end


def bitcount(conn: Any, argv: list[bytes]) -> int:
    argc = len(argv)
    # Redis looks the key up before it reads the range: a missing key is 0 whatever follows.
    value = conn.engine.get(argv[1])
    if value is None:
        return 0
    if argc == 2:
        return int.from_bytes(value, "big").bit_count()
    if argc not in (4, 5):
        raise CommandError(SYNTAX)
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    if start < 0 and end < 0 and start > end:
        return 0
    is_bit = _bit_or_byte(argv[4]) if argc == 5 else False
    total = len(value) * 8 if is_bit else len(value)
    start, end = _clamp_range(start, end, total)
    if start > end:
        return 0
    if not is_bit:
        return int.from_bytes(value[start:end + 1], "big").bit_count()
    chunk = int.from_bytes(value[start >> 3:(end >> 3) + 1], "big")
    # Drop the bits before ``start`` and after ``end`` in the edge bytes.
    chunk >>= 7 - (end & 7)
    chunk &= (1 << (end - start + 1)) - 1
    return chunk.bit_count()


def _first_bit(data: bytes | bytearray, bit: int) -> int:
    """``redisBitpos``: the position of the first ``bit`` in ``data``; when there is none, -1
    when looking for a 1, or the first position past the end when looking for a 0."""
    skip = b"\x00" if bit else b"\xff"
    rest = bytes(data).lstrip(skip)
    if not rest:
        return -1 if bit else len(data) * 8
    byte = rest[0] if bit else rest[0] ^ 0xFF
    return (len(data) - len(rest)) * 8 + 8 - byte.bit_length()


def bitpos(conn: Any, argv: list[bytes]) -> int:
    argc = len(argv)
    bit = parse_int(argv[2])
    if bit not in (0, 1):
        raise CommandError("ERR The bit argument must be 1 or 0.")
    # A missing key is an endless run of zeros.
    value = conn.engine.get(argv[1])
    if value is None:
        return -1 if bit else 0
    length = len(value)
    end_given = False
    first_mask = last_mask = 0
    if argc in (4, 5, 6):
        start = parse_int(argv[3])
        is_bit = _bit_or_byte(argv[5]) if argc == 6 else False
        if argc >= 5:
            end = parse_int(argv[4])
            end_given = True
        else:
            end = (length << 3) + 7 if is_bit else length - 1
        total = length << 3 if is_bit else length
        start, end = _clamp_range(start, end, total)
        if is_bit and start <= end:
            # Bits of the edge bytes outside the range (bitposCommand's negative masks).
            first_mask = ~((1 << (8 - (start & 7))) - 1) & 0xFF
            last_mask = (1 << (7 - (end & 7))) - 1
            start >>= 3
            end >>= 3
    elif argc == 3:
        start, end = 0, length - 1
    else:
        raise CommandError(SYNTAX)
    if start > end:
        return -1
    # The steps below mirror bitposCommand, including which byte count the final
    # "explicit end, looking for 0" check is made against.
    count = end - start + 1
    pos = -1
    done = False
    if first_mask:
        edge = value[start] & ~first_mask if bit else value[start] | first_mask
        if last_mask and count == 1:
            edge = edge & ~last_mask if bit else edge | last_mask
        pos = _first_bit(bytes((edge & 0xFF,)), bit)
        if count == 1 or (pos != -1 and pos != 8):
            done = True
        else:
            start += 1
            count -= 1
    if not done:
        middle = count - (1 if last_mask else 0)
        if middle > 0:
            pos = _first_bit(value[start:start + middle], bit)
            if count == middle or (pos != -1 and pos != middle << 3):
                done = True
            else:
                start += middle
                count -= middle
        if not done:
            edge = value[end] & ~last_mask if bit else value[end] | last_mask
            pos = _first_bit(bytes((edge & 0xFF,)), bit)
    if end_given and bit == 0 and pos == count << 3:
        return -1
    if pos != -1:
        pos += start << 3
    return pos


_BITOPS: Final = {b"and": "and", b"or": "or", b"xor": "xor", b"not": "not"}


def bitop(conn: Any, argv: list[bytes]) -> int:
    op = _BITOPS.get(argv[1].lower())
    if op is None:
        raise CommandError(SYNTAX)
    if op == "not" and len(argv) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    engine = conn.engine
    sources = [engine.get(key) or b"" for key in argv[3:]]
    destination = argv[2]
    size = max(map(len, sources))
    if not size:
        engine.delete(destination)
        return 0
    # Shorter strings are padded with zero bytes at the end: as big-endian integers, that is
    # a shift left by the missing bits.
    numbers = [int.from_bytes(value, "big") << ((size - len(value)) * 8) for value in sources]
    result = numbers[0]
    if op == "not":
        result = ~result & ((1 << (size * 8)) - 1)
    elif op == "and":
        for number in numbers[1:]:
            result &= number
    elif op == "or":
        for number in numbers[1:]:
            result |= number
    else:
        for number in numbers[1:]:
            result ^= number
    engine.set(destination, result.to_bytes(size, "big"))
    return size


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    one_key = (1, 1, 1)  # (first_key, last_key, key_step) as COMMAND INFO reports them
    for name, handler, arity, flags, (first, last, step), group, merge, summary in (
        ("setbit", setbit, 4, {"write", "denyoom"}, one_key, "bitmap", "",
         "Sets or clears the bit at offset in the string value stored at key"),
        ("getbit", getbit, 3, {"readonly", "fast"}, one_key, "bitmap", "",
         "Returns the bit value at offset in the string value stored at key"),
        ("bitcount", bitcount, -2, {"readonly"}, one_key, "bitmap", "",
         "Count set bits in a string"),
        ("bitpos", bitpos, -3, {"readonly"}, one_key, "bitmap", "",
         "Find first bit set or clear in a string"),
        ("bitop", bitop, -4, {"write", "denyoom"}, (2, -1, 1), "bitmap", "same_owner",
         "Perform bitwise operations between strings"),
        ("lcs", lcs_command, -3, {"readonly"}, (1, 2, 1), "string", "same_owner",
         "Find longest common substring"),
    ):
        register(Command(name=name, handler=handler, arity=arity, flags=flags, group=group,
                         first_key=first, last_key=last, key_step=step, merge=merge,
                         summary=summary,
                         key_flags=("OW update", "RO access") if name == "bitop" else ()))
