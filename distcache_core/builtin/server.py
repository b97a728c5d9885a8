"""Server commands: INFO COMMAND CONFIG SLOWLOG TIME DBSIZE SAVE BGSAVE BGREWRITEAOF LASTSAVE
SHUTDOWN (FLUSHDB and FLUSHALL are in :mod:`.databases`)."""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable
from typing import Any

from ..command_table import Command, Subcommand, subcommand_handler
from ..errors import SYNTAX, CommandError, PersistenceError
from ..hookspecs import hookimpl
from ..info import render_info
from ..replies import NO_REPLY, VerbatimReply
from . import introspection, slowlog
from .arguments import parse_int


def info(conn: Any, argv: list[bytes]) -> VerbatimReply:
    return VerbatimReply(
        render_info(conn.node, (a.decode("utf-8", "replace") for a in argv[1:])).encode())


def time_(conn: Any, argv: list[bytes]) -> list[bytes]:
    now_us = time.time_ns() // 1000
    return [str(now_us // 1_000_000).encode(), str(now_us % 1_000_000).encode()]


def dbsize(conn: Any, argv: list[bytes]) -> int:
    return len(conn.engine)


def lastsave(conn: Any, argv: list[bytes]) -> int:
    return conn.node.last_save_time


async def save(conn: Any, argv: list[bytes]) -> str:
    """SAVE: the reply waits until the snapshot is durable; other clients are served."""
    try:
        await conn.node.persistence.save()
    except PersistenceError as exc:
        raise CommandError(f"ERR {exc}") from None
    return "OK"


def bgsave(conn: Any, argv: list[bytes]) -> str:
    schedule = False
    if len(argv) > 1:
        if len(argv) != 2 or argv[1].lower() != b"schedule":
            raise CommandError(SYNTAX)
        schedule = True
    try:
        reply: str = conn.node.persistence.bgsave(schedule)
    except PersistenceError as exc:
        raise CommandError(f"ERR {exc}") from None
    return reply


def bgrewriteaof(conn: Any, argv: list[bytes]) -> str:
    try:
        reply: str = conn.node.persistence.bgrewriteaof()
    except PersistenceError as exc:
        raise CommandError(f"ERR {exc}") from None
    return reply


def shutdown(conn: Any, argv: list[bytes]) -> Any:
    for option in argv[1:]:
        if option.lower() not in (b"nosave", b"save", b"now", b"force", b"abort"):
            raise CommandError(SYNTAX)
    if any(option.lower() == b"abort" for option in argv[1:]):
        raise CommandError("ERR No shutdown in progress.")
    options = {option.lower() for option in argv[1:]}
    if b"nosave" in options or b"save" in options:
        conn.node.persistence.shutdown_save = b"save" in options and b"nosave" not in options
    # Redis sends no reply on success: the connection just closes as the node stops.
    conn.close_after_reply()
    conn.node.request_shutdown()
    return NO_REPLY


# --- CONFIG -----------------------------------------------------------------------------------


def _int_setter(attribute: str, minimum: int, maximum: int) -> Callable[[Any, bytes], None]:
    """A numeric parameter as Redis's ``createIntConfig``/``createUIntConfig`` checks it."""

    def setter(conn: Any, raw: bytes) -> None:
        try:
            value = parse_int(raw)
        except CommandError:
            raise ValueError("argument couldn't be parsed into an integer") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"argument must be between {minimum} and {maximum} inclusive")
        setattr(conn.server, attribute, value)

    return setter


def _set_requirepass(conn: Any, raw: bytes) -> None:
    conn.server.requirepass = raw.decode()


def _checked_int(raw: bytes, minimum: int, maximum: int = 2**63 - 1) -> int:
    try:
        value = parse_int(raw)
    except CommandError:
        raise ValueError("argument couldn't be parsed into an integer") from None
    if not minimum <= value <= maximum:
        raise ValueError(f"argument must be between {minimum} and {maximum} inclusive")
    return value


def _set_slowlog_threshold(conn: Any, raw: bytes) -> None:
    conn.node.metrics.set_slowlog_threshold(_checked_int(raw, -1))


def _set_slowlog_max_len(conn: Any, raw: bytes) -> None:
    conn.node.metrics.slowlog.set_max_len(_checked_int(raw, 0))


#: Redis's memory units (``memtoull`` in util.c): k/m/g are powers of 1000, kb/mb/gb of 1024.
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
                 "g": 1000**3, "gb": 1024**3}
