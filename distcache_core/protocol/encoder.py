"""Reply and request encoding: the table in :mod:`distcache_core.replies`, as Redis writes it.

Each encoder looks the reply's exact type up in a dict (one lookup, and ``bool`` cannot be
mistaken for ``int``); subclasses (an ``IntEnum``, a ``str`` subclass) fall back to their MRO.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import chain
from typing import Any

from distcache_core.replies import (
    NO_REPLY,
    NULL_ARRAY,
    ErrorReply,
    RawReply,
    SetReply,
    VerbatimReply,
)

__all__ = ["encode_error", "encode_request", "encode_resp2", "encode_resp3", "format_double"]

_Encoder = Callable[[Any], bytes]

# Measured (Python 3.11): a cached header + value + CRLF is 93 ns for a 32-byte value against
# 121 ns for b"$%d\r\n%b\r\n" %; past a few KB the single copy of % formatting wins.
#: ``$<length>\r\n`` for the lengths most values have, built once (the server uses it too).
BULK_HEADERS = [b"$%d\r\n" % length for length in range(1024)]
_BULK_HEADERS = BULK_HEADERS
_SIMPLE = {text: b"+%s\r\n" % text.encode() for text in ("OK", "PONG", "QUEUED", "string", "none")}


def _bulk(value: bytes) -> bytes:
    if len(value) < 1024:
        return _BULK_HEADERS[len(value)] + value + b"\r\n"
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _bytes_like(value: bytearray | memoryview) -> bytes:
    return _bulk(bytes(value))


def _integer(value: int) -> bytes:
    return b":%d\r\n" % value


def _no_newlines(text: str) -> bytes:
    """Redis replaces CR and LF in error lines with spaces; a status line gets the same so a
    reply can never break framing. Lone surrogates come from raw bytes (see the parser)."""
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "surrogateescape")


def _simple(value: str) -> bytes:
    cached = _SIMPLE.get(value)
    if cached is not None:
        return cached
    return b"+" + _no_newlines(value) + b"\r\n"


def _error(value: str) -> bytes:
    return b"-" + _no_newlines(value) + b"\r\n"


def format_double(value: float) -> bytes:
    """Format a double as Redis 7.2's ``d2string`` (used by ``addReplyDouble``).

    ``nan``, ``inf``, ``-inf``, ``0``, ``-0``; integers of magnitude up to 2**62 without a
    fraction; otherwise the shortest digits that round-trip, laid out as ``fpconv_dtoa`` does
    (plain up to 7 extra zeros, then ``1e+22`` / ``1.5e-07`` style).
    """
    if value != value:
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if -(2.0**62) <= value <= 2.0**62 and value == int(value):  # Redis double2ll()
        return b"%d" % int(value)
    text = repr(value)
    # repr is plain for 1e-4 <= |x| < 1e16; fpconv only for under 7 decimals or 1e-3 <= |x| < 1e4
    # (so 901689.2339069416 is "9.016892339069416e+5" in Redis 7.2). Where both are plain,
    # they print the same digits: 0.6 us instead of 2 us.
    if "e" not in text and (len(text) - text.index(".") < 8 or 1e-3 <= abs(value) < 1e4):
        return text.encode()
    mantissa, _, exponent_text = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = int(exponent_text or 0) - len(fraction)  # value == int(digits) * 10**exponent
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    ndigits = len(digits)
    decimal_exponent = abs(exponent + ndigits - 1)
    if exponent >= 0 and decimal_exponent < ndigits + 7:
        text = digits + "0" * exponent
    elif exponent < 0 and (exponent > -7 or decimal_exponent < 4):
        point = ndigits + exponent
        if point <= 0:
            text = "0." + "0" * -point + digits
        else:
            text = digits[:point] + "." + digits[point:]
    else:
        text = digits[0] + ("." + digits[1:] if ndigits > 1 else "")
        text += "e" + ("-" if exponent + ndigits - 1 < 0 else "+") + str(decimal_exponent)
    return ("-" + text if value < 0 else text).encode()


def _double2(value: float) -> bytes:
    return _bulk(format_double(value))


def _double3(value: float) -> bytes:
    return b"," + format_double(value) + b"\r\n"


def _items(parts: list[bytes], values: Any, table: dict[type, _Encoder]) -> bytes:
    append = parts.append
    for item in values:
        kind = type(item)
        if kind is bytes:  # MGET-style arrays: no call, and one copy in the final join
            append(_BULK_HEADERS[len(item)] if len(item) < 1024 else b"$%d\r\n" % len(item))
            append(item)
            append(b"\r\n")
        else:
            encoder = table.get(kind)
            append(encoder(item) if encoder is not None else _fallback(item, table))
    return b"".join(parts)


def _array2(value: list[Any] | tuple[Any, ...]) -> bytes:
    return _items([b"*%d\r\n" % len(value)], value, _RESP2)


def _array3(value: list[Any] | tuple[Any, ...]) -> bytes:
    return _items([b"*%d\r\n" % len(value)], value, _RESP3)


def _map_items(value: dict[Any, Any]) -> Any:
    # Redis sends every map key as a bulk string (addReplyBulkCString), never a status line.
    return chain.from_iterable(
        (key.encode("utf-8", "surrogateescape") if type(key) is str else key, item)
        for key, item in value.items())


def _map2(value: dict[Any, Any]) -> bytes:
    return _items([b"*%d\r\n" % (2 * len(value))], _map_items(value), _RESP2)


def _map3(value: dict[Any, Any]) -> bytes:
    return _items([b"%%%d\r\n" % len(value)], _map_items(value), _RESP3)


def _set3(value: SetReply) -> bytes:
    return _items([b"~%d\r\n" % len(value)], value, _RESP3)


def _verbatim3(value: bytes) -> bytes:
    return b"=%d\r\ntxt:%b\r\n" % (len(value) + 4, value)


_RESP2: dict[type, _Encoder] = {
    bytes: _bulk,
    str: _simple,
    int: _integer,
    bool: lambda value: b":1\r\n" if value else b":0\r\n",
    type(None): lambda value: b"$-1\r\n",
    float: _double2,
    list: _array2,
    tuple: _array2,
    dict: _map2,
    type(NULL_ARRAY): lambda value: b"*-1\r\n",
    ErrorReply: _error,
    bytearray: _bytes_like,
    memoryview: _bytes_like,
    SetReply: _array2,
    VerbatimReply: _bytes_like,
    RawReply: bytes,  # a plain bytes copy: the request path tests `type(reply) is bytes`
}
_RESP3: dict[type, _Encoder] = {
    **_RESP2,
    bool: lambda value: b"#t\r\n" if value else b"#f\r\n",
    type(None): lambda value: b"_\r\n",
    float: _double3,
    list: _array3,
    tuple: _array3,
    dict: _map3,
    type(NULL_ARRAY): lambda value: b"_\r\n",
    SetReply: _set3,
    VerbatimReply: _verbatim3,
}


# NO_REPLY writes nothing, so it is only a top-level reply: in an array it would break the count.
_RESP2_TOP: dict[type, _Encoder] = {**_RESP2, type(NO_REPLY): lambda value: b""}
_RESP3_TOP: dict[type, _Encoder] = {**_RESP3, type(NO_REPLY): lambda value: b""}


def _fallback(reply: object, table: dict[type, _Encoder]) -> bytes:
    for klass in type(reply).__mro__:
        encoder = table.get(klass)
        if encoder is not None:
            table[type(reply)] = encoder  # the next reply of this type takes the fast lookup
            return encoder(reply)
    raise TypeError(f"cannot encode a reply of type {type(reply).__name__}")


def encode_resp2(reply: object) -> bytes:
    """Encode a handler's reply for a RESP2 connection (see :mod:`distcache_core.replies`)."""
    try:  # costs nothing when it does not raise (3.11); .get and a test cost ~40 ns more
        encoder = _RESP2_TOP[type(reply)]
    except KeyError:
        return _fallback(reply, _RESP2_TOP)
    return encoder(reply)


