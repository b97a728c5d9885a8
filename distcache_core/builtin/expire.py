"""Expiry commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT), TTL PTTL EXPIRETIME
PEXPIRETIME, PERSIST.

Behaviour and error lines follow Redis 7.0 (``src/expire.c``). The handlers are registered by
:mod:`.keys` (this module is not a plugin of its own), so they appear in the ``generic`` group
as in Redis.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import CommandError
from .arguments import LLONG_MAX, MAX_SECONDS, invalid_expire_time, now_ms, parse_int

_NX: Final = 1
_XX: Final = 2
_GT: Final = 4
_LT: Final = 8
_CONDITIONS: Final = {b"nx": _NX, b"xx": _XX, b"gt": _GT, b"lt": _LT}


def _parse_conditions(argv: list[bytes]) -> int:
    """NX XX GT LT after the time (``parseExtendedExpireArgumentsOrReply``). A repeated
    condition is allowed; the compatibility checks run after every option is read."""
    flags = 0
    for raw in argv[3:]:
        bit = _CONDITIONS.get(raw.lower())
        if bit is None:
            # Redis prints the option as the client spelt it (a C string: up to any NUL).
            text = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            raise CommandError(f"ERR Unsupported option {text}")
        flags |= bit
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    return flags


def _expire_generic(conn: Any, argv: list[bytes], command: str, in_seconds: bool,
                    relative: bool) -> int:
    flags = _parse_conditions(argv) if len(argv) > 3 else 0
    when = parse_int(argv[2])
    # Negative times are allowed (they delete the key); only overflow is an error.
    if in_seconds:
        if not -MAX_SECONDS <= when <= MAX_SECONDS:
            raise invalid_expire_time(command)
        when *= 1000
    if relative:
        base = now_ms()
        if when > LLONG_MAX - base:
            raise invalid_expire_time(command)
        when += base
    engine = conn.engine
    key = argv[1]
    if flags:
        try:
            current = engine.get_expire_at(key)
        except KeyError:
            return 0
        # No expiry counts as an infinite one: GT never beats it, LT always does.
        if current is None:
            if flags & (_XX | _GT):
                return 0
        elif flags & _NX or (flags & _GT and when <= current) or (flags & _LT and when >= current):
            return 0
    # A time already past deletes the key and still answers 1 (the engine does the delete).
    return 1 if engine.expire_at(key, when) else 0


def expire(conn: Any, argv: list[bytes]) -> int:
    return _expire_generic(conn, argv, "expire", in_seconds=True, relative=True)


def pexpire(conn: Any, argv: list[bytes]) -> int:
    return _expire_generic(conn, argv, "pexpire", in_seconds=False, relative=True)


def expireat(conn: Any, argv: list[bytes]) -> int:
    return _expire_generic(conn, argv, "expireat", in_seconds=True, relative=False)


def pexpireat(conn: Any, argv: list[bytes]) -> int:
    return _expire_generic(conn, argv, "pexpireat", in_seconds=False, relative=False)


def pttl(conn: Any, argv: list[bytes]) -> int:
    return conn.engine.ttl_ms(argv[1])


def ttl(conn: Any, argv: list[bytes]) -> int:
    remaining_ms = conn.engine.ttl_ms(argv[1])
    if remaining_ms < 0:
        return remaining_ms  # -2 missing, -1 no expiry
    # Rounded to the nearest second, as ttlGenericCommand does.
    return (remaining_ms + 500) // 1000


def _expire_time(conn: Any, key: bytes) -> int:
    try:
        expire_at_ms = conn.engine.get_expire_at(key)
    except KeyError:
        return -2
    return -1 if expire_at_ms is None else expire_at_ms


def pexpiretime(conn: Any, argv: list[bytes]) -> int:
    return _expire_time(conn, argv[1])


def expiretime(conn: Any, argv: list[bytes]) -> int:
    expire_at_ms = _expire_time(conn, argv[1])
    return expire_at_ms if expire_at_ms < 0 else expire_at_ms // 1000


def persist(conn: Any, argv: list[bytes]) -> int:
    return 1 if conn.engine.persist(argv[1]) else 0


_ONE_KEY: Final = (1, 1, 1)  # (first_key, last_key, key_step)
_WRITE_FAST: Final = frozenset({"write", "fast"})
_READ_FAST: Final = frozenset({"readonly", "fast"})

#: (name, handler, arity, flags, key positions, summary) for :mod:`.keys` to register.
COMMANDS: Final = (
    ("expire", expire, -3, _WRITE_FAST, _ONE_KEY,
     "Sets the expiration time of a key in seconds."),
    ("pexpire", pexpire, -3, _WRITE_FAST, _ONE_KEY,
     "Sets the expiration time of a key in milliseconds."),
    ("expireat", expireat, -3, _WRITE_FAST, _ONE_KEY,
     "Sets the expiration time of a key to a Unix timestamp."),
    ("pexpireat", pexpireat, -3, _WRITE_FAST, _ONE_KEY,
     "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    ("ttl", ttl, 2, _READ_FAST, _ONE_KEY, "Returns the expiration time in seconds of a key."),
    ("pttl", pttl, 2, _READ_FAST, _ONE_KEY,
     "Returns the expiration time in milliseconds of a key."),
    ("expiretime", expiretime, 2, _READ_FAST, _ONE_KEY,
     "Returns the expiration time of a key as a Unix timestamp."),
    ("pexpiretime", pexpiretime, 2, _READ_FAST, _ONE_KEY,
     "Returns the expiration time of a key as a Unix milliseconds timestamp."),
    ("persist", persist, 2, _WRITE_FAST, _ONE_KEY, "Removes the expiration time of a key."),
)
