"""The WATCH registry's bookkeeping, on a real engine family and mutation stream (the rules it
implements are compared with redis-server in ``tests/e2e/redis_corpus/transactions.py``):
whatever clients watch, write, flush, swap and unwatch, its two indexes agree, it drops a
client once dirty, and it listens to the stream only while some key is watched."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from distcache_core.databases import Databases
from distcache_core.mutations import MutationStream
from distcache_core.watch import WatchRegistry
from distcache_plugins.lru_ttl import LruTtlEngine


class Client:
    """What the registry reads of a connection: its database and engine, and the node's
    databases."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.db = 0
        self.engine = node.databases[0]

    def select(self, index: int) -> None:
        self.db, self.engine = index, self.node.databases[index]


class Node:
    def __init__(self) -> None:
        self.engine = LruTtlEngine(capacity=0)
        self.databases = Databases(self.engine, 3)
        self.mutations = MutationStream()
        self.mutations.bind(self.databases.set_listener)


KEYS = st.sampled_from([b"a", b"b", b""])
STEP = st.one_of(
    st.tuples(st.just("watch"), st.integers(0, 2), st.lists(KEYS, min_size=1, max_size=3)),
    st.tuples(st.just("select"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("set"), st.integers(0, 2), KEYS),
    st.tuples(st.just("delete"), st.integers(0, 2), KEYS),
    st.tuples(st.just("flushdb"), st.integers(0, 2)),
    st.tuples(st.just("swap"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("unwatch"), st.integers(0, 2)),
    st.tuples(st.just("exec"), st.integers(0, 2)),
)


def check_consistent(registry: WatchRegistry) -> None:
    pairs = {(db, key, conn) for conn, keys in registry._keys_of.items() for db, key in keys}
    indexed = {(db, key, conn) for db, by_key in registry._by_db.items()
               for key, entry in by_key.items() for conn in entry.clients}
    assert pairs == indexed
    assert all(by_key for by_key in registry._by_db.values())
    assert not registry._dirty & set(registry._keys_of)  # a dirty client watches nothing


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, max_size=40))
def test_bookkeeping(steps: list[tuple[Any, ...]]) -> None:
    async def run() -> None:
        node = Node()
        registry = WatchRegistry(node.mutations)
        clients = [Client(node) for _ in range(3)]
        for name, *args in steps:
            client = clients[args[0]]
            if name == "watch":
                registry.watch(client, args[1])
            elif name == "select":
                client.select(args[1])
            elif name == "set":
                client.engine.set(args[1], b"v")
            elif name == "delete":
                client.engine.delete(args[1])
            elif name == "flushdb":
                client.engine.clear()
            elif name == "swap":
                registry.before_swap(node.databases, args[0], args[1])
                node.databases.swap(args[0], args[1])
                for each in clients:
                    each.engine = node.databases[each.db]
            elif name == "unwatch":
                registry.unwatch(client)
            elif name == "exec":
                registry.is_dirty(client)
                registry.unwatch(client)
            check_consistent(registry)
            await asyncio.sleep(0)  # the deferred unsubscribe
            assert node.mutations.active == bool(registry._keys_of)

    asyncio.run(run())


def test_a_write_makes_every_watcher_dirty_and_forgotten() -> None:
    async def run() -> None:
        node = Node()
        registry = WatchRegistry(node.mutations)
        first, second, bystander = Client(node), Client(node), Client(node)
        registry.watch(first, [b"k", b"j"])
        registry.watch(second, [b"k"])
        registry.watch(bystander, [b"other"])
        first.engine.set(b"k", b"v")
        assert registry.is_dirty_now(first) and registry.is_dirty_now(second)
        assert not registry.is_dirty_now(bystander)
        assert registry.watching(first) == registry.watching(second) == 0
        assert set(registry._by_db[0]) == {b"other"}
        registry.unwatch(bystander)
        await asyncio.sleep(0)
        assert not node.mutations.active
        registry.unwatch(first)
        assert not registry.is_dirty_now(first) and registry.is_dirty_now(second)

    asyncio.run(run())
