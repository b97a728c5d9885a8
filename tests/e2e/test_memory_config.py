"""maxmemory and maxmemory-policy: set in config or at run time with CONFIG SET (through the
engine's ``configure``), and reported as in force by CONFIG GET and INFO memory."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from distcache_core import hookimpl
from distcache_plugins.lru_ttl import LruTtlEngine


def test_config_file_values_are_reported(make_node) -> None:
    node = make_node("plugins.lru_ttl.maxmemory_bytes=5000000",
                     "plugins.lru_ttl.maxmemory_policy='volatile-ttl'")
    client = redis.Redis(port=node.port, socket_timeout=5)
    try:
        assert client.config_get("maxmemory*") == {"maxmemory": "5000000",
                                                   "maxmemory-policy": "volatile-ttl"}
        memory = client.info("memory")
        assert (memory["maxmemory"], memory["maxmemory_policy"]) == (5000000, "volatile-ttl")
        assert memory["maxmemory_human"] == "4.77M"
    finally:
        client.close()


def test_config_set_changes_the_engine_at_run_time(r) -> None:
    for index in range(200):
        r.set(f"k{index}", "x" * 1000)
    used = r.info("memory")["used_memory"]
    assert r.config_set("maxmemory", "100kb")
    # Lowering the limit evicts at once, by the policy in force.
    memory = r.info("memory")
    assert memory["maxmemory"] == 102400 and memory["used_memory"] <= 102400 < used
    assert int(r.info("stats")["evicted_keys"]) > 0
    assert r.config_get("maxmemory") == {"maxmemory": "102400"}
    assert r.config_set("maxmemory-policy", "noeviction")
    assert r.info("memory")["maxmemory_policy"] == "noeviction"
    with pytest.raises(redis.exceptions.OutOfMemoryError):  # -OOM
        for index in range(200):
            r.set(f"new{index}", "x" * 1000)
    with pytest.raises(redis.ResponseError, match="does not support allkeys-lfu"):
        r.config_set("maxmemory-policy", "allkeys-lfu")
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert r.config_set("maxmemory", "0")
    r.set("fits-again", "x" * 1000)


class FixedLimitsEngine(LruTtlEngine):
    """An engine whose limits cannot change at run time (it has no ``configure``)."""

    __slots__ = ()
    configure = None  # type: ignore[assignment]


def test_an_engine_without_configure_refuses_clearly(make_node) -> None:
    def build(settings: Any) -> LruTtlEngine:
        engine = LruTtlEngine(capacity=0)
        engine.__class__ = FixedLimitsEngine
        return engine

    class Plugin:
        @hookimpl
        def distcache_register_storage_engines(self, register: Any) -> None:
            register("fixed", build)

    node = make_node("node.storage='fixed'", extra_plugins=[("fixed-limits", Plugin())])
    client = redis.Redis(port=node.port, socket_timeout=5)
    try:
        with pytest.raises(redis.ResponseError) as error:
            client.config_set("maxmemory", "1mb")
        assert str(error.value) == (
            "CONFIG SET failed (possibly related to argument 'maxmemory') - the storage "
            "engine 'fixed' cannot change its memory limits at run time")
        assert client.config_get("maxmemory") == {"maxmemory": "0"}
    finally:
        client.close()
