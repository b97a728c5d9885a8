"""Logical databases: SELECT MOVE SWAPDB FLUSHDB FLUSHALL.

A node has ``node.databases`` of them (16 by default, as Redis); ``node.databases[i]`` is the
engine of database ``i`` (:class:`~distcache_core.databases.Databases`) and a connection's
``engine`` is the one of the database it selected (``conn.db``). Every other key command works
on ``conn.engine``, so it acts on the selected database without knowing about databases.
Replies and error lines follow Redis 7.0 (``src/db.c``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..command_table import Command
from ..databases import DB_INDEX_OUT_OF_RANGE
from ..errors import NOT_INTEGER, SYNTAX, CommandError
from ..hookspecs import hookimpl
from ..mutations import Cause
from ..replies import OK
from .arguments import parse_int

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
SAME_OBJECT: Final = "ERR source and destination objects are the same"


def parse_db_index(raw: bytes, message: str | None = None) -> int:
    """A database index as Redis's ``getIntFromObjectOrReply`` reads it: a 64-bit integer
    (else ``message`` or the not-an-integer error) within a C ``int``."""
    try:
        value = parse_int(raw)
    except CommandError:
        raise CommandError(message or NOT_INTEGER) from None
    if not INT_MIN <= value <= INT_MAX:
        raise CommandError(message or f"ERR value is out of range, value must between {INT_MIN} "
                                      f"and {INT_MAX}")
    return value


def database(conn: Any, index: int) -> Any:
    """The engine of database ``index``; Redis's error when there is no such database."""
    databases = conn.node.databases
    if not 0 <= index < databases.count:
        raise CommandError(DB_INDEX_OUT_OF_RANGE)
    return databases[index]


def select_database(conn: Any, index: int) -> None:
    """Make ``index`` the connection's database (SELECT, RESET, a transaction's SELECT)."""
    conn.engine = database(conn, index)
    conn.db = index


def select(conn: Any, argv: list[bytes]) -> Any:
    select_database(conn, parse_db_index(argv[1]))
    return OK


def move(conn: Any, argv: list[bytes]) -> int:
    index = parse_db_index(argv[2])
    target = database(conn, index)
    if index == conn.db:
        raise CommandError(SAME_OBJECT)
    key = argv[1]
    source = conn.engine
    value = source.peek(key)
    if value is None or target.exists(key):
        return 0
    expire_at_ms = source.get_expire_at(key)
    # Out of the source first, so a full node does not evict another key to make room for a
    # key that is only changing database; back in if the target refuses it (OOM).
    source.delete(key)
    try:
        target.restore(key, value, expire_at_ms, cause=Cause.COMMAND)
    except CommandError:
        source.restore(key, value, expire_at_ms, cause=Cause.COMMAND)
        raise
    return 1


def swapdb(conn: Any, argv: list[bytes]) -> Any:
    first = parse_db_index(argv[1], "ERR invalid first DB index")
    second = parse_db_index(argv[2], "ERR invalid second DB index")
    database(conn, first)
    database(conn, second)
    databases = conn.node.databases
    server = conn.server
    server.watches.before_swap(databases, first, second)
    databases.swap(first, second)
    # The two engine objects changed places: every client of either database, and the
    # default of new connections, follow.
    for client in server.connections.values():
        if client.db == first or client.db == second:
            client.engine = databases[client.db]
    # The caller too when it is not a connection: a script's client (SWAPDB in a script).
    if conn.db == first or conn.db == second:
        conn.engine = databases[conn.db]
    server.engine = databases[0]
    return OK


def _flush_mode(argv: list[bytes]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise CommandError(SYNTAX)


def flushdb(conn: Any, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    conn.engine.clear()
    return OK


def flushall(conn: Any, argv: list[bytes]) -> Any:
    _flush_mode(argv)
    for engine in conn.node.databases:  # the databases opened so far; the rest are empty
        engine.clear()
    return OK


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    # Flags, key positions and ACL categories as Redis 7.0's COMMAND INFO reports them.
    for command in (
        Command(name="select", handler=select, arity=2, flags={"loading", "stale", "fast"},
                group="connection", summary="Changes the selected database."),
        Command(name="move", handler=move, arity=3, flags={"write", "fast"}, first_key=1,
                last_key=1, key_step=1, group="generic",
                summary="Moves a key to another database."),
        Command(name="swapdb", handler=swapdb, arity=3, flags={"write", "fast"},
                group="server", acl_categories={"keyspace", "dangerous"}, route="all",
                merge="all_ok", summary="Swaps two Redis databases."),
        Command(name="flushdb", handler=flushdb, arity=-1, flags={"write"}, group="server",
                acl_categories={"keyspace", "dangerous"}, route="all", merge="all_ok",
                summary="Removes all keys from the current database."),
        Command(name="flushall", handler=flushall, arity=-1, flags={"write"}, group="server",
                acl_categories={"keyspace", "dangerous"}, route="all", merge="all_ok",
                summary="Removes all keys from all databases."),
    ):
        register(command)
