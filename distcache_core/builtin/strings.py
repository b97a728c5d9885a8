"""Placeholder: being written (see the commands helper)."""

from __future__ import annotations

from collections.abc import Callable

from ..command_table import Command
from ..hookspecs import hookimpl


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    return None
