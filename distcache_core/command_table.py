"""Commands as plugins register them, and the lookup table the server dispatches through."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .contracts import CommandHandler
from .errors import CommandError
from .metrics.commands import CommandStats

#: Flags a command may carry: Redis's, in the order COMMAND INFO lists them
#: (``addReplyFlagsForCommand`` in Redis 7.0's server.c). ``noauth`` is reported as ``no_auth``.
COMMAND_FLAGS = (
    "write",              # changes the keyspace
    "readonly",           # reads the keyspace only
    "denyoom",            # refused when memory is full (noeviction)
    "module",
    "admin",              # administrative
    "pubsub",
    "noscript",           # not callable from a Lua script
    "blocking",
    "loading",            # allowed while the node is loading data
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",               # O(1) or O(log N)
    "noauth",             # allowed before AUTH when requirepass is set
    "may_replicate",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",           # refused inside MULTI
    "movablekeys",
    "allow_busy",         # allowed while a script runs too long (-BUSY for the rest)
)
KNOWN_FLAGS = frozenset(COMMAND_FLAGS)

#: Key spec flags in the order COMMAND INFO and COMMAND GETKEYSANDFLAGS list them
#: (``addReplyFlagsForKeyArgs``, server.c): the access (RO read only, RW read and write, OW
#: overwrite without reading, RM remove), then what the command does with the key's data.
KEY_SPEC_FLAGS = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key",
                  "incomplete", "variable_flags")

#: ACL categories in the order COMMAND INFO lists them (``ACLCommandCategories``, acl.c).
ACL_CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
    "connection", "transaction", "scripting",
)
#: The category a command of a group gets when it names none (as Redis's command JSON does).
GROUP_CATEGORIES = {
    "generic": "keyspace", "string": "string", "connection": "connection",
    "transactions": "transaction", "scripting": "scripting", "bitmap": "bitmap",
}


#: Where a command runs in a cluster (``Command.route``).
ROUTE_KEYS = "keys"      # on the owner of its keys (forwarded when another node owns them)
ROUTE_ALL = "all"        # on every node, replies combined by ``merge``
ROUTE_LOCAL = "local"    # on the node that received it (PING, INFO, CLIENT ...)
ROUTES = frozenset({ROUTE_KEYS, ROUTE_ALL, ROUTE_LOCAL})

#: How the replies of a split command combine (``Command.merge``).
MERGES = {
    ROUTE_KEYS: frozenset({
        "",            # one key, or keys that must share an owner: nothing to merge
        "concat",      # MGET: each part's array, put back in the client's key order
        "sum",         # DEL, EXISTS, UNLINK, TOUCH: integers added
        "all_ok",      # MSET: OK when every part is OK, else the first error
        "same_owner",  # RENAME, MSETNX, COPY: keys on different owners are refused (CROSSSLOT)
    }),
    ROUTE_ALL: frozenset({
        "sum_primary",  # DBSIZE: each node counts the keys it owns as primary, summed
        "keys_union",   # KEYS: each key once (from its primary)
        "scan",         # SCAN: a cursor that walks node after node, each key from its primary
        "all_ok",       # FLUSHALL, FLUSHDB: OK when every node is OK
        "random",       # RANDOMKEY: any node's non-nil answer
    }),
    ROUTE_LOCAL: frozenset({""}),
}


def _lower(name: str) -> str:
    return name.lower()


def _flag_set(flags: Iterable[str]) -> frozenset[str]:
    return frozenset(flags)


def _check_flags(name: str, flags: frozenset[str]) -> None:
    unknown = flags - KNOWN_FLAGS
    if unknown:
        raise ValueError(f"command {name!r}: unknown flags {sorted(unknown)}")


def _check_categories(name: str, categories: frozenset[str]) -> None:
    unknown = categories - set(ACL_CATEGORIES)
    if unknown:
        raise ValueError(f"command {name!r}: unknown ACL categories {sorted(unknown)} "
                         f"(known: {', '.join(ACL_CATEGORIES)})")


def _key_flags(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _check_key_flags(name: str, key_flags: tuple[str, ...]) -> None:
    for spec in key_flags:
        words = spec.split()
        if [w for w in KEY_SPEC_FLAGS if w in words] != words:
            raise ValueError(f"command {name!r}: key flags {spec!r} must be words of "
                             f"{' '.join(KEY_SPEC_FLAGS)}, in that order")


def _key_range(first_key: int, last_key: int, key_step: int, argc: int) -> range:
    if first_key == 0:
        return range(0)
    last = last_key if last_key >= 0 else argc + last_key
    return range(first_key, min(last, argc - 1) + 1, key_step or 1)


def _arity_bounds(arity: int) -> tuple[int, int]:
    return (arity, arity) if arity > 0 else (-arity, 1 << 62)


def categories_for(flags: frozenset[str], explicit: frozenset[str], group: str
                   ) -> tuple[str, ...]:
    """The ACL categories COMMAND INFO reports, in Redis's order: the explicit ones (else the
    group's), plus those Redis derives from the flags (``setImplicitACLCategories``)."""
    found = set(explicit) if explicit else {GROUP_CATEGORIES.get(group, "")}
    if "write" in flags:
        found.add("write")
    if "readonly" in flags and "scripting" not in found:
        found.add("read")
    if "admin" in flags:
        found.update(("admin", "dangerous"))
    if "pubsub" in flags:
        found.add("pubsub")
    if "blocking" in flags:
        found.add("blocking")
    found.add("fast" if "fast" in flags else "slow")
    return tuple(c for c in ACL_CATEGORIES if c in found)


