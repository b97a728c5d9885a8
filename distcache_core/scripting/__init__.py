"""Lua scripting, as Redis 7.0 has it: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.

A default plugin like the other built-in command modules. The parts:

- ``sandbox.lua`` and :mod:`.lua`: a Lua 5.1 state (``lupa.lua51``, the Lua Redis embeds)
  with Redis's sandbox and the Lua <-> RESP conversions; ``cjson.lua`` and ``bit.lua``: the
  cjson and bit libraries of Redis's Lua, in Lua;
- :mod:`.calls`: ``redis.call`` through the node's command table, with Redis's checks;
- :mod:`.runner`: scripts run on a worker thread, so the node answers ``-BUSY`` (and obeys
  SCRIPT KILL) while one runs past ``node.lua_time_limit_ms``; :mod:`.busy` does the refusing;
- :mod:`.commands`: the command handlers and the script cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..command_table import Command, Subcommand, subcommand_handler
from ..hookspecs import hookimpl
from .commands import (
    eval_,
    eval_ro,
    evalsha,
    evalsha_ro,
    script_debug,
    script_exists,
    script_flush,
    script_help,
    script_kill,
    script_load,
    stop_scripting,
)

#: Flags and subcommands as Redis 7.0 reports them (COMMAND INFO).
SCRIPT_SUBCOMMANDS = (
    Subcommand(name="debug", arity=3, handler=script_debug, flags={"noscript"},
               summary="Set the debug mode for executed scripts."),
    Subcommand(name="exists", arity=-3, handler=script_exists, flags={"noscript"},
               summary="Check existence of scripts in the script cache."),
    Subcommand(name="flush", arity=-2, handler=script_flush, flags={"noscript"},
               summary="Remove all the scripts from the script cache."),
    Subcommand(name="help", arity=2, handler=script_help, flags={"loading", "stale"},
               summary="Show helpful text about the different subcommands"),
    Subcommand(name="kill", arity=2, handler=script_kill, flags={"noscript", "allow_busy"},
               summary="Kill the script currently in execution."),
    Subcommand(name="load", arity=3, handler=script_load, flags={"noscript", "stale"},
               summary="Load the specified Lua script into the script cache."),
)


_ATOI = re.compile(rb"[ \t\n\v\f\r]*[+-]?[0-9]+")


def _script_keys(flags: str) -> Callable[[list[bytes]], list[tuple[int, str]]]:
    """The numkeys arguments after the script, or none when numkeys is not a count of the
    arguments there (Redis's ``evalGetKeys``, which reads numkeys with ``atoi``)."""
    def find_keys(argv: list[bytes]) -> list[tuple[int, str]]:
        digits = _ATOI.match(argv[2])
        numkeys = int(digits.group()) if digits else 0
        if not 0 < numkeys <= len(argv) - 3:
            return []
        return [(position, flags) for position in range(3, 3 + numkeys)]
    return find_keys


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    group = "scripting"
    # The keys are the numkeys arguments after the script (movable): COMMAND INFO reports
    # 0 0 0 for the positions, as Redis does.
    evaluate = {"noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}
    write_keys, read_keys = _script_keys("RW access update"), _script_keys("RO access")
    for name, handler, flags, find_keys, summary in (
        ("eval", eval_, evaluate, write_keys, "Execute a Lua script server side"),
        ("evalsha", evalsha, evaluate, write_keys, "Execute a Lua script server side"),
        ("eval_ro", eval_ro, evaluate | {"readonly"}, read_keys,
         "Execute a read-only Lua script server side"),
        ("evalsha_ro", evalsha_ro, evaluate | {"readonly"}, read_keys,
         "Execute a read-only Lua script server side"),
    ):
        register(Command(name=name, handler=handler, arity=-3, flags=flags, group=group,
                         find_keys=find_keys, summary=summary))
    register(Command(name="script", handler=subcommand_handler("script", SCRIPT_SUBCOMMANDS),
                     arity=-2, group=group, subcommands=SCRIPT_SUBCOMMANDS,
                     summary="A container for Lua scripts management commands"))


@hookimpl
def distcache_node_stopping(node: Any) -> None:
    server = getattr(node, "server", None)
    if server is not None:
        stop_scripting(server)
