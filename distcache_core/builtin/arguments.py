"""Numeric arguments parsed and formatted exactly as Redis does (``src/util.c``).

Clients and test suites compare error replies byte for byte, so the accepted spellings matter
as much as the values: Redis's ``string2ll`` refuses ``+1``, ``01``, ``-0``, spaces and
underscores, all of which Python's ``int()`` accepts.
"""

from __future__ import annotations

import decimal
import time
from decimal import Decimal
from fractions import Fraction
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
#: Decimal exponent bounds of an x86 80-bit ``long double`` (the exact check is
#: :func:`round_long_double`'s; these only spare building a huge fraction).
_LDBL_MAX_EXP10 = 4932
_LDBL_MIN_EXP10 = -4951


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


#: A value of C's 80-bit ``long double`` (x87 extended precision), exactly: a ``Fraction``,
#: or a ``float`` infinity (which strtold accepts as ``inf``).
LongDouble = Fraction | float

# x87 extended precision: a 64-bit significand, normal numbers from 2**-16382, overflow at
# 2**16384; subnormals go down to 2**-16445.
_LD_SIGNIFICAND_BITS = 64
_LD_MIN_EXPONENT = -16382
_LD_OVERFLOW = Fraction(2) ** 16384


def round_long_double(exact: Fraction) -> Fraction | None:
    """``exact`` rounded to the nearest ``long double`` (ties to even, as strtold and the x87
    FPU round), or None when it overflows."""
    if not exact:
        return exact
    magnitude = abs(exact)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1  # now 2**exponent <= magnitude < 2**(exponent + 1)
    quantum = Fraction(2) ** (max(exponent, _LD_MIN_EXPONENT) - _LD_SIGNIFICAND_BITS + 1)
    rounded = round(magnitude / quantum) * quantum  # round() of a Fraction: ties to even
    if rounded >= _LD_OVERFLOW:
        return None
    return rounded if exact > 0 else -rounded


def parse_long_double(raw: bytes) -> LongDouble:
    """A float argument or stored value as ``string2ld`` reads it into a ``long double``,
    else ``NOT_FLOAT`` (also for a value that overflows or underflows to zero, as strtold
    reports ERANGE for both)."""
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
    if value.is_infinite():
        return float(value)
    if not value:
        return Fraction(0)
    # Far outside the range, skip building a huge exact fraction: it cannot round back in.
    if not _LDBL_MIN_EXP10 - 2 <= value.adjusted() <= _LDBL_MAX_EXP10 + 1:
        raise CommandError(NOT_FLOAT)
    rounded = round_long_double(Fraction(value))
    if not rounded:  # overflow (None) or underflow to zero: ERANGE
        raise CommandError(NOT_FLOAT)
    return rounded


def _parse_hex_float(raw: bytes) -> Decimal:
    # strtold also reads C99 hex floats ("0x1.8p3"); Decimal does not.
    unsigned = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if unsigned[:2].lower() == b"0x":
        try:
            return Decimal(float.fromhex(raw.decode("ascii")))
        except (ValueError, OverflowError):
            pass
    raise CommandError(NOT_FLOAT)


def add_long_doubles(value: LongDouble, increment: LongDouble) -> bytes:
    """``value + increment`` as the x87 FPU adds them, formatted like Redis's INCRBYFLOAT
    reply, or the NaN/Infinity error Redis gives when the sum is not finite.

    Exact emulation matters: Redis stores the printed sum, so ``1.5 + 0.1 - 3 + 1e3`` is
    ``998.59999999999999998`` there, and every later increment starts from that text.
    """
    if isinstance(value, float) or isinstance(increment, float):
        raise CommandError("ERR increment would produce NaN or Infinity")
    total = round_long_double(value + increment)
    if total is None:
        raise CommandError("ERR increment would produce NaN or Infinity")
    return format_human_float(total)


def format_human_float(value: Fraction) -> bytes:
    """Redis's ``ld2string(..., LD_STR_HUMAN)``: ``%.17Lf`` (the exact binary value rounded
    to 17 decimals, ties to even), trailing zeros and a bare ``.`` stripped, ``-0`` printed as
    ``0``. Fixed notation always: ``3.0e3`` is ``3000``."""
    scaled = round(abs(value) * 10**17)
    whole, fraction = divmod(scaled, 10**17)
    # Through Decimal: str() of an int over 4300 digits is refused (a long double reaches 4933).
    text = f"{Decimal(whole):f}.{fraction:017d}".rstrip("0").rstrip(".")
    if value < 0 and text != "0":
        text = "-" + text
    return text.encode()


def invalid_expire_time(command: str) -> CommandError:
    """``addReplyErrorExpireTime``: names the command as the client would type it, lowercase."""
    return CommandError(f"ERR invalid expire time in '{command}' command")
