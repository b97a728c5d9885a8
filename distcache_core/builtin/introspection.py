"""COMMAND and its subcommands, in Redis 7.0's reply shapes (``commandCommand`` and
``addReplyCommandInfo`` / ``addReplyCommandDocs`` in server.c).

The shapes matter to real clients: interactive redis-cli builds its help from COMMAND DOCS at
start and asserts that every name and field is a bulk string; cluster-aware clients read the
key positions from COMMAND INFO. Flags and ACL categories are RESP3 sets of status lines,
listed in Redis's order; map keys and values are bulk strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..command_table import (
    COMMAND_FLAGS,
    Command,
    Subcommand,
    categories_for,
    subcommand_handler,
)
from ..errors import SYNTAX, CommandError
from ..globmatch import glob_match
from ..replies import SetReply

_EMPTY_SET = SetReply()


def _flags(flags: frozenset[str]) -> SetReply:
    return SetReply("no_auth" if flag == "noauth" else flag
                    for flag in COMMAND_FLAGS if flag in flags)


def _categories(flags: frozenset[str], explicit: frozenset[str], group: str) -> SetReply:
    return SetReply("@" + category for category in categories_for(flags, explicit, group))


def command_categories(command: Command) -> tuple[str, ...]:
    """The command's ACL categories without ``@``. A container (CLIENT, CONFIG) has only the
    categories it names, as in Redis; its subcommands carry the group's."""
    if command.acl_categories or not command.subcommands:
        return categories_for(command.flags, command.acl_categories, command.group)
    return tuple(c for c in categories_for(command.flags, frozenset(), "") if c)


def key_flags(command: Command | Subcommand) -> tuple[str, ...]:
    """The command's key spec flags (:attr:`Command.key_flags`), derived when it names none."""
    if command.key_flags:
        return command.key_flags
    return ("RW access update",) if "write" in command.flags else ("RO access",)


def _spec(flags: str, index: int, lastkey: int, keystep: int) -> dict[str, Any]:
    return {"flags": SetReply(flags.split()),
            "begin_search": {"type": b"index", "spec": {"index": index}},
            "find_keys": {"type": b"range",
                          "spec": {"lastkey": lastkey, "keystep": keystep, "limit": 0}}}


def _key_specs(command: Command | Subcommand) -> SetReply:
    """Range key specs from the key positions: with several flag sets, each but the last
    covers one key and the last the rest, as RENAME's and BITOP's do in Redis."""
    if not command.first_key:
        return _EMPTY_SET
    step = command.key_step or 1
    *singles, rest = key_flags(command)
    specs = [_spec(flags, command.first_key + i * step, 0, 1)
             for i, flags in enumerate(singles)]
    first = command.first_key + len(singles) * step
    last = command.last_key - first if command.last_key >= 0 else command.last_key
    specs.append(_spec(rest, first, last, step))
    return SetReply(specs)


def _sub_explicit(command: Command, sub: Subcommand) -> frozenset[str]:
    return sub.acl_categories or command.acl_categories


def _subcommand_info(command: Command, sub: Subcommand) -> list[Any]:
    return [f"{command.name}|{sub.name}".encode(), sub.arity, _flags(sub.flags), sub.first_key,
            sub.last_key, sub.key_step,
            _categories(sub.flags, _sub_explicit(command, sub), command.group), _EMPTY_SET,
            _key_specs(sub), _EMPTY_SET]


def command_info(command: Command) -> list[Any]:
    """One COMMAND INFO entry: name, arity, flags, first/last key and step, ACL categories,
    tips, key specs, subcommands."""
    categories = SetReply("@" + c for c in command_categories(command))
    # Redis sends no subcommands as an empty set but a list of them as an array.
    subcommands: Any = ([_subcommand_info(command, sub) for sub in command.subcommands]
                        if command.subcommands else _EMPTY_SET)
    return [command.name.encode(), command.arity, _flags(command.flags), command.first_key,
            command.last_key, command.key_step, categories, _EMPTY_SET, _key_specs(command),
            subcommands]


def _docs(summary: str, group: str) -> dict[str, Any]:
    # "since" is the Redis version that introduced a command; DistCache does not track it per
    # command, so it reports the first version, as Redis does for GET and SET.
    return {"summary": summary.encode(), "since": b"1.0.0", "group": group.encode()}


def command_docs(command: Command) -> dict[str, Any]:
    docs = _docs(command.summary, command.group)
    if command.subcommands:
        docs["subcommands"] = {f"{command.name}|{sub.name}": _docs(sub.summary, command.group)
                               for sub in command.subcommands}
    return docs


# --- handlers -----------------------------------------------------------------------------------


def _table(conn: Any) -> Any:
    return conn.server.commands


def _all_info(conn: Any, argv: list[bytes]) -> list[Any]:
    return [command_info(c) for c in _table(conn)]


def _count(conn: Any, argv: list[bytes]) -> int:
    return len(_table(conn))


