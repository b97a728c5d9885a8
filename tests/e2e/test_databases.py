"""Logical databases on a real node, with real clients: redis-py's ``db=`` and URLs, SELECT per
connection, SWAPDB seen by every client, the mutation stream carrying the database, and the
node-wide limits (the byte-for-byte replies are in ``redis_corpus/databases.py``)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from distcache_core.mutations import Mutation, Op, replay
from distcache_plugins.lru_ttl import LruTtlEngine


def test_redis_py_db_argument_and_url(node) -> None:
    zero = redis.Redis(port=node.port, socket_timeout=5)
    three = redis.Redis(port=node.port, db=3, socket_timeout=5)
    one = redis.Redis.from_url(f"redis://127.0.0.1:{node.port}/1", socket_timeout=5)
    try:
        zero.set("k", "zero")
        three.set("k", "three")
        one.set("k", "one")
        assert (zero.get("k"), one.get("k"), three.get("k")) == (b"zero", b"one", b"three")
        assert [zero.dbsize(), one.dbsize(), three.dbsize()] == [1, 1, 1]
        # redis-py reconnects and selects the database again: the choice is per connection.
        three.connection_pool.disconnect()
        assert three.get("k") == b"three"
        assert three.client_info()["db"] == 3
        listed = {int(c["id"]): c["db"] for c in zero.client_list()}
        assert listed[three.client_id()] == "3" and listed[zero.client_id()] == "0"
        info = zero.info("keyspace")
        assert {name: fields["keys"] for name, fields in info.items()} == {
            "db0": 1, "db1": 1, "db3": 1}
        zero.flushall()
        assert zero.info("keyspace") == {}
        assert [zero.dbsize(), one.dbsize(), three.dbsize()] == [0, 0, 0]
    finally:
        for client in (zero, one, three):
            client.close()


def test_swapdb_is_seen_by_every_client_of_both_databases(node) -> None:
    first = redis.Redis(port=node.port, db=1, socket_timeout=5)
    second = redis.Redis(port=node.port, db=2, socket_timeout=5)
    zero = redis.Redis(port=node.port, socket_timeout=5)
    try:
        first.set("who", "one")
        second.set("who", "two")
        zero.set("who", "zero")
        assert zero.swapdb(1, 2)
        assert (first.get("who"), second.get("who")) == (b"two", b"one")
        # With database 0 (whose keys the engine stores differently), both ways.
        assert zero.swapdb(0, 1)
        assert (zero.get("who"), first.get("who")) == (b"two", b"zero")
        first.set("new", "x")
        assert zero.swapdb(1, 0)
        assert (zero.get("who"), zero.get("new"), first.get("who")) == (b"zero", b"x", b"two")
    finally:
        for client in (first, second, zero):
            client.close()


def test_mutation_stream_keeps_keys_in_their_database(node) -> None:
    """Replaying what the node emitted (SELECT, MOVE, SWAPDB, COPY DB, FLUSHDB) gives the
    node's keyspace, database by database."""
    recorded: list[Mutation] = []
    node.call(lambda: node.node.mutations.subscribe(recorded.append))
    client = redis.Redis(port=node.port, socket_timeout=5)
    other = redis.Redis(port=node.port, db=4, socket_timeout=5)
    try:
        client.set("a", "1")
        client.set("t", "v", ex=500)
        client.move("t", 4)
        client.copy("a", "a", destination_db=5)
        other.set("b", "2")
        other.set("c", "3")
        client.swapdb(4, 0)
        other.delete("b")  # in database 0 now: a no-op here
        client.swapdb(5, 6)
        other.flushdb()
        other.set("after", "flush")
    finally:
        client.close()
        other.close()

    def compare() -> tuple[list[Any], list[Any]]:
        databases = node.node.databases
        fresh = LruTtlEngine(capacity=0)
        copies = [fresh] + [fresh.open_database(i) for i in range(1, databases.count)]
        replay(list(recorded), copies)
        want = [sorted(engine.items()) for _, engine in databases.opened()]
        got = [sorted(copies[index].items()) for index, _ in databases.opened()]
        return want, got

    want, got = node.call(compare)
    assert got == want
    ops = [(m.op, m.db) for m in recorded if m.op in (Op.SWAPDB, Op.FLUSHDB)]
    assert ops == [(Op.SWAPDB, 4), (Op.SWAPDB, 5), (Op.FLUSHDB, 4)]
    assert any(m.db == 4 and m.key == b"t" for m in recorded)


def test_capacity_bounds_the_node_across_databases(make_node) -> None:
    node = make_node("plugins.lru_ttl.capacity=4")
    clients = [redis.Redis(port=node.port, db=index, socket_timeout=5) for index in range(3)]
    try:
        for round_ in range(3):
            for index, client in enumerate(clients):
                client.set(f"k{round_}", index)
        # One LRU order across databases: the 4 most recent writes survive, wherever they are.
        assert sum(client.dbsize() for client in clients) == 4
        assert clients[2].get("k2") == b"2" and clients[0].get("k0") is None
        assert int(clients[0].info("stats")["evicted_keys"]) == 5
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("databases", [1, 4])
def test_node_databases_setting(make_node, databases: int) -> None:
    node = make_node(f"node.databases={databases}")
    client = redis.Redis(port=node.port, socket_timeout=5)
    try:
        assert client.config_get("databases") == {"databases": str(databases)}
        assert client.execute_command("SELECT", databases - 1)
        with pytest.raises(redis.ResponseError, match="DB index is out of range"):
            client.execute_command("SELECT", databases)
        with pytest.raises(redis.ResponseError, match="DB index is out of range"):
            client.swapdb(0, databases)
    finally:
        client.close()