_MEMORY_VALUE = re.compile(r"([0-9]+)([a-z]*)")
#: Every policy Redis knows, in the order its CONFIG SET error lists them.
REDIS_POLICIES = ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
                  "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")


def parse_memory(raw: bytes) -> int:
    """A memory value as Redis reads one (``100mb``, ``1gb``, ``12345``)."""
    match = _MEMORY_VALUE.fullmatch(raw.decode("latin-1").lower())
    if match is None or match.group(2) not in _MEMORY_UNITS:
        raise ValueError("argument must be a memory value")
    value = int(match.group(1)) * _MEMORY_UNITS[match.group(2)]
    if value > 2**64 - 1:
        raise ValueError("argument must be a memory value")
    return value


def _configure(conn: Any, **setting: Any) -> None:
    """Change the storage engine's limits at run time (every database: one family)."""
    configure = getattr(conn.node.engine, "configure", None)
    if configure is None:
        raise ValueError(f"the storage engine {conn.node.config.node.storage!r} cannot change "
                         f"its memory limits at run time")
    configure(**setting)


def _set_maxmemory(conn: Any, raw: bytes) -> None:
    _configure(conn, maxmemory_bytes=parse_memory(raw))


def _set_maxmemory_policy(conn: Any, raw: bytes) -> None:
    policy = raw.decode("latin-1").lower()
    if policy not in REDIS_POLICIES:
        raise ValueError(f"argument(s) must be one of the following: "
                         f"{', '.join(REDIS_POLICIES)}")
    try:
        _configure(conn, maxmemory_policy=policy)
    except ValueError as exc:
        raise ValueError(f"the storage engine {conn.node.config.node.storage!r} does not "
                         f"support {policy} ({exc})") from None


#: parameter -> (getter, setter or None when immutable at run time)
CONFIG_PARAMETERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, bytes], None] | None]] = {
    "bind": (lambda c: c.node.config.node.host, None),
    "port": (lambda c: c.node.port, None),
    "dir": (lambda c: str(c.node.config.node.resolved_data_dir()), None),
    "maxclients": (lambda c: c.server.maxclients, _int_setter("maxclients", 1, 2**32 - 1)),
    "timeout": (lambda c: c.server.idle_timeout_seconds,
                _int_setter("idle_timeout_seconds", 0, 2**31 - 1)),
    "requirepass": (lambda c: c.server.requirepass, _set_requirepass),
    # What the engine reports in force (EngineStats), settable through its configure().
    "maxmemory": (lambda c: c.node.engine.stats().maxmemory_bytes, _set_maxmemory),
    "maxmemory-policy": (lambda c: c.node.engine.stats().maxmemory_policy,
                         _set_maxmemory_policy),
    "proto-max-bulk-len": (lambda c: c.server.limits.max_bulk_len, None),
    "databases": (lambda c: c.node.databases.count, None),
    "save": (lambda c: "", None),
    "appendonly": (lambda c: "yes" if "wal" in c.node.config.node.persistence else "no", None),
    "cluster-enabled": (lambda c: "no", None),
    "slowlog-log-slower-than": (lambda c: c.node.metrics.slowlog.log_slower_than_us,
                                _set_slowlog_threshold),
    "slowlog-max-len": (lambda c: c.node.metrics.slowlog.max_len, _set_slowlog_max_len),
}


