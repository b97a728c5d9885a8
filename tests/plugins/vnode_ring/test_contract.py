"""The shared HashStrategy contract, run on the vnode ring (default and the seed's 3 points)."""

from __future__ import annotations

from distcache_core.contracts import HashStrategy
from distcache_core.testing import HashStrategyContract
from distcache_plugins.vnode_ring import VnodeRing


class TestVnodeRingContract(HashStrategyContract):
    def make_strategy(self) -> HashStrategy:
        return VnodeRing.from_settings(None)


class TestFewPointsContract(HashStrategyContract):
    def make_strategy(self) -> HashStrategy:
        return VnodeRing(3)
