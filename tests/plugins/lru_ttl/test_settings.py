"""The [plugins.lru_ttl] config table and the plugin's registrations."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
import pluggy
import pytest

import distcache_plugins.lru_ttl as lru_ttl_plugin
from distcache_core import hookspecs
from distcache_plugins.lru_ttl import LruTtlEngine, LruTtlSettings


def test_defaults_match_the_seed() -> None:
    settings = LruTtlSettings()
    assert (settings.capacity, settings.maxmemory_bytes, settings.default_ttl_seconds) == (
        10000, 0, 0)


@pytest.mark.parametrize("field", ["capacity", "maxmemory_bytes", "default_ttl_seconds"])
@pytest.mark.parametrize("bad", [-1, True, 1.5, "10"])
def test_rejects_bad_values(field: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=field):
        LruTtlSettings(**{field: bad})


def test_maxmemory_policy() -> None:
    assert LruTtlSettings().maxmemory_policy == "allkeys-lru"
    engine = LruTtlEngine.from_settings(LruTtlSettings(maxmemory_policy="volatile-ttl"))
    assert engine.stats().maxmemory_policy == "volatile-ttl"
    for bad in ("allkeys_lru", "LRU", "", 1):
        with pytest.raises(ValueError, match="maxmemory_policy must be one of allkeys-lru, "):
            LruTtlSettings(maxmemory_policy=bad)


def test_zero_means_unlimited_and_is_allowed() -> None:
    settings = LruTtlSettings(capacity=0, maxmemory_bytes=0, default_ttl_seconds=0)
    engine = LruTtlEngine.from_settings(settings)
    for index in range(20_000):
        engine.set(b"k%d" % index, b"v")
    assert len(engine) == 20_000
    assert engine.ttl_ms(b"k0") == -1


def test_frozen_and_keyword_only() -> None:
    settings = LruTtlSettings(capacity=5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.capacity = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        LruTtlSettings(5)  # type: ignore[misc]


def test_structures_from_a_config_table() -> None:
    converter = cattrs.Converter(forbid_extra_keys=True)
    settings = converter.structure({"capacity": 3, "maxmemory_bytes": 4096}, LruTtlSettings)
    assert settings == LruTtlSettings(capacity=3, maxmemory_bytes=4096)


def test_plugin_registers_engine_and_config_section() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(lru_ttl_plugin)
    manager.check_pending()

    engines: dict[str, Any] = {}
    manager.hook.distcache_register_storage_engines(register=engines.__setitem__)
    sections: dict[str, tuple[type, dict[str, str]]] = {}

    def register_section(name: str, cls: type, env: dict[str, str] | None = None) -> None:
        sections[name] = (cls, env or {})

    manager.hook.distcache_config_sections(register=register_section)

    assert sections == {"lru_ttl": (LruTtlSettings, {
        "CACHE_CAPACITY": "capacity", "TTL_DEFAULT": "default_ttl_seconds"})}
    engine = engines["lru_ttl"](LruTtlSettings(capacity=1))
    assert isinstance(engine, LruTtlEngine)
    engine.set(b"a", b"1")
    engine.set(b"b", b"2")
    assert engine.keys() == [b"b"]
    assert isinstance(engines["lru_ttl"](None), LruTtlEngine)
