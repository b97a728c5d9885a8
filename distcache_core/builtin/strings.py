"""String commands: GET SET and their variants, MGET MSET, APPEND, ranges, counters.

Behaviour, reply types and error lines follow Redis 7.0 (``src/t_string.c``). Handlers get the
connection and the full argument vector (``argv[0]`` is the command name); the server has
already checked the arity, so handlers check only option syntax and values.

GET, plain ``SET k v``, MGET and INCR are the hot paths: each is one engine call with no option
parsing and nothing allocated beyond the reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..command_table import Command
from ..errors import SYNTAX, CommandError
from ..hookspecs import hookimpl
from ..replies import OK
from .arguments import (
    LLONG_MAX,
    LLONG_MIN,
    MAX_SECONDS,
    MAX_STRING_BYTES,
    STRING_TOO_LONG,
    add_long_doubles,
    invalid_expire_time,
    now_ms,
    parse_int,
    parse_long_double,
)

# Option flags of SET and GETEX, as in Redis's parseExtendedStringArgumentsOrReply.
_NX: Final = 1
_XX: Final = 2
_GET: Final = 4
_KEEPTTL: Final = 8
_PERSIST: Final = 16
_EX: Final = 32
_PX: Final = 64
_EXAT: Final = 128
_PXAT: Final = 256
_ANY_EXPIRE: Final = _EX | _PX | _EXAT | _PXAT
_RELATIVE: Final = _EX | _PX
_IN_SECONDS: Final = _EX | _EXAT

#: Expire options: each excludes the other three and KEEPTTL/PERSIST, but not itself (Redis
#: lets ``EX 1 EX 2`` through; the last one wins).
_EXPIRE_OPTIONS: Final = {b"EX": _EX, b"PX": _PX, b"EXAT": _EXAT, b"PXAT": _PXAT}


def _parse_extended(argv: list[bytes], start: int, for_set: bool) -> tuple[int, bytes | None]:
    """Options of SET (``for_set``) or GETEX: (flags, raw expire argument or None).

    Any conflict (NX with XX, two kinds of expire, KEEPTTL or PERSIST with an expire, an option
    the command does not take, a missing value) is ``ERR syntax error``, as in Redis 7.0.
    """
    flags = 0
    expire: bytes | None = None
    i = start
    argc = len(argv)
    while i < argc:
        option = argv[i].upper()
        bit = _EXPIRE_OPTIONS.get(option)
        if bit is not None:
            if i + 1 >= argc or flags & (_KEEPTTL | _PERSIST | (_ANY_EXPIRE & ~bit)):
                raise CommandError(SYNTAX)
            flags |= bit
            expire = argv[i + 1]
            i += 2
            continue
        if for_set and option == b"NX" and not flags & _XX:
            flags |= _NX
        elif for_set and option == b"XX" and not flags & _NX:
            flags |= _XX
        elif for_set and option == b"GET":
            flags |= _GET
        elif for_set and option == b"KEEPTTL" and not flags & _ANY_EXPIRE:
            flags |= _KEEPTTL
        elif not for_set and option == b"PERSIST" and not flags & _ANY_EXPIRE:
            flags |= _PERSIST
        else:
            raise CommandError(SYNTAX)
        i += 1
    return flags, expire


def _expire_at_ms(raw: bytes, flags: int, command: str) -> int:
    """The absolute expiry in Unix ms for an EX/PX/EXAT/PXAT argument
    (``getExpireMillisecondsOrReply``): positive, and no overflow of a signed 64-bit ms."""
    value = parse_int(raw)
    in_seconds = flags & _IN_SECONDS
    if value <= 0 or (in_seconds and value > MAX_SECONDS):
        raise invalid_expire_time(command)
    if in_seconds:
        value *= 1000
    if flags & _RELATIVE:
        value += now_ms()
        if value > LLONG_MAX:  # C wraps to a negative number here and reports it
            raise invalid_expire_time(command)
    return value


# --- GET / SET family -------------------------------------------------------------------------


def get(conn: Any, argv: list[bytes]) -> bytes | None:
    return conn.engine.get(argv[1])


def set_(conn: Any, argv: list[bytes]) -> Any:
    if len(argv) == 3:
        conn.engine.set(argv[1], argv[2])
        return OK
    return _set_with_options(conn, argv)


def _set_with_options(conn: Any, argv: list[bytes]) -> Any:
    flags, raw_expire = _parse_extended(argv, 3, for_set=True)
    expire_at = None if raw_expire is None else _expire_at_ms(raw_expire, flags, "set")
    engine = conn.engine
    key = argv[1]
    # SET ... GET replies with the old value whether or not NX/XX let the write happen.
    if flags & _GET:
        old = engine.peek(key)
        found = old is not None
    else:
        old = None
        found = bool(flags & (_NX | _XX)) and engine.exists(key)
    if (flags & _NX and found) or (flags & _XX and not found):
        return old
    engine.set(key, argv[2], expire_at, keep_ttl=bool(flags & _KEEPTTL))
    return old if flags & _GET else OK


def setnx(conn: Any, argv: list[bytes]) -> int:
    engine = conn.engine
    if engine.exists(argv[1]):
        return 0
    engine.set(argv[1], argv[2])
    return 1


def _set_with_ttl(conn: Any, argv: list[bytes], flags: int, command: str) -> str:
    expire_at = _expire_at_ms(argv[2], flags, command)
    conn.engine.set(argv[1], argv[3], expire_at)
    return OK


def setex(conn: Any, argv: list[bytes]) -> str:
    return _set_with_ttl(conn, argv, _EX, "setex")


def psetex(conn: Any, argv: list[bytes]) -> str:
    return _set_with_ttl(conn, argv, _PX, "psetex")


def getset(conn: Any, argv: list[bytes]) -> bytes | None:
    engine = conn.engine
    old = engine.get(argv[1])
    engine.set(argv[1], argv[2])
    return old


def getdel(conn: Any, argv: list[bytes]) -> bytes | None:
    engine = conn.engine
    value = engine.get(argv[1])
    if value is not None:
        engine.delete(argv[1])
    return value


def getex(conn: Any, argv: list[bytes]) -> bytes | None:
    flags, raw_expire = _parse_extended(argv, 2, for_set=False)
    engine = conn.engine
    key = argv[1]
    value = engine.get(key)
    # Redis validates the expire value only once the key is known to exist.
    if value is None:
        return None
    if raw_expire is not None:
        # A past EXAT/PXAT deletes the key; the engine's expire_at does exactly that.
        engine.expire_at(key, _expire_at_ms(raw_expire, flags, "getex"))
    elif flags & _PERSIST:
        engine.persist(key)
    return value


def mget(conn: Any, argv: list[bytes]) -> list[bytes | None]:
    return list(map(conn.engine.get, argv[1:]))


def _check_pairs(argv: list[bytes]) -> None:
    if not len(argv) & 1:
        raise CommandError(f"ERR wrong number of arguments for '{argv[0].decode().lower()}' "
                           "command")


def mset(conn: Any, argv: list[bytes]) -> str:
    _check_pairs(argv)
    set_value = conn.engine.set
    pairs = iter(argv)
    next(pairs)
    for key, value in zip(pairs, pairs, strict=True):
        set_value(key, value)
    return OK


def msetnx(conn: Any, argv: list[bytes]) -> int:
    _check_pairs(argv)
    engine = conn.engine
    exists = engine.exists
    if any(exists(key) for key in argv[1::2]):
        return 0
    mset(conn, argv)
    return 1


# --- APPEND and ranges ------------------------------------------------------------------------


def append(conn: Any, argv: list[bytes]) -> int:
    engine = conn.engine
    key, tail = argv[1], argv[2]
    old = engine.peek(key)
    if old is None:
        engine.set(key, tail)
        return len(tail)
    length = len(old) + len(tail)
    if length > MAX_STRING_BYTES:
        raise CommandError(STRING_TOO_LONG)
    engine.set(key, old + tail, keep_ttl=True)
    return length


def strlen(conn: Any, argv: list[bytes]) -> int:
    value = conn.engine.get(argv[1])
    return 0 if value is None else len(value)


def getrange(conn: Any, argv: list[bytes]) -> bytes:
    # Both indexes are parsed before the lookup, so a bad index is an error on any key.
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    value = conn.engine.get(argv[1])
    if value is None:
        return b""
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(length + start, 0)
    if end < 0:
        end = max(length + end, 0)
    if end >= length:
        end = length - 1
    if start > end or length == 0:
        return b""
    return value[start:end + 1]


def setrange(conn: Any, argv: list[bytes]) -> int:
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    engine = conn.engine
    key, patch = argv[1], argv[3]
    old = engine.peek(key)
    if not patch:
        # Setting nothing creates nothing and changes nothing.
        return 0 if old is None else len(old)
    end = offset + len(patch)
    if end > MAX_STRING_BYTES:
        raise CommandError(STRING_TOO_LONG)
    if old is None:
        value = bytes(offset) + patch
        engine.set(key, value)
        return len(value)
    if offset > len(old):
        value = old + bytes(offset - len(old)) + patch
    else:
        value = old[:offset] + patch + old[end:]
    engine.set(key, value, keep_ttl=True)
    return len(value)


# --- counters ---------------------------------------------------------------------------------


def incr(conn: Any, argv: list[bytes]) -> int:
    return conn.engine.incr_by(argv[1], 1)


def decr(conn: Any, argv: list[bytes]) -> int:
    return conn.engine.incr_by(argv[1], -1)


def incrby(conn: Any, argv: list[bytes]) -> int:
    return conn.engine.incr_by(argv[1], parse_int(argv[2]))


def decrby(conn: Any, argv: list[bytes]) -> int:
    decrement = parse_int(argv[2])
    if decrement == LLONG_MIN:
        # -LLONG_MIN does not fit in 64 bits (Redis 7.0.x decrbyCommand).
        raise CommandError("ERR decrement would overflow")
    return conn.engine.incr_by(argv[1], -decrement)


def incrbyfloat(conn: Any, argv: list[bytes]) -> bytes:
    engine = conn.engine
    key = argv[1]
    old = engine.peek(key)
    # Stored value first, then the increment, as Redis checks them.
    current = parse_long_double(old) if old is not None else parse_long_double(b"0")
    increment = parse_long_double(argv[2])
    result = add_long_doubles(current, increment)
    engine.set(key, result, keep_ttl=old is not None)
    return result


#: How a multi-key string command's keys, split by owner in a cluster, are merged.
MERGES = {"mget": "concat", "mset": "all_ok", "msetnx": "same_owner"}
#: Key spec flags where Redis's differ from the default (RW access update / RO access).
KEY_FLAGS = {
    "set": ("RW access update variable_flags",), "setnx": ("OW insert",),
    "setex": ("OW update",), "psetex": ("OW update",), "getdel": ("RW access delete",),
    "mset": ("OW update",), "msetnx": ("OW insert",), "append": ("RW insert",),
    "strlen": ("RO",), "setrange": ("RW update",),
}


def set_keys(argv: list[bytes]) -> list[tuple[int, str]]:
    """SET's key reads the old value only with GET (``setGetKeys``, db.c)."""
    if any(arg.lower() == b"get" for arg in argv[3:]):
        return [(1, "RW access update")]
    return [(1, "OW update")]


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    group = "string"
    ro_fast = {"readonly", "fast"}
    write = {"write", "denyoom"}
    write_fast = {"write", "denyoom", "fast"}
    one_key = (1, 1, 1)  # (first_key, last_key, key_step) as COMMAND INFO reports them
    for name, handler, arity, flags, (first, last, step), summary in (
        ("get", get, 2, ro_fast, one_key, "Returns the string value of a key."),
        ("set", set_, -3, write, one_key,
         "Sets the string value of a key, ignoring its type; the key is created if missing."),
        ("setnx", setnx, 3, write_fast, one_key,
         "Sets the string value of a key only when the key doesn't exist."),
        ("setex", setex, 4, write, one_key,
         "Sets the string value and expiration time of a key (seconds)."),
        ("psetex", psetex, 4, write, one_key,
         "Sets both string value and expiration time in milliseconds of a key."),
        ("getset", getset, 3, write_fast, one_key,
         "Returns the previous string value of a key after setting it to a new value."),
        ("getdel", getdel, 2, {"write", "fast"}, one_key,
         "Returns the string value of a key after deleting the key."),
        ("getex", getex, -2, {"write", "fast"}, one_key,
         "Returns the string value of a key after setting its expiration time."),
        ("mget", mget, -2, ro_fast, (1, -1, 1),
         "Atomically returns the string values of one or more keys."),
        ("mset", mset, -3, write, (1, -1, 2),
         "Atomically creates or modifies the string values of one or more keys."),
        ("msetnx", msetnx, -3, write, (1, -1, 2),
         "Atomically sets the values of one or more keys only when all keys don't exist."),
        ("append", append, 3, write_fast, one_key,
         "Appends a string to the value of a key; creates the key if it doesn't exist."),
        ("strlen", strlen, 2, ro_fast, one_key, "Returns the length of a string value."),
        ("getrange", getrange, 4, {"readonly"}, one_key,
         "Returns a substring of the string stored at a key."),
        ("substr", getrange, 4, {"readonly"}, one_key,
         "Returns a substring from a string value (deprecated alias of GETRANGE)."),
        ("setrange", setrange, 4, write, one_key,
         "Overwrites part of a string value with another by an offset; creates the key."),
        ("incr", incr, 2, write_fast, one_key,
         "Increments the integer value of a key by one; uses 0 as initial value."),
        ("decr", decr, 2, write_fast, one_key,
         "Decrements the integer value of a key by one; uses 0 as initial value."),
        ("incrby", incrby, 3, write_fast, one_key,
         "Increments the integer value of a key by a number; uses 0 as initial value."),
        ("decrby", decrby, 3, write_fast, one_key,
         "Decrements a number from the integer value of a key; uses 0 as initial value."),
        ("incrbyfloat", incrbyfloat, 3, write_fast, one_key,
         "Increments the floating point value of a key by a number; uses 0 as initial value."),
    ):
        register(Command(name=name, handler=handler, arity=arity, flags=flags, group=group,
                         first_key=first, last_key=last, key_step=step, summary=summary,
                         merge=MERGES.get(name, ""), key_flags=KEY_FLAGS.get(name, ()),
                         find_keys=set_keys if name == "set" else None))
