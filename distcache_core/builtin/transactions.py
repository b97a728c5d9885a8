"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH, as Redis 7.0 (``src/multi.c``).

The mechanics are in :mod:`distcache_core.transactions` (queueing, EXEC) and
:mod:`distcache_core.watch` (WATCH on the mutation stream); these are the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import transactions
from ..command_table import Command
from ..errors import CommandError
from ..hookspecs import hookimpl
from ..replies import OK


def multi(conn: Any, argv: list[bytes]) -> Any:
    if conn.transaction is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    transactions.begin(conn)
    return OK


def exec_(conn: Any, argv: list[bytes]) -> Any:
    if conn.transaction is None:
        raise CommandError("ERR EXEC without MULTI")
    return transactions.execute(conn)


def discard(conn: Any, argv: list[bytes]) -> Any:
    if conn.transaction is None:
        raise CommandError("ERR DISCARD without MULTI")
    transactions.end(conn)
    return OK


def watch(conn: Any, argv: list[bytes]) -> Any:
    if conn.transaction is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    conn.server.watches.watch(conn, argv[1:])
    return OK


def unwatch(conn: Any, argv: list[bytes]) -> Any:
    conn.server.watches.unwatch(conn)
    return OK


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    # Flags and key positions as Redis 7.0's COMMAND INFO reports them.
    group = "transactions"
    quick = {"noscript", "loading", "stale", "fast", "allow_busy"}
    for command in (
        Command(name="multi", handler=multi, arity=1, flags=quick, group=group,
                summary="Starts a transaction."),
        Command(name="exec", handler=exec_, arity=1,
                flags={"noscript", "loading", "stale", "skip_slowlog"}, group=group,
                summary="Executes all commands in a transaction."),
        Command(name="discard", handler=discard, arity=1, flags=quick, group=group,
                summary="Discards a transaction."),
        Command(name="watch", handler=watch, arity=-2, flags=quick, first_key=1, last_key=-1,
                key_step=1, key_flags=("RO",), group=group, merge="all_ok",
                summary="Monitors changes to keys to determine the execution of a transaction."),
        Command(name="unwatch", handler=unwatch, arity=1, flags=quick, group=group,
                summary="Forgets about watched keys of a transaction."),
    ):
        register(command)
