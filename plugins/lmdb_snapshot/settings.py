"""The ``[plugins.lmdb_snapshot]`` config table."""

from __future__ import annotations

import attrs

from distcache_core.config import non_negative, positive


@attrs.frozen(kw_only=True)
class LmdbSnapshotSettings:
    """When snapshots are taken (as Redis's ``save`` rules), how many are kept, how big the
    LMDB map may grow."""

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
    #: LMDB's map size: the most a snapshot may hold. Address space only (the file grows
    #: with the data), so the default is generous.
    map_size_bytes: int = attrs.field(default=256 * 1024**3, validator=positive)