def _info(conn: Any, argv: list[bytes]) -> list[Any]:
    if len(argv) == 2:
        return _all_info(conn, argv)
    table = _table(conn)
    return [command_info(found) if (found := table.lookup(name)) else None
            for name in argv[2:]]


def _docs_command(conn: Any, argv: list[bytes]) -> dict[bytes, Any]:
    table = _table(conn)
    selected: Iterable[Command | None] = (
        (table.lookup(name) for name in argv[2:]) if len(argv) > 2 else table)
    return {c.name.encode(): command_docs(c) for c in selected if c is not None}


def _names(table: Iterable[Command]) -> Iterable[tuple[str, Command, Subcommand | None]]:
    for command in table:
        yield command.name, command, None
        for sub in command.subcommands:
            yield f"{command.name}|{sub.name}", command, sub


def _filter(kind: bytes, value: bytes) -> Callable[[str, Command, Subcommand | None], bool]:
    if kind == b"pattern":
        pattern = value.lower()  # Redis matches names without case; ours are lowercase
        return lambda name, command, sub: glob_match(pattern, name.encode())
    if kind == b"aclcat":
        wanted = value.decode("utf-8", "replace").lower()
        return lambda name, command, sub: wanted in (
            command_categories(command) if sub is None
            else categories_for(sub.flags, _sub_explicit(command, sub), command.group))
    if kind == b"module":
        return lambda name, command, sub: False  # DistCache loads no Redis modules
    raise CommandError(SYNTAX)


def _list(conn: Any, argv: list[bytes]) -> list[bytes]:
    names = _names(_table(conn))
    if len(argv) == 2:
        return [name.encode() for name, _, _ in names]
    if len(argv) != 5 or argv[2].lower() != b"filterby":
        raise CommandError(SYNTAX)
    keep = _filter(argv[3].lower(), argv[4])
    return [name.encode() for name, command, sub in names if keep(name, command, sub)]


def _keys_with_flags(conn: Any, argv: list[bytes]) -> list[tuple[bytes, str]]:
    """COMMAND GETKEYS / GETKEYSANDFLAGS <full command>: the keys, and the flags of the key
    spec each falls under (``getKeysSubcommandImpl``, server.c)."""
    target = argv[2:]
    command = _table(conn).lookup(target[0])
    found: Command | Subcommand | None = command
    if command is not None and command.subcommands and len(target) > 1:
        found = next((sub for sub in command.subcommands
                      if sub.name.encode() == target[1].lower()), None)
    if found is None:
        raise CommandError("ERR Invalid command specified")
    find_keys = getattr(found, "find_keys", None)
    if not found.first_key and find_keys is None:
        raise CommandError("ERR The command has no key arguments")
    if not found.min_args <= len(target) <= found.max_args:
        raise CommandError("ERR Invalid number of arguments specified for command")
    if find_keys is not None:
        keys = find_keys(target)
    else:
        flags = key_flags(found)
        keys = [(position, flags[min(index, len(flags) - 1)])
                for index, position in enumerate(found.key_positions(len(target)))]
    if not keys and "no_mandatory_keys" not in found.flags:
        raise CommandError("ERR Invalid arguments specified for command")
    return [(target[position], flags) for position, flags in keys]


def _getkeys(conn: Any, argv: list[bytes]) -> list[bytes]:
    return [key for key, _ in _keys_with_flags(conn, argv)]


def _getkeys_and_flags(conn: Any, argv: list[bytes]) -> list[Any]:
    return [[key, SetReply(flags.split())] for key, flags in _keys_with_flags(conn, argv)]


COMMAND_HELP = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
]

_READ = frozenset({"loading", "stale"})
SUBCOMMANDS = (
    Subcommand(name="count", arity=2, handler=_count, flags=_READ,
               summary="Returns a count of commands."),
    Subcommand(name="docs", arity=-2, handler=_docs_command, flags=_READ,
               summary="Returns documentary information about one, multiple or all commands."),
    Subcommand(name="getkeys", arity=-4, handler=_getkeys, flags=_READ,
               summary="Extracts the key names from an arbitrary command."),
    Subcommand(name="getkeysandflags", arity=-4, handler=_getkeys_and_flags, flags=_READ,
               summary="Extracts the key names and access flags for an arbitrary command."),
    Subcommand(name="help", arity=2, handler=lambda conn, argv: COMMAND_HELP, flags=_READ,
               summary="Returns helpful text about the different subcommands."),
    Subcommand(name="info", arity=-2, handler=_info, flags=_READ,
               summary="Returns information about one, multiple or all commands."),
    Subcommand(name="list", arity=-2, handler=_list, flags=_READ,
               summary="Returns a list of command names."),
)
_dispatch = subcommand_handler("command", SUBCOMMANDS)


def command(conn: Any, argv: list[bytes]) -> Any:
    return _all_info(conn, argv) if len(argv) == 1 else _dispatch(conn, argv)


#: Registered by :mod:`.server` with the other server commands.
COMMAND = Command(name="command", handler=command, arity=-1, flags=_READ, group="server",
                  acl_categories={"connection"}, subcommands=SUBCOMMANDS,
                  summary="Returns detailed information about all commands.")
