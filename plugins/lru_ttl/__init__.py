"""The default storage engine: an LRU keyspace with Redis-style lazy and active expiry.

Registers the engine factory ``lru_ttl`` (``[node] storage = "lru_ttl"``) and the config table
``[plugins.lru_ttl]`` (:class:`LruTtlSettings`), whose ``capacity`` and ``default_ttl_seconds``
the seed's ``CACHE_CAPACITY`` and ``TTL_DEFAULT`` environment variables still set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distcache_core.hookspecs import hookimpl

from .engine import LruTtlEngine
from .settings import LruTtlSettings

__all__ = ["LruTtlEngine", "LruTtlSettings"]

ENGINE_NAME = "lru_ttl"


@hookimpl
def distcache_register_storage_engines(register: Callable[[str, Any], None]) -> None:
    register(ENGINE_NAME, LruTtlEngine.from_settings)


@hookimpl
def distcache_config_sections(register: Callable[..., None]) -> None:
    register(
        ENGINE_NAME,
        LruTtlSettings,
        env={"CACHE_CAPACITY": "capacity", "TTL_DEFAULT": "default_ttl_seconds"},
    )