@attrs.frozen(kw_only=True)
class Subcommand:
    """One subcommand of a container command (CLIENT ID, CONFIG GET, COMMAND DOCS).

    Redis checks a subcommand's own arity (``wrong number of arguments for 'client|id'
    command``) and lists it in COMMAND INFO and COMMAND DOCS as ``container|name``. ``arity``
    counts the container's name and the subcommand's: CLIENT ID is 2. :func:`subcommand_handler`
    builds the container's handler from the subcommands that have one.
    """

    name: str = attrs.field(converter=_lower)
    arity: int = -2
    handler: CommandHandler | None = None
    flags: frozenset[str] = attrs.field(default=frozenset(), converter=_flag_set)
    acl_categories: frozenset[str] = attrs.field(default=frozenset(), converter=_flag_set)
    summary: str = ""
    #: Key positions in the whole argument vector, as COMMAND INFO reports them (OBJECT
    #: ENCODING's key is argument 2).
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    #: Key spec flags, as :attr:`Command.key_flags`.
    key_flags: tuple[str, ...] = attrs.field(default=(), converter=_key_flags)
    min_args: int = attrs.field(init=False)
    max_args: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        _check_flags(self.name, self.flags)
        _check_key_flags(self.name, self.key_flags)
        _check_categories(self.name, self.acl_categories)
        if self.arity == 0 or -2 < self.arity < 2:
            raise ValueError(f"subcommand {self.name!r}: arity counts the container and the "
                             f"subcommand, so it is at least 2 or at most -2")
        minimum, maximum = _arity_bounds(self.arity)
        object.__setattr__(self, "min_args", minimum)
        object.__setattr__(self, "max_args", maximum)

    def key_positions(self, argc: int) -> range:
        """Indexes of the key arguments in the whole argument vector of length ``argc``."""
        return _key_range(self.first_key, self.last_key, self.key_step, argc)


def _subcommands(values: Iterable[str | Subcommand]) -> tuple[Subcommand, ...]:
    # A bare name is a subcommand the handler dispatches itself, with no arity of its own.
    return tuple(v if isinstance(v, Subcommand) else Subcommand(name=v) for v in values)


def subcommand_handler(container: str, subcommands: Sequence[Subcommand]) -> CommandHandler:
    """A container's handler: finds the subcommand named by ``argv[1]``, checks its arity and
    runs it, with Redis's errors for an unknown subcommand or a wrong argument count."""
    by_name = {s.name.encode(): s for s in subcommands if s.handler is not None}
    upper = container.upper()

    def handler(conn: Any, argv: list[bytes]) -> Any:
        sub = by_name.get(argv[1].lower())
        if sub is None:
            name = argv[1].decode("utf-8", "replace")[:128]
            raise CommandError(f"ERR unknown subcommand '{name}'. Try {upper} HELP.")
        if not sub.min_args <= len(argv) <= sub.max_args:
            raise CommandError(
                f"ERR wrong number of arguments for '{container}|{sub.name}' command")
        assert sub.handler is not None
        return sub.handler(conn, argv)

    return handler


