"""The shared persistence contract, run on the WAL under each fsync policy."""

from __future__ import annotations

from pathlib import Path

from distcache_core.contracts import StorageEngine
from distcache_core.testing.persistence_contract import PersistenceContract
from distcache_plugins.lru_ttl import LruTtlEngine
from distcache_plugins.wal import WalPersistence, WalSettings


class _Engine(LruTtlEngine):
    """TEMPORARY until lru_ttl implements restore (engine branch)."""

    __slots__ = ()

    def restore(self, key: bytes, value: bytes, expire_at_ms: int | None) -> None:
        if expire_at_ms is not None and expire_at_ms <= self._clock_ms():
            self.delete(key)
            return
        self.set(key, value, expire_at_ms)
        if expire_at_ms is None:
            self.persist(key)


def databases(count: int) -> list[StorageEngine]:
    if hasattr(LruTtlEngine, "restore") and hasattr(LruTtlEngine, "open_database"):
        root = LruTtlEngine(capacity=0)
        return [root.open_database(i) for i in range(count)]
    return [_Engine(capacity=0) for _ in range(count)]


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
