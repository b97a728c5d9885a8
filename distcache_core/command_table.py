"""Commands as plugins register them, and the lookup table the server dispatches through."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .contracts import CommandHandler

#: Flags a command may carry (Redis's names where Redis has one).
KNOWN_FLAGS = frozenset({
    "write",      # changes the keyspace
    "readonly",   # reads the keyspace only
    "fast",       # O(1) or O(log N)
    "admin",      # administrative
    "noauth",     # allowed before AUTH when requirepass is set
    "loading",    # allowed while the node is loading data
    "stale",
    "denyoom",
    "pubsub",
    "noscript",
    "blocking",
})


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
    group: str = "generic"
    #: Subcommand names (lowercase) for COMMAND INFO, when the handler dispatches on argv[1].
    subcommands: tuple[str, ...] = ()
    #: Where it runs in a cluster: ``keys``, ``all`` or ``local`` (see ``ROUTES``). Empty means
    #: ``keys`` for a command that declares key positions, else ``local``: a third-party
    #: command that declares only its keys routes like a built-in one.
    route: str = ""
    #: How a split is merged (see ``MERGES``); empty for single-key and local commands.
    merge: str = ""

    @flags.validator
    def _known_flags(self, attribute: attrs.Attribute, value: frozenset[str]) -> None:
        unknown = value - KNOWN_FLAGS
        if unknown:
            raise ValueError(f"command {self.name!r}: unknown flags {sorted(unknown)}")

    @arity.validator
    def _nonzero_arity(self, attribute: attrs.Attribute, value: int) -> None:
        if value == 0:
            raise ValueError(f"command {self.name!r}: arity must not be 0")

    #: Argument counts (name included) the arity allows, precomputed for the request path.
    min_args: int = attrs.field(init=False)
    max_args: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        exact = self.arity > 0
        object.__setattr__(self, "min_args", self.arity if exact else -self.arity)
        object.__setattr__(self, "max_args", self.arity if exact else 1 << 62)
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
        if self.first_key == 0:
            return range(0)
        last = self.last_key if self.last_key >= 0 else argc + self.last_key
        return range(self.first_key, min(last, argc - 1) + 1, self.key_step or 1)


class CommandTable:
    """Maps a command name, as the client spelt it, to its :class:`Command`.

    Names are stored lowercase and uppercase so the common spellings hit the dict directly;
    any other casing pays one ``bytes.lower()``.
    """

    __slots__ = ("by_name", "commands")

    def __init__(self, commands: Iterable[Command]) -> None:
        self.commands: dict[str, Command] = {c.name: c for c in commands}
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
