"""What persistence plugins build on, and how the node drives them.

* :class:`PersistenceManager`: the node's side (recovery order, checkpoints, the combined
  durability barrier, ``INFO persistence``).
* :class:`PersistenceStatus`: the two flags dispatch reads (``loading``, ``write_error``).
* :class:`KeyspaceImage`: a consistent image of the keyspace read in slices (snapshots and
  log rewrites); :class:`RecoveryTarget`: where a loader puts what it reads.
* :mod:`~distcache_core.persistence.codec`: the binary form of a mutation;
  :mod:`~distcache_core.persistence.files`: fsync, atomic rename, the data dir lock.
* :class:`PersistenceBase`: contract defaults for plugins.
"""

from __future__ import annotations

from .base import PersistenceBase
from .image import ImageAborted, KeyspaceImage
from .manager import PersistenceManager
from .recovery import RecoveryTarget
from .status import LOADING_ERROR, SNAPSHOT_WRITE_ERROR, PersistenceStatus, aof_write_error

__all__ = [
    "LOADING_ERROR",
    "SNAPSHOT_WRITE_ERROR",
    "ImageAborted",
    "KeyspaceImage",
    "PersistenceBase",
    "PersistenceManager",
    "PersistenceStatus",
    "RecoveryTarget",
    "aof_write_error",
]
