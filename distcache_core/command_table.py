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
