"""Commands that look inside keys and the node: OBJECT, MONITOR, DEBUG (MEMORY is in
:mod:`.memory`).

Replies follow Redis 7.0 (``src/object.c``, ``src/debug.c``). A value's encoding is derived
from its bytes as Redis chooses it when a string is stored: ``int`` for a canonical 64-bit
integer of at most 20 characters, ``embstr`` up to 44 bytes, ``raw`` beyond. (Redis keeps
``raw`` for a value that APPEND or SETRANGE changed in place; DistCache stores whole values and
reports what a SET of the same bytes would give.) What the storage engine does not track it
does not invent: OBJECT IDLETIME needs an engine that records access times (``lru_ttl`` keeps
the LRU order, not times), OBJECT FREQ an LFU policy (none, as Redis under an LRU policy).
A time per key in ``lru_ttl`` was measured and not taken: a second dict stored to on every
use, from a clock the expiry cron ticks, cost +2.3% instructions per GET and per SET
(20,052 -> 20,511 and 21,629 -> 22,121, ``bench/count_instructions.py``) and 42-52 bytes per
key (+14-17% of the engine's per-key overhead), for a figure only OBJECT IDLETIME reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from ..command_table import Command, Subcommand, subcommand_handler
from ..errors import NO_SUCH_KEY, CommandError
from ..hookspecs import hookimpl
from ..protocol import string2ll
from ..replies import NO_REPLY, OK

#: Redis shares the integer objects 0..9999 (``OBJ_SHARED_INTEGERS``) unless maxmemory with an
#: LRU/LFU policy needs per-object access data; OBJECT REFCOUNT then reports INT_MAX.
SHARED_INTEGERS: Final = 10000
SHARED_REFCOUNT: Final = 2**31 - 1
EMBSTR_MAX_BYTES: Final = 44
NO_LFU: Final = ("ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
                 "Please note that when switching between policies at runtime LRU and LFU "
                 "data will take some time to adjust.")
DEBUG_DISABLED: Final = (
    "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", "
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server.")


def encoding_of(value: bytes) -> str:
    if len(value) <= 20 and string2ll(value) is not None:
        return "int"
    return "embstr" if len(value) <= EMBSTR_MAX_BYTES else "raw"


def refcount_of(conn: Any, value: bytes) -> int:
    stats = conn.node.engine.stats()
    number = string2ll(value) if len(value) <= 20 else None
    shared = not stats.maxmemory_bytes or not stats.maxmemory_policy.endswith(("-lru", "-lfu"))
    if number is not None and 0 <= number < SHARED_INTEGERS and shared:
        return SHARED_REFCOUNT
    return 1


def _object_encoding(conn: Any, argv: list[bytes]) -> Any:
    value = conn.engine.peek(argv[2])
    return None if value is None else encoding_of(value).encode()


def _object_refcount(conn: Any, argv: list[bytes]) -> Any:
    value = conn.engine.peek(argv[2])
    return None if value is None else refcount_of(conn, value)


def _object_idletime(conn: Any, argv: list[bytes]) -> Any:
    engine = conn.engine
    if engine.peek(argv[2]) is None:
        return None
    idle = getattr(engine, "idle_seconds", None)
    if idle is None:
        raise CommandError(f"ERR the storage engine {conn.node.config.node.storage!r} does not "
                           f"record access times, so idle time is not tracked")
    return idle(argv[2])


def _object_freq(conn: Any, argv: list[bytes]) -> Any:
    if conn.engine.peek(argv[2]) is None:
        return None
    raise CommandError(NO_LFU)  # no engine offers an LFU policy (yet)


OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]

_READ = frozenset({"readonly"})
OBJECT_SUBCOMMANDS = (
    Subcommand(name="encoding", arity=3, handler=_object_encoding, flags=_READ,
               first_key=2, last_key=2, key_step=1, key_flags=("RO",),
               summary="Returns the internal encoding of a Redis object."),
    Subcommand(name="freq", arity=3, handler=_object_freq, flags=_READ,
               first_key=2, last_key=2, key_step=1, key_flags=("RO",),
               summary="Returns the logarithmic access frequency counter of a Redis object."),
    Subcommand(name="help", arity=2, handler=lambda conn, argv: OBJECT_HELP,
               flags={"loading", "stale"},
               summary="Returns helpful text about the different subcommands."),
    Subcommand(name="idletime", arity=3, handler=_object_idletime, flags=_READ,
               first_key=2, last_key=2, key_step=1, key_flags=("RO",),
               summary="Returns the time since the last access to a Redis object."),
    Subcommand(name="refcount", arity=3, handler=_object_refcount, flags=_READ,
               first_key=2, last_key=2, key_step=1, key_flags=("RO",),
               summary="Returns the reference count of a value of a key."),
)


def monitor(conn: Any, argv: list[bytes]) -> Any:
    monitors = conn.server.monitors
    if conn in monitors:
        return NO_REPLY  # Redis ignores a second MONITOR
    monitors.add(conn)
    return OK


def debug(conn: Any, argv: list[bytes]) -> Any:
    if not conn.node.config.node.enable_debug_command:
        raise CommandError(DEBUG_DISABLED)
    sub = argv[1].lower()
    if sub == b"sleep" and len(argv) == 3:
        # Blocks the whole node, as Redis's does: what DEBUG SLEEP is for (testing timeouts).
        try:
            seconds = float(argv[2])
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            time.sleep(seconds)
        return OK
    if sub == b"object" and len(argv) == 3:
        value = conn.engine.peek(argv[2])
        if value is None:
            raise CommandError(NO_SUCH_KEY)
        return (f"Value at:0x{id(value):x} refcount:{refcount_of(conn, value)} "
                f"encoding:{encoding_of(value)} serializedlength:{len(value)}")
    if sub == b"help":
        return ["DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "OBJECT <key>", "    Show low level info about `key` and associated value.",
                "SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed.",
                "HELP", "    Prints this help."]
    name = argv[1].decode("utf-8", "replace")[:128]
    raise CommandError(f"ERR unknown subcommand or wrong number of arguments for '{name}'. "
                       f"Try DEBUG HELP.")


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    # Flags, arity and key positions as Redis 7.0's COMMAND INFO reports them.
    admin = {"admin", "noscript", "loading", "stale"}
    for command in (
        Command(name="object", handler=subcommand_handler("object", OBJECT_SUBCOMMANDS),
                arity=-2, group="generic", subcommands=OBJECT_SUBCOMMANDS,
                summary="A container for object introspection commands."),
        Command(name="monitor", handler=monitor, arity=1, flags=admin, group="server",
                summary="Listens for all requests received by the server in real-time."),
        Command(name="debug", handler=debug, arity=-2, flags=admin, group="server",
                summary="A container for debugging commands (node.enable_debug_command)."),
    ):
        register(command)
