"""The write-ahead log: every applied write as a checksummed record in ``<data_dir>/wal/``.

Registers the persistence plugin ``wal`` (``[node] persistence = ["wal", ...]``) and its
config table ``[plugins.wal]`` (:class:`WalSettings`). The format is in :mod:`.format`, the
directory layout in :mod:`.segments`, recovery's judgement of damage in :mod:`.reader`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distcache_core.hookspecs import hookimpl

from .plugin import WalPersistence
from .settings import WalSettings

__all__ = ["WalPersistence", "WalSettings"]

NAME = "wal"


@hookimpl
def distcache_register_persistence(register: Callable[[str, Any], None]) -> None:
    register(NAME, WalPersistence)


@hookimpl
def distcache_config_sections(register: Callable[..., None]) -> None:
    register(NAME, WalSettings)