def encode_resp3(reply: object) -> bytes:
    """Encode a handler's reply for a connection that sent ``HELLO 3``."""
    try:
        encoder = _RESP3_TOP[type(reply)]
    except KeyError:
        return _fallback(reply, _RESP3_TOP)
    return encoder(reply)


def encode_error(message: str) -> bytes:
    """``-<message>\\r\\n`` with CR and LF replaced by spaces, as Redis sends error lines.

    ``message`` includes the code (``ERR ...``, ``WRONGTYPE ...``); lone surrogates are written
    back as the raw bytes they came from (``surrogateescape``).
    """
    return _error(message)


def encode_request(*args: bytes | str | int | float) -> bytes:
    """Encode a command as a RESP multibulk request, as clients and cluster peers send it.

    ``str`` is UTF-8; ``int`` is decimal; ``float`` is ``repr`` (what redis-py sends).
    """
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, (bytes, bytearray, memoryview)):
            value = bytes(arg)
        elif isinstance(arg, str):
            value = arg.encode()
        elif isinstance(arg, bool):
            raise TypeError("a bool is not a request argument; send b'1' or b'0'")
        elif isinstance(arg, int):
            value = b"%d" % arg
        elif isinstance(arg, float):
            value = repr(arg).encode()
        else:
            raise TypeError(f"cannot encode a request argument of type {type(arg).__name__}")
        parts.append(b"$%d\r\n%b\r\n" % (len(value), value))
    return b"".join(parts)
