"""Snapshots as LMDB environments in ``<data_dir>/lmdb_snapshot/``, for operators who want
to open them with LMDB tools (``mdb_stat``, ``mdb_dump``; the layout is in :mod:`.layout`).

Registers the persistence plugin ``lmdb_snapshot`` and its config table
``[plugins.lmdb_snapshot]`` (:class:`LmdbSnapshotSettings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distcache_core.hookspecs import hookimpl

from .plugin import LmdbSnapshot
from .settings import LmdbSnapshotSettings

__all__ = ["LmdbSnapshot", "LmdbSnapshotSettings"]

NAME = "lmdb_snapshot"


@hookimpl
def distcache_register_persistence(register: Callable[[str, Any], None]) -> None:
    register(NAME, LmdbSnapshot)


@hookimpl
def distcache_config_sections(register: Callable[..., None]) -> None:
    register(NAME, LmdbSnapshotSettings)
