"""Server commands: INFO COMMAND CONFIG TIME DBSIZE FLUSHDB FLUSHALL SAVE BGSAVE LASTSAVE
SHUTDOWN."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from typing import Any

from ..command_table import Command
from ..errors import SYNTAX, CommandError
from ..hookspecs import hookimpl
from ..info import render_info
from ..replies import NO_REPLY


def info(conn: Any, argv: list[bytes]) -> bytes:
    return render_info(conn.node, (a.decode("utf-8", "replace") for a in argv[1:])).encode()


def time_(conn: Any, argv: list[bytes]) -> list[bytes]:
    now_us = time.time_ns() // 1000
    return [str(now_us // 1_000_000).encode(), str(now_us % 1_000_000).encode()]


def dbsize(conn: Any, argv: list[bytes]) -> int:
    return len(conn.engine)


def flush(conn: Any, argv: list[bytes]) -> str:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise CommandError(SYNTAX)
    conn.engine.clear()
    return "OK"


def lastsave(conn: Any, argv: list[bytes]) -> int:
    return conn.node.last_save_time


def save(conn: Any, argv: list[bytes]) -> str:
    save_node = getattr(conn.node, "save", None)
    if save_node is None or not conn.node.config.node.persistence:
        raise CommandError("ERR no persistence plugin is configured (set node.persistence)")
    save_node()
    return "OK" if argv[0].lower() == b"save" else "Background saving started"


def shutdown(conn: Any, argv: list[bytes]) -> Any:
    for option in argv[1:]:
        if option.lower() not in (b"nosave", b"save", b"now", b"force", b"abort"):
            raise CommandError(SYNTAX)
    if any(option.lower() == b"abort" for option in argv[1:]):
        raise CommandError("ERR No shutdown in progress.")
    # Redis sends no reply on success: the connection just closes as the node stops.
    conn.close_after_reply()
    conn.node.request_shutdown()
    return NO_REPLY


# --- COMMAND ----------------------------------------------------------------------------------


def _command_info(command: Command) -> list[Any]:
    return [
        command.name.encode(),
        command.arity,
        [flag for flag in sorted(command.flags)],
        command.first_key,
        command.last_key,
        command.key_step,
        [],  # ACL categories
        [],  # tips
        [],  # key specifications
        [],  # subcommands
    ]


def _command_docs(command: Command) -> dict[str, Any]:
    return {"summary": command.summary.encode(), "since": b"1.0.0",
            "group": command.group.encode()}


def command(conn: Any, argv: list[bytes]) -> Any:
    table = conn.server.commands
    if len(argv) == 1:
        return [_command_info(c) for c in table]
    sub = argv[1].lower()
    if sub == b"count" and len(argv) == 2:
        return len(table)
    if sub == b"info":
        names = argv[2:] or [c.name.encode() for c in table]
        infos = []
        for name in names:
            found = table.lookup(name)
            infos.append(_command_info(found) if found else None)
        return infos
    if sub == b"docs":
        selected = ([table.lookup(n) for n in argv[2:]] if len(argv) > 2 else list(table))
        return {c.name: _command_docs(c) for c in selected if c is not None}
    if sub == b"list" and len(argv) == 2:
        return [c.name.encode() for c in table]
    if sub == b"getkeys" and len(argv) > 2:
        found = table.lookup(argv[2])
        if found is None:
            raise CommandError("ERR Invalid command specified")
        keys = [argv[2:][i] for i in found.key_positions(len(argv) - 2)]
        if not keys:
            raise CommandError("ERR The command has no key arguments")
        return keys
    if sub == b"help":
        return ["COMMAND [<subcommand>]. Subcommands are: COUNT, DOCS, INFO, LIST, GETKEYS, HELP"]
    raise CommandError(f"ERR unknown subcommand or wrong number of arguments for "
                       f"'{argv[1].decode('utf-8', 'replace')[:128]}'. Try COMMAND HELP.")


# --- CONFIG -----------------------------------------------------------------------------------


def _int_setter(attribute: str, minimum: int) -> Callable[[Any, bytes], None]:
    def setter(conn: Any, raw: bytes) -> None:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("argument couldn't be parsed into an integer") from None
        if value < minimum:
            raise ValueError(f"argument must be at least {minimum}")
        setattr(conn.server, attribute, value)

    return setter


def _set_requirepass(conn: Any, raw: bytes) -> None:
    conn.server.requirepass = raw.decode()


#: parameter -> (getter, setter or None when immutable at run time)
CONFIG_PARAMETERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, bytes], None] | None]] = {
    "bind": (lambda c: c.node.config.node.host, None),
    "port": (lambda c: c.node.port, None),
    "dir": (lambda c: str(c.node.config.node.resolved_data_dir()), None),
    "maxclients": (lambda c: c.server.maxclients, _int_setter("maxclients", 1)),
    "timeout": (lambda c: c.server.idle_timeout_seconds,
                _int_setter("idle_timeout_seconds", 0)),
    "requirepass": (lambda c: c.server.requirepass, _set_requirepass),
    "maxmemory": (lambda c: getattr(c.engine, "maxmemory_bytes", 0), None),
    "maxmemory-policy": (lambda c: "allkeys-lru", None),
    "proto-max-bulk-len": (lambda c: c.server.limits.max_bulk_len, None),
    "databases": (lambda c: 1, None),
    "save": (lambda c: "", None),
    "appendonly": (lambda c: "yes" if "wal" in c.node.config.node.persistence else "no", None),
    "cluster-enabled": (lambda c: "no", None),
}


def config(conn: Any, argv: list[bytes]) -> Any:
    sub = argv[1].lower()
    if sub == b"get" and len(argv) >= 3:
        out: dict[str, bytes] = {}
        for pattern in argv[2:]:
            text = pattern.decode("utf-8", "replace").lower()
            for name, (getter, _) in CONFIG_PARAMETERS.items():
                if fnmatch.fnmatchcase(name, text):
                    out[name] = str(getter(conn)).encode()
        return out
    if sub == b"set" and len(argv) >= 4 and len(argv) % 2 == 0:
        pairs = [(argv[i].decode("utf-8", "replace").lower(), argv[i + 1])
                 for i in range(2, len(argv), 2)]
        for name, _ in pairs:
            if name not in CONFIG_PARAMETERS:
                raise CommandError(
                    f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
            if CONFIG_PARAMETERS[name][1] is None:
                raise CommandError(f"ERR CONFIG SET failed (possibly related to argument "
                                   f"'{name}') - can't set immutable config")
        for name, value in pairs:
            setter = CONFIG_PARAMETERS[name][1]
            assert setter is not None
            try:
                setter(conn, value)
            except ValueError as exc:
                raise CommandError(f"ERR CONFIG SET failed (possibly related to argument "
                                   f"'{name}') - {exc}") from None
        return "OK"
    if sub == b"resetstat" and len(argv) == 2:
        conn.server.reset_stats()
        return "OK"
    if sub == b"rewrite" and len(argv) == 2:
        raise CommandError("ERR Rewriting config file: DistCache config files are not "
                           "rewritten; edit the TOML file")
    if sub == b"help":
        return ["CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>", "SET <directive> <value>", "RESETSTAT", "HELP"]
    raise CommandError(f"ERR unknown subcommand or wrong number of arguments for "
                       f"'{argv[1].decode('utf-8', 'replace')[:128]}'. Try CONFIG HELP.")


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    group = "server"
    for cmd in (
        Command(name="info", handler=info, arity=-1, flags={"loading", "stale"}, group=group,
                summary="Returns information and statistics about the node."),
        Command(name="command", handler=command, arity=-1, flags={"loading", "stale"},
                group=group, summary="Returns detailed information about commands.",
                subcommands=("count", "docs", "info", "list", "getkeys", "help")),
        Command(name="config", handler=config, arity=-2, flags={"admin"}, group=group,
                summary="Gets or sets run-time configuration parameters.",
                subcommands=("get", "set", "resetstat", "rewrite", "help")),
        Command(name="time", handler=time_, arity=1, flags={"fast", "loading"}, group=group,
                summary="Returns the server time."),
        Command(name="dbsize", handler=dbsize, arity=1, flags={"readonly", "fast"},
                group=group, summary="Returns the number of keys."),
        Command(name="flushdb", handler=flush, arity=-1, flags={"write"}, group=group,
                summary="Removes all keys."),
        Command(name="flushall", handler=flush, arity=-1, flags={"write"}, group=group,
                summary="Removes all keys."),
        Command(name="lastsave", handler=lastsave, arity=1, flags={"fast", "loading"},
                group=group, summary="Returns the Unix time of the last successful save."),
        Command(name="save", handler=save, arity=1, flags={"admin"}, group=group,
                summary="Writes a snapshot through the persistence plugins."),
        Command(name="bgsave", handler=save, arity=-1, flags={"admin"}, group=group,
                summary="Writes a snapshot through the persistence plugins."),
        Command(name="shutdown", handler=shutdown, arity=-1, flags={"admin"},
                group=group, summary="Stops the node gracefully."),
    ):
        register(cmd)
