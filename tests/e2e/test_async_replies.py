"""Issue 6, section 1: replies that complete later leave in request order, other clients are
served meanwhile, and errors, disconnects and hangs in async handlers harm nobody else."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import hiredis
import pytest
import redis

from distcache_core.protocol import encode_request

FIXTURES = str(Path(__file__).resolve().parent.parent / "fixtures")


@pytest.fixture
def slow_node(node_process):
    """A real node process that loads the third-party plugin by name (``node.plugins``)."""
    return node_process("--port", "0", "--set", 'node.plugins=["slow_commands"]',
                        "--set", "node.idle_timeout_seconds=2",
                        env={"PYTHONPATH": FIXTURES})


def test_pipelined_replies_keep_request_order_and_others_are_served(slow_node, raw_client):
    client = raw_client(slow_node.port)
    client.send(encode_request(b"SET", b"k", b"before")
                + encode_request(b"SLOWECHO", b"600", b"slow")
                + encode_request(b"GET", b"k")
                + encode_request(b"SLOWSET", b"k", b"after", b"100")
                + encode_request(b"GET", b"k")
                + encode_request(b"PING"))
    started = time.monotonic()
    # While the first client waits for its slow reply, another is served at once.
    other = redis.Redis(port=slow_node.port, socket_timeout=5)
    for _ in range(20):
        assert other.ping() is True
    other_done = time.monotonic() - started
    replies = client.replies(6)
    waited = time.monotonic() - started
    # Later commands ran in order (GET saw the value before SLOWSET and after it); only their
    # replies waited behind the slow one.
    assert replies == [b"OK", b"slow", b"before", b"OK", b"after", b"PONG"]
    assert waited >= 0.55
    assert other_done < waited
    other.close()


def test_many_pipelined_commands_behind_a_slow_one(slow_node, raw_client):
    client = raw_client(slow_node.port)
    requests = [encode_request(b"SLOWECHO", b"300", b"first")]
    requests += [encode_request(b"ECHO", b"%d" % i) for i in range(10_000)]
    sender = threading.Thread(target=client.send, args=(b"".join(requests),))
    sender.start()
    replies = client.replies(10_001)
    sender.join()
    assert replies[0] == b"first"
    assert replies[1:] == [b"%d" % i for i in range(10_000)]


def test_errors_in_async_handlers_are_error_replies(slow_node, raw_client):
    client = raw_client(slow_node.port)
    client.send(encode_request(b"SLOWFAIL", b"error") + encode_request(b"SLOWFAIL", b"bug")
                + encode_request(b"PING"))
    first, second, third = client.replies(3)
    assert isinstance(first, hiredis.ReplyError) and str(first) == "ERR slowfail asked to fail"
    assert isinstance(second, hiredis.ReplyError)
    assert str(second).startswith("ERR internal error")
    assert third == b"PONG"


def test_disconnect_with_reply_pending_harms_nobody(slow_node):
    sock = socket.create_connection(("127.0.0.1", slow_node.port))
    sock.sendall(encode_request(b"SLOWSET", b"written", b"yes", b"300"))
    sock.close()  # gone before the reply
    r = redis.Redis(port=slow_node.port, socket_timeout=5)
    deadline = time.monotonic() + 5
    while r.get(b"written") != b"yes" and time.monotonic() < deadline:
        time.sleep(0.05)
    # The write the handler started still happened, and the node serves on.
    assert r.get(b"written") == b"yes"
    time.sleep(0.5)  # past the handler's sleep: its reply had nowhere to go
    assert r.ping() is True
    r.close()


def test_a_reply_that_never_comes_is_bounded_by_the_idle_timeout(slow_node, raw_client):
    client = raw_client(slow_node.port)
    client.send(encode_request(b"NEVERREPLY"))
    other = redis.Redis(port=slow_node.port, socket_timeout=5)
    assert other.ping() is True
    # node.idle_timeout_seconds=2: the waiting client is closed; others keep being served.
    assert client.is_closed_by_peer(wait=6.0)
    assert other.ping() is True
    other.close()
