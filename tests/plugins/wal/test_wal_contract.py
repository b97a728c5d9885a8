"""The shared persistence contract, run on the WAL under each fsync policy."""

from __future__ import annotations

from pathlib import Path

from distcache_core.contracts import StorageEngine
from distcache_core.testing.persistence_contract import PersistenceContract
from distcache_plugins.lru_ttl import LruTtlEngine
from distcache_plugins.wal import WalPersistence, WalSettings


def databases(count: int) -> list[StorageEngine]:
    """``count`` databases of one real lru_ttl engine, without a key limit."""
    root = LruTtlEngine(capacity=0)
    return [root.open_database(i) for i in range(count)]


class WalContract(PersistenceContract):
    role = "log"
    fsync = "everysec"

    def make_plugin(self, data_dir: Path) -> WalPersistence:
        return WalPersistence(WalSettings(fsync=self.fsync), data_dir)

    def make_databases(self, count: int) -> list[StorageEngine]:
        return databases(count)


class TestWalAlways(WalContract):
    fsync = "always"


class TestWalEverysec(WalContract):
    fsync = "everysec"


class TestWalNo(WalContract):
    fsync = "no"
