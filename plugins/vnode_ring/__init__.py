"""The default hash strategy: a consistent-hash ring with virtual nodes on xxh3.

Registers the factory ``vnode_ring`` (``[cluster] hashing = "vnode_ring"``) and the config table
``[plugins.vnode_ring]`` (:class:`VnodeRingSettings`), whose ``virtual_nodes`` the seed's
``HASH_RING_VIRTUAL_NODES`` environment variable still sets. The ring itself is
:class:`VnodeRing` (``ring.py``); README's Cluster section says why 160 points per node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from distcache_core.hookspecs import hookimpl

from .ring import EmptyRingError, VnodeRing, key_hash
from .settings import VnodeRingSettings

__all__ = ["EmptyRingError", "VnodeRing", "VnodeRingSettings", "key_hash"]

STRATEGY_NAME = "vnode_ring"

if TYPE_CHECKING:  # mypy holds the plugin to its contract
    from distcache_core.contracts import HashStrategy

    _strategy: HashStrategy = VnodeRing()


@hookimpl
def distcache_register_hash_strategies(register: Callable[[str, Any], None]) -> None:
    register(STRATEGY_NAME, VnodeRing.from_settings)


@hookimpl
def distcache_config_sections(register: Callable[..., None]) -> None:
    register(STRATEGY_NAME, VnodeRingSettings, env={"HASH_RING_VIRTUAL_NODES": "virtual_nodes"})
