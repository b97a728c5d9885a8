"""The server's request path without sockets: ``ClientConnection.data_received`` on a node built
from the default config, with a transport that swallows the replies.

One call is one read: bytes in, parse, command table lookup, handler, engine, reply encoding,
one ``transport.write``. Constructing a ``Node`` loads the plugins and builds the engine, the
command table and the ``RespServer`` but does not listen, and needs no running event loop.
The node is built once per process and the connection in ``__init__``, so that asv batches
these few-microsecond calls (see ``benchmarks/__init__.py``).
"""

from __future__ import annotations

import functools

from distcache_core.config import ConfigSources
from distcache_core.node import Node
from distcache_core.protocol import encode_request

from .null_transport import connect

VALUE = b"v" * 32
BULK_VALUE_REPLY = b"$%d\r\n%b\r\n" % (len(VALUE), VALUE)


def key(index: int) -> bytes:
    return b"key:%010d" % index


PIPELINE_16_GETS = b"".join(encode_request(b"GET", key(i)) for i in range(16))
SINGLE_GET = encode_request(b"GET", key(0))
SINGLE_SET = encode_request(b"SET", key(0), VALUE)


@functools.cache
def default_node() -> Node:
    """A node as ``distcache serve --port 0`` builds it, environment ignored, holding the 16
    keys the benchmarks read."""
    node = Node.from_sources(ConfigSources.gather(None, ["node.port=0"], environ={}))
    for i in range(16):
        node.engine.set(key(i), VALUE)
    return node


class Dispatch:
    def __init__(self) -> None:
        self.conn, self.transport = connect(default_node())
        for request, reply in ((SINGLE_GET, BULK_VALUE_REPLY), (SINGLE_SET, b"+OK\r\n"),
                               (PIPELINE_16_GETS, BULK_VALUE_REPLY * 16)):
            self.conn.data_received(request)
            assert self.transport.last_write == reply, (request, self.transport.last_write)

    def time_pipeline_16_gets(self) -> None:
        self.conn.data_received(PIPELINE_16_GETS)

    def time_single_get(self) -> None:
        self.conn.data_received(SINGLE_GET)

    def time_single_set(self) -> None:
        self.conn.data_received(SINGLE_SET)