def _config_get(conn: Any, argv: list[bytes]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for pattern in argv[2:]:
        text = pattern.decode("utf-8", "replace").lower()
        for name, (getter, _) in CONFIG_PARAMETERS.items():
            if fnmatch.fnmatchcase(name, text):
                out[name] = str(getter(conn)).encode()
    return out


def _config_set(conn: Any, argv: list[bytes]) -> str:
    if len(argv) % 2:
        raise CommandError("ERR wrong number of arguments for 'config|set' command")
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


def _config_resetstat(conn: Any, argv: list[bytes]) -> str:
    conn.server.reset_stats()  # error counters too
    conn.node.metrics.reset()  # per-command counters (the slow log stays, as in Redis)
    cluster = getattr(conn.node, "cluster", None)
    if cluster is not None:
        cluster.reset_stats()  # per-peer calls and latencies
    return "OK"


def _config_rewrite(conn: Any, argv: list[bytes]) -> str:
    raise CommandError("ERR Rewriting config file: DistCache config files are not "
                       "rewritten; edit the TOML file")


CONFIG_HELP = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
]

_ADMIN = frozenset({"admin", "noscript", "loading", "stale"})
CONFIG_SUBCOMMANDS = (
    Subcommand(name="get", arity=-3, handler=_config_get, flags=_ADMIN,
               summary="Returns the effective values of configuration parameters."),
    Subcommand(name="set", arity=-4, handler=_config_set, flags=_ADMIN,
               summary="Sets configuration parameters in-flight."),
    Subcommand(name="resetstat", arity=2, handler=_config_resetstat, flags=_ADMIN,
               summary="Resets the server's statistics."),
    Subcommand(name="rewrite", arity=2, handler=_config_rewrite, flags=_ADMIN,
               summary="Persists the effective configuration to file."),
    Subcommand(name="help", arity=2, handler=lambda conn, argv: CONFIG_HELP,
               flags={"loading", "stale"},
               summary="Returns helpful text about the different subcommands."),
)


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    group = "server"
    anytime = {"loading", "stale", "fast"}
    # Flags and ACL categories as Redis 7.0 reports them (COMMAND INFO).
    for cmd in (
        Command(name="info", handler=info, arity=-1, flags={"loading", "stale"}, group=group,
                acl_categories={"dangerous"},
                summary="Returns information and statistics about the node."),
        introspection.COMMAND,
        slowlog.SLOWLOG,
        Command(name="config", handler=subcommand_handler("config", CONFIG_SUBCOMMANDS),
                arity=-2, group=group, subcommands=CONFIG_SUBCOMMANDS,
                summary="A container for server configuration commands."),
        Command(name="time", handler=time_, arity=1, flags=anytime, group=group,
                summary="Returns the server time."),
        Command(name="dbsize", handler=dbsize, arity=1, flags={"readonly", "fast"},
                group=group, acl_categories={"keyspace"}, route="all", merge="sum_primary",
                summary="Returns the number of keys."),
        Command(name="lastsave", handler=lastsave, arity=1, flags=anytime, group=group,
                acl_categories={"admin", "dangerous"},
                summary="Returns the Unix time of the last successful save."),
        Command(name="save", handler=save, arity=1,
                flags={"admin", "noscript", "no_async_loading", "no_multi"}, group=group,
                summary="Writes a snapshot through the persistence plugins."),
        Command(name="bgsave", handler=bgsave, arity=-1,
                flags={"admin", "noscript", "no_async_loading"}, group=group,
                summary="Writes a snapshot through the persistence plugins in the background."),
        Command(name="bgrewriteaof", handler=bgrewriteaof, arity=1,
                flags={"admin", "noscript", "no_async_loading"}, group=group,
                summary="Rewrites the write-ahead log from the keyspace, in the background."),
        Command(name="shutdown", handler=shutdown, arity=-1,
                flags={"admin", "noscript", "loading", "stale", "no_multi", "allow_busy"},
                group=group, summary="Stops the node gracefully."),
    ):
        register(cmd)
