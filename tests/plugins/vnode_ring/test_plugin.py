"""vnode_ring is loaded as a default plugin: its factory, its config table and the seed's
HASH_RING_VIRTUAL_NODES variable, as a node and the `distcache` command see them."""

from __future__ import annotations

import pytest

from distcache_core.config import ConfigSources, build_config
from distcache_core.contracts import HashStrategy
from distcache_core.errors import ConfigError
from distcache_core.plugins import Registry, load_plugins
from distcache_plugins.vnode_ring import VnodeRing, VnodeRingSettings


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.collect(load_plugins(autoload=False).pm)


def settings_from(registry: Registry, sets=(), environ=None) -> VnodeRingSettings:
    sources = ConfigSources.gather(None, list(sets), environ=environ or {})
    return build_config(sources, registry.config_sections).plugin_settings("vnode_ring")


def test_registered_by_the_default_plugin(registry):
    registration = registry.hash_strategies["vnode_ring"]
    assert registration.plugin == "distcache_plugins.vnode_ring"
    ring = registration.obj(settings_from(registry))
    assert isinstance(ring, VnodeRing) and ring.virtual_nodes == 160
    strategy: HashStrategy = ring  # the contract's methods, statically checked by mypy
    strategy.add_node("a")
    assert strategy.owner(b"k") == "a" and strategy.preference_list(b"k", 2) == ["a"]


def test_virtual_nodes_from_env_file_and_flag(registry):
    assert settings_from(registry).virtual_nodes == 160
    assert settings_from(registry, environ={"HASH_RING_VIRTUAL_NODES": "3"}).virtual_nodes == 3
    assert settings_from(registry, ["plugins.vnode_ring.virtual_nodes=64"],
                         {"HASH_RING_VIRTUAL_NODES": "3"}).virtual_nodes == 64
    ring = registry.hash_strategies["vnode_ring"].obj(
        settings_from(registry, environ={"HASH_RING_VIRTUAL_NODES": "3"}))
    ring.add_node("a")
    assert len(ring.points()) == 3


@pytest.mark.parametrize("value,expected", [
    ("0", "plugins.vnode_ring.virtual_nodes = 0 (from env HASH_RING_VIRTUAL_NODES): "
          "expected an integer from 1 to 65536"),
    ("lots", "plugins.vnode_ring.virtual_nodes = 'lots' (from env HASH_RING_VIRTUAL_NODES): "
             "expected an integer"),
])
def test_bad_virtual_nodes_names_the_variable(registry, value, expected):
    with pytest.raises(ConfigError) as info:
        settings_from(registry, environ={"HASH_RING_VIRTUAL_NODES": value})
    assert expected in str(info.value)


def test_cli_lists_the_strategy_and_rejects_a_bad_value(cli):
    assert "distcache_plugins.vnode_ring  (default)\n    hash strategy: vnode_ring\n" in \
        cli("plugins").stdout
    result = cli("check-config", env={"HASH_RING_VIRTUAL_NODES": "-1"})
    assert result.returncode == 2
    assert "plugins.vnode_ring.virtual_nodes = -1 (from env HASH_RING_VIRTUAL_NODES)" in \
        result.stderr
