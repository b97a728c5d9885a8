"""``maxmemory`` bounds a real node process's memory, measured from ``/proc``.

RSS is read from ``/proc/<pid>/status`` of a ``distcache serve`` child process; the empty
node's RSS (after a first PING) is the baseline. Where Redis defines the behaviour (the OOM
refusal), the same request goes to a real redis-server.
"""

from __future__ import annotations

import socket
import sys

import pytest

from distcache_core.protocol import encode_request

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads RSS from /proc")

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Pipe:
    """A raw connection that sends batches of requests and counts their replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.pending = b""

    def send_all_and_read(self, requests: list[bytes], expected_reply: bytes) -> None:
        self.sock.sendall(b"".join(requests))
        want = expected_reply * len(requests)
        got = b""
        while len(got) < len(want):
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed by the node")
            got += chunk
        assert got == want, got[:200]

    def call(self, *args: bytes) -> bytes:
        self.sock.sendall(encode_request(*args))
        return self.sock.recv(1 << 20)

    def close(self) -> None:
        self.sock.close()


def test_rss_stays_within_maxmemory_under_churn(node_process):
    # Issue 6: with 100-byte values and a 50 MB limit, RSS grew by 105 MB (Redis: 61 MB in
    # total). Write three and a half times what fits, checking RSS as it goes.
    limit = 50_000_000
    node = node_process("--port", "0", "--set", f"plugins.lru_ttl.maxmemory_bytes={limit}",
                        "--set", "plugins.lru_ttl.capacity=0")
    pipe = Pipe(node.port)
    try:
        assert pipe.call(b"PING") == b"+PONG\r\n"
        empty = rss_bytes(node.proc.pid)
        value = b"v" * 100
        worst = 0
        for batch in range(420):
            requests = [encode_request(b"SET", b"key:%012d" % (batch * 1000 + i), value)
                        for i in range(1000)]
            pipe.send_all_and_read(requests, b"+OK\r\n")
            if batch % 20 == 19:
                worst = max(worst, rss_bytes(node.proc.pid) - empty)
        info = pipe.call(b"INFO", b"stats").decode()
        evicted = int(info.split("evicted_keys:")[1].split()[0])
        assert evicted > 250_000, "the test must make the node evict most of what it wrote"
        assert worst <= 1.3 * limit, f"RSS grew by {worst / 1e6:.1f} MB for a 50 MB limit"
    finally:
        pipe.close()


@pytest.mark.parametrize("size", [3_000_000])
def test_write_that_cannot_fit_is_refused_like_redis(node_process, redis_server, size):
    node = node_process("--port", "0", "--set", "plugins.lru_ttl.maxmemory_bytes=2000000")
    ours, theirs = Pipe(node.port), Pipe(redis_server.port)
    try:
        assert theirs.call(b"CONFIG", b"SET", b"maxmemory", b"2000000") == b"+OK\r\n"
        for pipe in (ours, theirs):
            assert pipe.call(b"SET", b"small", b"v") == b"+OK\r\n"
            pipe.sock.sendall(encode_request(b"SET", b"big", b"x" * size))
            reply = pipe.sock.recv(4096)
            assert reply == OOM
            assert pipe.call(b"EXISTS", b"big") == b":0\r\n"
    finally:
        theirs.call(b"CONFIG", b"SET", b"maxmemory", b"0")
        theirs.call(b"FLUSHALL")
        ours.close()
        theirs.close()
