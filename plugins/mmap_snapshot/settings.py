"""The ``[plugins.mmap_snapshot]`` config table (the ``lmdb_snapshot`` table has the same
fields)."""

from __future__ import annotations

import attrs

from distcache_core.config import non_negative, positive


@attrs.frozen(kw_only=True)
class SnapshotSettings:
    """When snapshots are taken (as Redis's ``save`` rules) and how many are kept."""

    #: Take a snapshot when this long has passed since the last one and anything changed;
    #: 0 turns the timer off.
    interval_seconds: int = attrs.field(default=300, validator=non_negative)
    #: Take a snapshot as soon as this many writes (mutations, evictions and expirations
    #: included) happened since the last one; 0 turns it off.
    after_writes: int = attrs.field(default=100_000, validator=non_negative)
    #: Snapshots kept: the newest, and older ones to fall back on if it is damaged.
    keep: int = attrs.field(default=2, validator=positive)
    #: Take a snapshot at graceful shutdown when anything changed since the last one.
    on_shutdown: bool = True
