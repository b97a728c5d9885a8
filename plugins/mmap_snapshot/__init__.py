"""Snapshots as single binary files loaded through mmap, in ``<data_dir>/mmap_snapshot/``.

Registers the persistence plugin ``mmap_snapshot`` (``[node] persistence = ["wal",
"mmap_snapshot"]``) and its config table ``[plugins.mmap_snapshot]``
(:class:`SnapshotSettings`). The file format is in :mod:`.format`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distcache_core.hookspecs import hookimpl

from .plugin import MmapSnapshot
from .settings import SnapshotSettings

__all__ = ["MmapSnapshot", "SnapshotSettings"]

NAME = "mmap_snapshot"


@hookimpl
def distcache_register_persistence(register: Callable[[str, Any], None]) -> None:
    register(NAME, MmapSnapshot)


@hookimpl
def distcache_config_sections(register: Callable[..., None]) -> None:
    register(NAME, SnapshotSettings)
