"""Signed 64-bit integers stored as strings, parsed the way Redis parses them."""

from __future__ import annotations

from distcache_core.errors import NotIntegerError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Redis ``string2ll`` rejects strings of LONG_STR_SIZE (21) bytes or more.
_MAX_LENGTH = 20


def parse_int64(value: bytes) -> int:
    """Parse ``value`` as Redis ``string2ll`` does (``src/util.c``): an optional ``-`` then
    digits without a leading zero, or exactly ``0``; no ``+``, no spaces, no ``-0``; within
    signed 64 bits. Anything else raises :class:`NotIntegerError`."""
    if len(value) > _MAX_LENGTH:
        raise NotIntegerError()
    try:
        number = int(value)
    except ValueError:
        raise NotIntegerError() from None
    # int() also takes " 1", "+1", "01", "-0" and "1_0"; string2ll takes only the canonical
    # spelling, which is exactly what b"%d" gives back.
    if b"%d" % number != value or not INT64_MIN <= number <= INT64_MAX:
        raise NotIntegerError()
    return number
