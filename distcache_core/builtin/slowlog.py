"""SLOWLOG GET/LEN/RESET/HELP: the node's slow log (:mod:`distcache_core.metrics.slowlog`),
registered by :mod:`distcache_core.builtin.server`. The threshold and length are the
``slowlog-log-slower-than`` and ``slowlog-max-len`` CONFIG parameters."""

from __future__ import annotations

from typing import Any

from ..command_table import Command, Subcommand, subcommand_handler
from ..errors import CommandError
from .arguments import parse_int

SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


def _get(conn: Any, argv: list[bytes]) -> list[list[object]]:
    count = 10
    if len(argv) == 3:
        try:
            count = parse_int(argv[2])
        except CommandError:
            count = -2
        if count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
    return [entry.as_reply() for entry in conn.node.metrics.slowlog.get(count)]


def _len(conn: Any, argv: list[bytes]) -> int:
    return len(conn.node.metrics.slowlog)


def _reset(conn: Any, argv: list[bytes]) -> str:
    conn.node.metrics.slowlog.reset()
    return "OK"


_ADMIN = frozenset({"admin", "loading", "stale"})
SUBCOMMANDS = (
    Subcommand(name="get", arity=-2, handler=_get, flags=_ADMIN,
               summary="Returns the slow log's entries."),
    Subcommand(name="len", arity=2, handler=_len, flags=_ADMIN,
               summary="Returns the number of entries in the slow log."),
    Subcommand(name="reset", arity=2, handler=_reset, flags=_ADMIN,
               summary="Clears all entries from the slow log."),
    Subcommand(name="help", arity=2, handler=lambda conn, argv: SLOWLOG_HELP,
               flags={"loading", "stale"},
               summary="Show helpful text about the different subcommands"),
)


def _slowlog_get_arity(conn: Any, argv: list[bytes]) -> Any:
    # SLOWLOG GET takes at most one argument: Redis's arity -2 with a check of its own.
    if len(argv) > 3 and argv[1].lower() == b"get":
        name = argv[1].decode("utf-8", "replace")
        raise CommandError(f"ERR unknown subcommand or wrong number of arguments for "
                           f"'{name}'. Try SLOWLOG HELP.")
    return _dispatch(conn, argv)


_dispatch = subcommand_handler("slowlog", SUBCOMMANDS)

SLOWLOG = Command(name="slowlog", handler=_slowlog_get_arity, arity=-2, group="server",
                  subcommands=SUBCOMMANDS,
                  summary="A container for slow log commands.")
