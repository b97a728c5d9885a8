"""Generic key commands: DEL UNLINK EXISTS TYPE TOUCH KEYS SCAN RANDOMKEY RENAME RENAMENX COPY,
and the expiry commands from :mod:`.expire`.

Behaviour, reply types and error lines follow Redis 7.0 (``src/db.c``). Every value is a
string, so TYPE answers ``string`` or ``none`` and SCAN's TYPE filter keeps keys only for
``string``. Replies that Redis sends as integers are returned as ``int``, never ``bool``: a
``bool`` would be encoded as a RESP3 boolean after HELLO 3.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from ..command_table import Command
from ..errors import NO_SUCH_KEY, SYNTAX, CommandError
from ..hookspecs import hookimpl
from ..mutations import Cause
from ..replies import OK
from . import expire
from .arguments import parse_int, parse_scan_cursor
from .databases import database, parse_db_index


def delete(conn: Any, argv: list[bytes]) -> int:
    # sum() of the engine's bools is an int; duplicates count once since the second is gone.
    return sum(map(conn.engine.delete, islice(argv, 1, None)))


def exists(conn: Any, argv: list[bytes]) -> int:
    # A key named twice counts twice (Redis >= 3.0.3).
    return sum(map(conn.engine.exists, islice(argv, 1, None)))


def touch(conn: Any, argv: list[bytes]) -> int:
    return sum(map(conn.engine.touch, islice(argv, 1, None)))


def type_(conn: Any, argv: list[bytes]) -> str:
    return "string" if conn.engine.exists(argv[1]) else "none"


def keys(conn: Any, argv: list[bytes]) -> list[bytes]:
    return conn.engine.keys(argv[1])


def scan(conn: Any, argv: list[bytes]) -> list[Any]:
    # The cursor is checked before the options, as scanGenericCommand does.
    cursor = parse_scan_cursor(argv[1])
    match: bytes | None = None
    count = 10
    type_name: bytes | None = None
    i = 2
    argc = len(argv)
    while i < argc:
        option = argv[i].lower()
        if i + 1 >= argc:
            raise CommandError(SYNTAX)
        if option == b"count":
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        elif option == b"match":
            # "*" matches everything, empty keys included; skip the matcher for it.
            match = None if argv[i + 1] == b"*" else argv[i + 1]
        elif option == b"type":
            type_name = argv[i + 1]
        else:
            raise CommandError(SYNTAX)
        i += 2
    next_cursor, found = conn.engine.scan(cursor, match, count)
    if type_name is not None and type_name.lower() != b"string":
        # Redis 7.0 filters by the type's name and knows no other check: an unknown type
        # simply matches nothing (7.2 made it an error).
        found = []
    return [str(next_cursor).encode(), found]


def randomkey(conn: Any, argv: list[bytes]) -> bytes | None:
    return conn.engine.random_key()


def _rename(conn: Any, argv: list[bytes], only_if_new: bool) -> Any:
    engine = conn.engine
    source, destination = argv[1], argv[2]
    value = engine.peek(source)
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if source == destination:
        return 0 if only_if_new else OK
    if only_if_new and engine.exists(destination):
        return 0
    expire_at_ms = engine.get_expire_at(source)
    # Delete first so the copy never counts twice against the engine's capacity. restore
    # keeps the expiry exactly (a key without one does not get the default TTL); the COMMAND
    # cause makes it a write of this command (reported as such, refused with OOM like SET).
    engine.delete(source)
    engine.restore(destination, value, expire_at_ms, cause=Cause.COMMAND)
    return 1 if only_if_new else OK


def rename(conn: Any, argv: list[bytes]) -> Any:
    return _rename(conn, argv, only_if_new=False)


def renamenx(conn: Any, argv: list[bytes]) -> Any:
    return _rename(conn, argv, only_if_new=True)


def copy(conn: Any, argv: list[bytes]) -> int:
    replace = False
    target = conn.engine
    same_database = True
    i = 3
    argc = len(argv)
    while i < argc:
        option = argv[i].lower()
        if option == b"replace":
            replace = True
        elif option == b"db" and i + 1 < argc:
            index = parse_db_index(argv[i + 1])
            target = database(conn, index)
            same_database = index == conn.db
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    source, destination = argv[1], argv[2]
    if same_database and source == destination:
        raise CommandError("ERR source and destination objects are the same")
    engine = conn.engine
    value = engine.peek(source)
    if value is None:
        return 0
    if target.exists(destination) and not replace:
        return 0
    target.restore(destination, value, engine.get_expire_at(source), cause=Cause.COMMAND)
    return 1


#: How each multi-key or whole-keyspace command runs in a cluster (``Command.route``/``merge``);
#: single-key commands route by their key and need no entry.
#: Key spec flags where Redis's differ from the default (RW access update / RO access).
KEY_FLAGS = {
    "del": ("RM delete",), "unlink": ("RM delete",), "exists": ("RO",), "touch": ("RO",),
    "type": ("RO",), "rename": ("RW access delete", "OW update"),
    "renamenx": ("RW access delete", "OW insert"), "copy": ("RO access", "OW update"),
    **{name: ("RW update",) for name in ("expire", "pexpire", "expireat", "pexpireat",
                                          "persist")},
}
ROUTING = {
    "del": ("keys", "sum"),
    "unlink": ("keys", "sum"),
    "exists": ("keys", "sum"),
    "touch": ("keys", "sum"),
    "keys": ("all", "keys_union"),
    "scan": ("all", "scan"),
    "randomkey": ("all", "random"),
    "rename": ("keys", "same_owner"),
    "renamenx": ("keys", "same_owner"),
    "copy": ("keys", "same_owner"),
}


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    group = "generic"
    ro_fast = {"readonly", "fast"}
    # (first_key, last_key, key_step) as COMMAND INFO reports them.
    one_key = (1, 1, 1)
    all_keys = (1, -1, 1)
    two_keys = (1, 2, 1)
    no_keys = (0, 0, 0)
    for name, handler, arity, flags, (first, last, step), summary in (
        ("del", delete, -2, {"write"}, all_keys, "Deletes one or more keys."),
        ("unlink", delete, -2, {"write", "fast"}, all_keys,
         "Asynchronously deletes one or more keys."),
        ("exists", exists, -2, ro_fast, all_keys,
         "Determines whether one or more keys exist."),
        ("touch", touch, -2, ro_fast, all_keys,
         "Returns the number of existing keys out of those specified after updating the time "
         "they were last accessed."),
        ("type", type_, 2, ro_fast, one_key, "Determines the type of value stored at a key."),
        ("keys", keys, 2, {"readonly"}, no_keys, "Returns all key names that match a pattern."),
        ("scan", scan, -2, {"readonly"}, no_keys, "Iterates over the key names in the database."),
        ("randomkey", randomkey, 1, {"readonly"}, no_keys,
         "Returns a random key name from the database."),
        ("rename", rename, 3, {"write"}, two_keys,
         "Renames a key and overwrites the destination."),
        ("renamenx", renamenx, 3, {"write", "fast"}, two_keys,
         "Renames a key only when the target key name doesn't exist."),
        ("copy", copy, -3, {"write", "denyoom"}, two_keys,
         "Copies the value of a key to a new key."),
        *expire.COMMANDS,
    ):
        # KEYS walks the whole keyspace: Redis files it under @dangerous too.
        categories = {"keyspace", "dangerous"} if name == "keys" else frozenset()
        route, merge = ROUTING.get(name, ("", ""))
        register(Command(name=name, handler=handler, arity=arity, flags=flags, group=group,
                         first_key=first, last_key=last, key_step=step, summary=summary,
                         acl_categories=categories, route=route, merge=merge,
                         key_flags=KEY_FLAGS.get(name, ())))