@attrs.frozen(kw_only=True)
class Command:
    """One command: its name, its handler and the metadata COMMAND INFO reports.

    ``arity`` follows Redis: the number of arguments including the command name; a negative
    number ``-N`` means "at least N". ``first_key``/``last_key``/``key_step`` locate the keys in
    the argument vector (``last_key`` -1 means the last argument) for COMMAND GETKEYS and for
    routing keys to their owner in a cluster.
    """

    name: str = attrs.field(converter=_lower)
    handler: CommandHandler
    arity: int = attrs.field()
    flags: frozenset[str] = attrs.field(default=frozenset(), converter=_flag_set)
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    #: One line for COMMAND DOCS and `distcache plugins`.
    summary: str = ""
    #: Redis's command group (COMMAND DOCS): generic, string, connection, server, ...
    group: str = "generic"
    #: ACL categories COMMAND INFO reports besides those the flags imply (``write`` gives
    #: ``@write``...); empty means the group's (``@string`` for string commands, ``@keyspace``
    #: for generic ones, ``@connection``...). DistCache has no ACLs: this is information only.
    acl_categories: frozenset[str] = attrs.field(default=frozenset(), converter=_flag_set)
    #: Subcommands, when the handler dispatches on argv[1] (a bare name is one with no arity
    #: of its own); see :class:`Subcommand` and :func:`subcommand_handler`.
    subcommands: tuple[Subcommand, ...] = attrs.field(default=(), converter=_subcommands)
    #: Where it runs in a cluster: ``keys``, ``all`` or ``local`` (see ``ROUTES``). Empty means
    #: ``keys`` for a command that declares key positions, else ``local``: a third-party
    #: command that declares only its keys routes like a built-in one.
    route: str = ""
    #: How a split is merged (see ``MERGES``); empty for single-key and local commands.
    merge: str = ""
    #: Redis's key spec flags (COMMAND INFO, COMMAND GETKEYSANDFLAGS), one string of
    #: :data:`KEY_SPEC_FLAGS` words per key spec: ``("RW access delete", "OW update")`` for
    #: RENAME. With several, each but the last covers one key from ``first_key`` on and the last
    #: covers the rest. Empty means ``RW access update`` for a write command, else
    #: ``RO access``. Information for clients only; routing reads the positions.
    key_flags: tuple[str, ...] = attrs.field(default=(), converter=_key_flags)
    #: For a command whose keys, or their flags, depend on its arguments (EVAL's numkeys,
    #: SET's GET): ``find_keys(argv)`` gives ``(position, key flags)`` of each key, as
    #: COMMAND GETKEYS reports them; ``[]`` for arguments it cannot read.
    find_keys: Callable[[list[bytes]], list[tuple[int, str]]] | None = None

    @flags.validator
    def _known_flags(self, attribute: attrs.Attribute, value: frozenset[str]) -> None:
        _check_flags(self.name, value)

    @key_flags.validator
    def _known_key_flags(self, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
        _check_key_flags(self.name, value)

    @acl_categories.validator
    def _known_categories(self, attribute: attrs.Attribute, value: frozenset[str]) -> None:
        _check_categories(self.name, value)

    @arity.validator
    def _nonzero_arity(self, attribute: attrs.Attribute, value: int) -> None:
        if value == 0:
            raise ValueError(f"command {self.name!r}: arity must not be 0")

    #: Argument counts (name included) the arity allows, precomputed for the request path.
    min_args: int = attrs.field(init=False)
    max_args: int = attrs.field(init=False)
    #: This command's counters on one node (calls, time, histogram); the request path bumps
    #: ``stats.calls``. Each node's :class:`CommandTable` holds its own copy of the command.
    stats: CommandStats = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        minimum, maximum = _arity_bounds(self.arity)
        object.__setattr__(self, "min_args", minimum)
        object.__setattr__(self, "max_args", maximum)
        object.__setattr__(self, "stats", CommandStats(self.name))
        if not self.route:
            object.__setattr__(self, "route", ROUTE_KEYS if self.first_key else ROUTE_LOCAL)
        if self.route not in ROUTES:
            raise ValueError(f"command {self.name!r}: route must be one of "
                             f"{sorted(ROUTES)}, not {self.route!r}")
        if self.merge not in MERGES[self.route]:
            raise ValueError(f"command {self.name!r}: merge {self.merge!r} does not apply to "
                             f"route {self.route!r} (choices: {sorted(MERGES[self.route])})")
        if self.route == ROUTE_KEYS and not self.first_key:
            raise ValueError(f"command {self.name!r}: route 'keys' needs key positions")

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    def key_positions(self, argc: int) -> range:
        """Indexes of the key arguments in an argument vector of length ``argc``."""
        return _key_range(self.first_key, self.last_key, self.key_step, argc)


class CommandTable:
    """Maps a command name, as the client spelt it, to its :class:`Command`.

    Names are stored lowercase and uppercase so the common spellings hit the dict directly;
    any other casing pays one ``bytes.lower()``.
    """

    __slots__ = ("by_name", "commands")

    def __init__(self, commands: Iterable[Command]) -> None:
        # Copies, so that each table (each node) counts its own calls even when a plugin
        # registers the same Command object with several nodes in one process.
        self.commands: dict[str, Command] = {c.name: attrs.evolve(c) for c in commands}
        #: name as lowercase and uppercase bytes -> command (the server binds ``.get``)
        self.by_name: dict[bytes, Command] = {}
        for command in self.commands.values():
            raw = command.name.encode()
            self.by_name[raw] = command
            self.by_name[raw.upper()] = command

    def lookup(self, name: bytes) -> Command | None:
        command = self.by_name.get(name)
        if command is None:
            command = self.by_name.get(name.lower())
        return command

    def __len__(self) -> int:
        return len(self.commands)

    def __iter__(self):
        return iter(self.commands.values())

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.commands
