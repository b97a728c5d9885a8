"""Numeric arguments parsed and formatted exactly as Redis does (``src/util.c``).

Clients and test suites compare error replies byte for byte, so the accepted spellings matter
as much as the values: Redis's ``string2ll`` refuses ``+1``, ``01``, ``-0``, spaces and
underscores, all of which Python's ``int()`` accepts.
"""

from __future__ import annotations

import decimal
import time
from decimal import Decimal
from typing import Final

from ..errors import NOT_FLOAT, CommandError, NotIntegerError

LLONG_MAX: Final = (1 << 63) - 1
LLONG_MIN: Final = -(1 << 63)
ULONG_MAX: Final = (1 << 64) - 1
#: ``LLONG_MAX / 1000`` in C (truncating), the largest number of seconds that fits in ms.
MAX_SECONDS: Final = LLONG_MAX // 1000
#: Redis's default ``proto-max-bulk-len``: no string value may grow past it.
MAX_STRING_BYTES: Final = 512 * 1024 * 1024
STRING_TOO_LONG: Final = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

#: ``MAX_LONG_DOUBLE_CHARS`` in Redis: longer float arguments are refused outright.
_MAX_FLOAT_CHARS = 5 * 1024
_SPACE = frozenset(b" \t\n\v\f\r")
#: Decimal exponent bounds of an x86 80-bit ``long double``; beyond them ``strtold`` reports
#: ERANGE and Redis refuses the value as not a float.
_LDBL_MAX_EXP10 = 4932
_LDBL_MIN_EXP10 = -4951
#: 50 significant digits: more than the ~19 a ``long double`` holds, so sums are at least as
#: exact as Redis's, and a quantize to 17 places never needs more digits than this.
_FLOAT_CONTEXT = decimal.Context(prec=50, rounding=decimal.ROUND_HALF_EVEN,
                                 Emax=999_999, Emin=-999_999, traps=[decimal.InvalidOperation])
_SEVENTEEN_PLACES = Decimal(1).scaleb(-17)


def now_ms() -> int:
    """Wall-clock Unix time in milliseconds: expiry times are absolute so they survive a
    restart, so they must come from the wall clock, not a monotonic one."""
    return time.time_ns() // 1_000_000


def parse_int(raw: bytes) -> int:
    """A signed 64-bit integer with ``string2ll``'s rules, else ``NOT_INTEGER``.

    The canonical spelling only: optional ``-``, no leading zeros, no ``-0``.
    """
    # Cheap guard first: int() of thousands of digits is slow, and 20 covers "-" + 19 digits.
    if 0 < len(raw) <= 20:
        if raw.isdigit():
            if raw[0] != 0x30 or len(raw) == 1:
                value = int(raw)
                if value <= LLONG_MAX:
                    return value
        elif raw[0] == 0x2D and raw[1:].isdigit() and raw[1] != 0x30:
            value = int(raw)
            if value >= LLONG_MIN:
                return value
    raise NotIntegerError()


def parse_scan_cursor(raw: bytes) -> int:
    """A SCAN cursor as ``strtoul`` reads it (``parseScanCursorOrReply``): an optional sign
    then decimal digits, or nothing at all (which is 0); a negative number wraps modulo 2**64."""
    digits = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not raw or (digits.isdigit() and len(digits) <= 20):
        value = int(digits) if raw else 0
        if value <= ULONG_MAX:
            return (-value) & ULONG_MAX if raw[:1] == b"-" else value
    raise CommandError("ERR invalid cursor")


def parse_long_double(raw: bytes) -> Decimal:
    """A float argument or stored value with ``string2ld``'s rules, else ``NOT_FLOAT``.

    Kept as an exact ``Decimal`` of what the client typed, so INCRBYFLOAT sums come out as
    Redis prints them from its 80-bit ``long double`` (``0.1 + 0.2`` is ``0.3``, which binary
    doubles cannot reproduce).
    """
    if (not raw or len(raw) >= _MAX_FLOAT_CHARS or raw[0] in _SPACE or raw[-1] in _SPACE
            or b"_" in raw):
        # strtold stops at spaces and knows no digit separators; Decimal() allows both.
        raise CommandError(NOT_FLOAT)
    try:
        text = raw.decode("ascii")
        value = Decimal(text)
    except (UnicodeDecodeError, decimal.InvalidOperation):
        value = _parse_hex_float(raw)
    if value.is_nan():
        raise CommandError(NOT_FLOAT)
    if value and value.is_finite() and not (
            _LDBL_MIN_EXP10 <= value.adjusted() <= _LDBL_MAX_EXP10):
        raise CommandError(NOT_FLOAT)
    return value


def _parse_hex_float(raw: bytes) -> Decimal:
    # strtold also reads C99 hex floats ("0x1.8p3"); Decimal does not.
    unsigned = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if unsigned[:2].lower() == b"0x":
        try:
            return Decimal(float.fromhex(raw.decode("ascii")))
        except (ValueError, OverflowError):
            pass
    raise CommandError(NOT_FLOAT)


def add_long_doubles(value: Decimal, increment: Decimal) -> bytes:
    """``value + increment`` formatted like Redis's INCRBYFLOAT reply, or the NaN/Infinity
    error Redis gives when the sum is not finite."""
    if not (value.is_finite() and increment.is_finite()):
        raise CommandError("ERR increment would produce NaN or Infinity")
    total = _FLOAT_CONTEXT.add(value, increment)
    if total and total.adjusted() > _LDBL_MAX_EXP10:
        raise CommandError("ERR increment would produce NaN or Infinity")
    return format_human_float(total)


def format_human_float(value: Decimal) -> bytes:
    """Redis's ``ld2string(..., LD_STR_HUMAN)``: ``%.17Lf``, trailing zeros and a bare
    ``.`` stripped, ``-0`` printed as ``0``. Fixed notation always: ``3.0e3`` is ``3000``."""
    if value.as_tuple().exponent < -17:  # type: ignore[operator]
        value = value.quantize(_SEVENTEEN_PLACES, context=_FLOAT_CONTEXT)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()


def invalid_expire_time(command: str) -> CommandError:
    """``addReplyErrorExpireTime``: names the command as the client would type it, lowercase."""
    return CommandError(f"ERR invalid expire time in '{command}' command")
