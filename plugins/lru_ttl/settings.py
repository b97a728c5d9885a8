"""The ``[plugins.lru_ttl]`` config table."""

from __future__ import annotations

from typing import Any

import attrs

from .eviction import ALLKEYS_LRU, POLICIES


def _non_negative_int(instance: Any, attribute: attrs.Attribute[int], value: Any) -> None:
    # bool is an int subclass; "capacity = true" is a typo, not a capacity of 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def _policy_name(instance: Any, attribute: attrs.Attribute[str], value: Any) -> None:
    if value not in POLICIES:
        raise ValueError(f"{attribute.name} must be one of {', '.join(POLICIES)}, "
                         f"got {value!r}")


@attrs.frozen(kw_only=True)
class LruTtlSettings:
    """Limits and default expiry of the ``lru_ttl`` storage engine.

    When a write takes the engine past either limit, keys are evicted by ``maxmemory_policy``
    until both hold again (see :mod:`distcache_plugins.lru_ttl.engine`). Both limits count every
    logical database together, as Redis's ``maxmemory`` does.
    """

    #: Most keys held at once (env ``CACHE_CAPACITY``); 0 means no limit on the key count.
    capacity: int = attrs.field(default=10000, validator=_non_negative_int)
    #: Most bytes held, counting keys, values and a per-key overhead
    #: (``distcache_plugins.lru_ttl.engine.cost_of``); 0 means no byte limit. Redis calls it
    #: ``maxmemory``.
    maxmemory_bytes: int = attrs.field(default=0, validator=_non_negative_int)
    #: What to evict at a limit, in Redis's words: ``allkeys-lru``, ``volatile-lru``,
    #: ``volatile-ttl``, ``allkeys-random`` or ``noeviction`` (writes past a limit are refused
    #: with ``-OOM``). Redis calls it ``maxmemory-policy``.
    maxmemory_policy: str = attrs.field(default=ALLKEYS_LRU, validator=_policy_name)
    #: Seconds to live given to keys written without an expiry (env ``TTL_DEFAULT``);
    #: 0 means such keys never expire.
    default_ttl_seconds: int = attrs.field(default=0, validator=_non_negative_int)
