"""The engine's mutation stream on a real node, driven by real clients.

Replaying what the engine reported into an empty engine must give exactly the node's keyspace,
values and expiry times, after any mix of write commands (hypothesis picks them); evictions and
expirations must show as deletions with their cause.

The test subscribes by handing the node's engine a listener on the node's own loop
(``engine.set_listener``), which is what the node's mutation stream does for its subscribers.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distcache_core.mutations import Cause, Mutation, Op, replay
from distcache_plugins.lru_ttl import LruTtlEngine


def listen(node: Any) -> list[Mutation]:
    """Start recording the node's mutations; the list fills on the node's loop thread."""
    recorded: list[Mutation] = []
    node.call(lambda: node.node.engine.set_listener(recorded.append))
    return recorded


def taken(node: Any, recorded: list[Mutation]) -> list[Mutation]:
    """What was recorded so far, copied and cleared on the node's loop (no race with it)."""
    def take() -> list[Mutation]:
        copy = list(recorded)
        recorded.clear()
        return copy
    return node.call(take)


KEYS = st.sampled_from(["a", "b", "c", "n", "x:1"])
VALUES = st.sampled_from(["1", "-7", "v", "", "3.5", "zz" * 40])
SECONDS = st.integers(min_value=100, max_value=5000)


def _far(seconds: int) -> int:
    return int(time.time()) + seconds


WRITES = st.one_of(
    st.tuples(st.just("SET"), KEYS, VALUES),
    st.tuples(st.just("SET"), KEYS, VALUES, st.just("EX"), SECONDS),
    st.tuples(st.just("SET"), KEYS, VALUES, st.just("PX"), SECONDS.map(lambda s: s * 1000)),
    st.tuples(st.just("SET"), KEYS, VALUES, st.just("EXAT"), SECONDS.map(_far)),
    st.tuples(st.just("SET"), KEYS, VALUES, st.just("PXAT"), st.just(1)),  # already past
    st.tuples(st.just("SET"), KEYS, VALUES, st.sampled_from(["NX", "XX", "KEEPTTL", "GET"])),
    st.tuples(st.just("SETNX"), KEYS, VALUES),
    st.tuples(st.just("SETEX"), KEYS, SECONDS, VALUES),
    st.tuples(st.just("PSETEX"), KEYS, SECONDS.map(lambda s: s * 1000), VALUES),
    st.tuples(st.just("GETSET"), KEYS, VALUES),
    st.tuples(st.just("GETDEL"), KEYS),
    st.tuples(st.just("GETEX"), KEYS, st.just("EX"), SECONDS),
    st.tuples(st.just("GETEX"), KEYS, st.just("PERSIST")),
    st.tuples(st.just("MSET"), KEYS, VALUES, KEYS, VALUES),
    st.tuples(st.just("MSETNX"), KEYS, VALUES, KEYS, VALUES),
    st.tuples(st.just("APPEND"), KEYS, VALUES),
    st.tuples(st.just("SETRANGE"), KEYS, st.integers(min_value=0, max_value=20), VALUES),
    st.tuples(st.sampled_from(["INCR", "DECR"]), KEYS),
    st.tuples(st.sampled_from(["INCRBY", "DECRBY"]), KEYS, st.integers(-100, 100)),
    st.tuples(st.just("INCRBYFLOAT"), KEYS, st.sampled_from(["0.5", "-2", "1e3"])),
    st.tuples(st.sampled_from(["DEL", "UNLINK"]), KEYS, KEYS),
    st.tuples(st.sampled_from(["EXPIRE", "PEXPIRE"]), KEYS, SECONDS),
    st.tuples(st.just("EXPIRE"), KEYS, st.sampled_from([-1, 0])),  # deletes
    st.tuples(st.just("EXPIREAT"), KEYS, SECONDS.map(_far), st.sampled_from(["NX", "XX", "GT",
                                                                             "LT"])),
    st.tuples(st.just("PEXPIREAT"), KEYS, SECONDS.map(lambda s: _far(s) * 1000)),
    st.tuples(st.just("PERSIST"), KEYS),
    st.tuples(st.sampled_from(["RENAME", "RENAMENX"]), KEYS, KEYS),
    st.tuples(st.just("COPY"), KEYS, KEYS),
    st.tuples(st.just("COPY"), KEYS, KEYS, st.just("REPLACE")),
    st.tuples(st.just("TOUCH"), KEYS),
    st.tuples(st.sampled_from(["FLUSHDB", "FLUSHALL"]),),
)


def keyspace(engine: Any) -> list[tuple[bytes, bytes, int | None]]:
    return sorted(engine.items())


def test_replaying_the_stream_reproduces_the_node(make_node):
    # A small capacity and a default TTL, so evictions and default expiry are in the stream.
    node = make_node("plugins.lru_ttl.capacity=4", "plugins.lru_ttl.default_ttl_seconds=3000")
    client = redis.Redis(port=node.port, socket_timeout=5)
    recorded = listen(node)

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(commands=st.lists(WRITES, min_size=1, max_size=40))
    def check(commands: list[tuple[Any, ...]]) -> None:
        client.flushall()
        start = node.call(lambda: keyspace(node.node.engine))
        assert start == []
        taken(node, recorded)
        pipe = client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        pipe.execute(raise_on_error=False)
        mutations = taken(node, recorded)
        assert all(m.cause is not Cause.RESTORE for m in mutations)
        fresh = LruTtlEngine(capacity=0)
        replay(mutations, [fresh])
        assert keyspace(fresh) == node.call(lambda: keyspace(node.node.engine))

    try:
        check()
    finally:
        client.close()


def test_evictions_and_expirations_are_deletions(make_node):
    node = make_node("plugins.lru_ttl.capacity=3")
    client = redis.Redis(port=node.port, socket_timeout=5)
    recorded = listen(node)
    try:
        for key in ("a", "b", "c", "d", "e"):
            client.set(key, "v")
        mutations = taken(node, recorded)
        assert [(m.op, m.key, m.cause) for m in mutations if m.op == Op.DEL] == [
            (Op.DEL, b"a", Cause.EVICTED), (Op.DEL, b"b", Cause.EVICTED)]
        client.set("lazy", "v", px=50)
        client.set("active", "v", px=50)
        time.sleep(0.3)
        assert client.get("lazy") is None  # removed on access
        deadline = time.monotonic() + 5
        deletions: list[tuple[bytes, Cause]] = []
        while time.monotonic() < deadline:
            deletions += [(m.key, m.cause) for m in taken(node, recorded) if m.op == Op.DEL]
            if (b"active", Cause.EXPIRED) in deletions:
                break
            time.sleep(0.1)  # the node's active expiry runs ten times a second
        assert (b"lazy", Cause.EXPIRED) in deletions
        assert (b"active", Cause.EXPIRED) in deletions
        assert client.exists("active") == 0
    finally:
        client.close()
