"""The dashboard's ``/metrics``: one scrape of a node holding 1M keys with 60 commands in use,
as the aiohttp handler builds it (``prometheus_client``'s ``generate_latest`` over the node's
collector, which reads the counters at scrape time), without the HTTP round trip.

Issue 10's bound is 20 ms a scrape. The node is built once per process (filling it takes a few
seconds) and never listens; each of the 60 commands ran once through a client connection, so
each has its counters and a latency sample, as on a node in use.
"""

from __future__ import annotations

import functools

from prometheus_client.exposition import generate_latest

from distcache_core.config import ConfigSources
from distcache_core.node import Node
from distcache_core.protocol import encode_request
from distcache_plugins.dashboard.prometheus import registry_for

from .null_transport import connect

KEYS = 1_000_000
VALUE = b"v" * 16
#: 60 distinct commands, each run once (errors count: a failed call is a call).
COMMANDS: list[tuple[bytes | int, ...]] = [
    (b"PING",), (b"ECHO", b"x"), (b"GET", b"a"), (b"SET", b"a", b"1"), (b"SETNX", b"b", b"1"),
    (b"SETEX", b"c", 100, b"v"), (b"PSETEX", b"d", 100000, b"v"), (b"GETSET", b"a", b"2"),
    (b"GETDEL", b"b"), (b"GETEX", b"a"), (b"MGET", b"a", b"c"), (b"MSET", b"e", b"1"),
    (b"MSETNX", b"f", b"1"), (b"APPEND", b"a", b"x"), (b"STRLEN", b"a"),
    (b"GETRANGE", b"a", 0, 1), (b"SETRANGE", b"a", 1, b"y"), (b"INCR", b"n"), (b"DECR", b"n"),
    (b"INCRBY", b"n", 2), (b"DECRBY", b"n", 1), (b"INCRBYFLOAT", b"g", b"1.5"),
    (b"DEL", b"zz"), (b"UNLINK", b"zz"), (b"EXISTS", b"a"), (b"TYPE", b"a"),
    (b"EXPIRE", b"a", 1000), (b"PEXPIRE", b"a", 100000), (b"EXPIREAT", b"a", 4000000000),
    (b"PEXPIREAT", b"a", 4000000000000), (b"TTL", b"a"), (b"PTTL", b"a"),
    (b"EXPIRETIME", b"a"), (b"PEXPIRETIME", b"a"), (b"PERSIST", b"a"), (b"SCAN", 0),
    (b"RANDOMKEY",), (b"RENAME", b"e", b"e2"), (b"RENAMENX", b"e2", b"e3"), (b"TOUCH", b"a"),
    (b"SETBIT", b"bits", 3, 1), (b"GETBIT", b"bits", 3), (b"BITCOUNT", b"bits"),
    (b"BITPOS", b"bits", 1), (b"BITOP", b"AND", b"bo", b"bits"), (b"LCS", b"a", b"c"),
    (b"DBSIZE",), (b"TIME",), (b"INFO", b"server"), (b"CONFIG", b"GET", b"maxmemory"),
    (b"CLIENT", b"ID"), (b"COMMAND", b"COUNT"), (b"LASTSAVE",), (b"SLOWLOG", b"LEN"),
    (b"SUBSTR", b"a", 0, 1), (b"MEMORY", b"USAGE", b"a"), (b"WATCH", b"a"),
    (b"UNWATCH",), (b"SELECT", 0), (b"HELLO", 2),
]


@functools.cache
def node_in_use() -> Node:
    node = Node.from_sources(ConfigSources.gather(
        None, ["node.port=0", "plugins.lru_ttl.capacity=0", 'node.metrics=["dashboard"]'],
        environ={}))
    engine = node.engine
    for index in range(KEYS):
        engine.set(b"key:%010d" % index, VALUE)
    conn, _ = connect(node)
    for argv in COMMANDS:
        conn.data_received(encode_request(*argv))
    touched = node.metrics.touched()
    assert len(touched) >= len(COMMANDS), [s.name for s in touched]
    assert b'redis_db_keys{db="db0"} 1.0' in generate_latest(registry_for(node, "redis"))
    return node


class Scrape:
    timeout = 300.0  # the first setup of a process fills a million keys

    def setup(self) -> None:
        self.registry = registry_for(node_in_use(), "redis")

    def time_metrics_1m_keys_60_commands(self) -> None:
        generate_latest(self.registry)
