"""GREET [name]: a command added by a plugin that lives outside DistCache.

    $ redis-cli GREET
    "Hello, world!"
    $ redis-cli GREET Ada
    "Hello, Ada!"
    $ redis-cli GREET Ada Lovelace
    (error) ERR wrong number of arguments for 'greet' command
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distcache_core import Command, hookimpl


def greet(conn: Any, argv: list[bytes]) -> bytes:
    name = argv[1] if len(argv) > 1 else b"world"
    return b"Hello, " + name + b"!"


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    register(Command(name="greet", handler=greet, arity=-1, flags={"readonly", "fast"},
                     summary="Greets the caller (example plugin)."))
