"""End to end over loopback: a node serving in a background thread of the benchmark process, and
clients on real sockets.

One call is ``ROUND_TRIPS`` (100) round trips, so its time / 100 is the latency of one: a
redis-py ``GET``, or a pipeline of 16 GETs written at once on a raw socket and all 16 replies
read back. asv re-runs ``setup`` and ``teardown`` around every call, so each call gets a node
started afresh (about 10 ms, not timed) and clients that have already made one request.

The node shares the interpreter, hence the GIL, with the client: a round trip costs the client's
and the server's Python work added together, as on one core. ``make bench`` (``bench/``)
measures a separate server process against redis-server.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import redis

from distcache_core.config import ConfigSources
from distcache_core.node import Node
from distcache_core.protocol import encode_request

ROUND_TRIPS = 100
KEY = b"key:0000000000"
VALUE = b"v" * 32
PIPELINE_16_GETS = encode_request(b"GET", KEY) * 16
PIPELINE_16_REPLIES = b"$%d\r\n%b\r\n" % (len(VALUE), VALUE) * 16


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed, as ``distcache serve`` runs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class NodeThread:
    """A node on a free loopback port, serving from its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self.sources = ConfigSources.gather(None, ["node.port=0"], environ={})
        self.node: Node | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="distcache-node", daemon=True)

    def _run(self) -> None:
        self.loop = new_event_loop()
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # re-raised in the benchmark's thread by start()
            self._error = exc
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        node = Node.from_sources(self.sources)
        await node.start()
        self.node = node  # published once it listens, so the port is the real one
        self._ready.set()
        await node.wait_stopped()

    def start(self) -> int:
        """Start serving; return the port."""
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the node did not start within 10 s")
        if self._error is not None:
            raise self._error
        assert self.node is not None
        return self.node.port

    def stop(self) -> None:
        if self.loop is not None and self.node is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.node.request_shutdown)
        self._thread.join(10)


class RoundTrip:
    def setup(self) -> None:
        self.node = NodeThread()
        port = self.node.start()
        self.client = redis.Redis(port=port, socket_timeout=5)
        self.client.set(KEY, VALUE)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray(len(PIPELINE_16_REPLIES))
        assert self.client.get(KEY) == VALUE
        self._raw_pipeline_round_trip()
        assert self.buffer == PIPELINE_16_REPLIES

    def teardown(self) -> None:
        self.client.close()
        self.sock.close()
        self.node.stop()

    def _raw_pipeline_round_trip(self) -> None:
        self.sock.sendall(PIPELINE_16_GETS)
        view = memoryview(self.buffer)
        received = 0
        while received < len(view):
            count = self.sock.recv_into(view[received:])
            if not count:
                raise ConnectionError("the node closed the connection")
            received += count

    def time_100_redis_py_gets(self) -> None:
        get = self.client.get
        for _ in range(ROUND_TRIPS):
            get(KEY)

    def time_100_raw_pipelines_of_16_gets(self) -> None:
        round_trip = self._raw_pipeline_round_trip
        for _ in range(ROUND_TRIPS):
            round_trip()
