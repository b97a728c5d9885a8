"""The ``[plugins.wal]`` config table."""

from __future__ import annotations

import attrs

from distcache_core.config import non_negative, one_of, positive

FSYNC_POLICIES = ("always", "everysec", "no")


@attrs.frozen(kw_only=True)
class WalSettings:
    """How the write-ahead log syncs, rolls and rewrites itself."""

    #: ``always``: a write is acknowledged once its record is on disk (all writes of one loop
    #: turn share one write and one fsync); ``everysec``: records reach the OS at once and
    #: the disk within about a second; ``no``: the OS decides when (Redis ``appendfsync``).
    fsync: str = attrs.field(default="everysec", validator=one_of(*FSYNC_POLICIES))
    #: A log segment is closed and a new one started past this size, so compaction can drop
    #: old records a segment at a time.
    segment_max_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=positive)
    #: Rewrite the log (as BGREWRITEAOF does) when it has grown by this percentage since the
    #: last rewrite or compaction; 0 never does (Redis ``auto-aof-rewrite-percentage``).
    auto_rewrite_percentage: int = attrs.field(default=100, validator=non_negative)
    #: ... and is at least this big (Redis ``auto-aof-rewrite-min-size``).
    auto_rewrite_min_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=non_negative)
