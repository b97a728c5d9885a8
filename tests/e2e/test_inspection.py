"""OBJECT, MEMORY, DEBUG and MONITOR on a real node with real clients (the replies are
compared with redis-server in ``redis_corpus/inspection.py``)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from distcache_core import monitor as monitor_module
from distcache_core.protocol import encode_request


def test_object_and_memory_usage(r) -> None:
    r.set("n", 42)
    r.set("s", "x" * 100, ex=100)
    assert r.object("encoding", "n") == b"int"
    assert r.object("encoding", "s") == b"raw"
    assert r.object("refcount", "n") == 2**31 - 1
    assert r.object("encoding", "nope") is None
    # What each key counts against maxmemory: together, the engine's whole figure.
    total = r.memory_usage("n") + r.memory_usage("s")
    assert total == r.info("memory")["used_memory"]
    assert r.memory_usage("s") > r.memory_usage("n") + 100  # its value and its expiry
    with pytest.raises(redis.ResponseError, match="does not record access times"):
        r.object("idletime", "n")
    r.execute_command("SELECT", 3)
    r.set("n", 7)
    assert r.memory_usage("n") > 0 and r.object("encoding", "n") == b"int"


def test_memory_stats_doctor_purge(r) -> None:
    """MEMORY STATS reports the keyspace as the engine counts it (INFO's used_memory) inside
    the process's resident size; the doctor calls an instance with under 5 MiB of data empty,
    as Redis does, and reviews it past that."""
    empty = r.execute_command("MEMORY", "DOCTOR")
    assert empty.startswith(b"Hi Sam, this instance is empty")
    megabyte = b"x" * (1 << 20)
    for i in range(6):
        r.set(f"big{i}", megabyte)
    r.execute_command("SELECT", 2)
    r.set("small", "v")
    stats = r.memory_stats()
    assert stats["keys.count"] == 7
    assert stats["dataset.bytes"] == r.info("memory")["used_memory"] > 6 << 20
    assert stats["total.allocated"] >= stats["startup.allocated"]
    assert stats["peak.allocated"] >= stats["total.allocated"] > 6 << 20
    assert "db.0" in stats and "db.2" in stats and "db.1" not in stats
    report = r.execute_command("MEMORY", "DOCTOR")
    assert report.startswith((b"Hi Sam, I can't find any memory issue", b"Sam, I detected"))
    assert r.memory_purge() is True
    assert b"allocated blocks:" in r.execute_command("MEMORY", "MALLOC-STATS")
    r.execute_command("SELECT", 0)
    assert r.get("big5") == megabyte


def test_debug_is_off_unless_enabled(r, make_node) -> None:
    with pytest.raises(redis.ResponseError, match="DEBUG command not allowed"):
        r.execute_command("DEBUG", "SLEEP", "0")
    node = make_node("node.enable_debug_command=true")
    client = redis.Redis(port=node.port, socket_timeout=10)
    other = redis.Redis(port=node.port, socket_timeout=10)
    try:
        client.set("k", "hello")
        info = client.debug_object("k")
        assert info["encoding"] == "embstr" and info["serializedlength"] == 5
        with pytest.raises(redis.ResponseError, match="no such key"):
            client.debug_object("nope")
        # DEBUG SLEEP stops the whole node, as Redis's does.
        sleeper = threading.Thread(target=client.execute_command, args=("DEBUG", "SLEEP", "1.5"))
        sleeper.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert other.ping()
        assert time.monotonic() - started >= 1.0
        sleeper.join(10)
    finally:
        client.close()
        other.close()


def test_redis_py_monitor(node, r) -> None:
    with r.monitor() as stream:
        writer = redis.Redis(port=node.port, db=2, socket_timeout=5)
        try:
            writer.set("k", "v\nw")
            writer.config_get("maxmemory")  # admin: not shown
            writer.get("k")
        finally:
            writer.close()
        seen = []
        while not seen or seen[-1]["command"] != "GET k":
            seen.append(stream.next_command())
    # The client's handshake (HELLO, SELECT ...) first, then its commands, CONFIG hidden.
    commands = [entry["command"] for entry in seen]
    assert commands[-2:] == ["SET k v\\nw", "GET k"]
    assert "SELECT 2" in commands and not any("CONFIG" in c for c in commands)
    assert seen[-1]["db"] == 2 and abs(seen[-1]["time"] - time.time()) < 60


def test_monitor_costs_nothing_when_gone(node, raw_client) -> None:
    server = node.node.server
    watcher = raw_client(node.port)
    watcher.send(encode_request("MONITOR"))
    assert watcher.reply() == b"OK"
    client = raw_client(node.port)
    client.send(encode_request("PING"))
    assert client.reply() == b"PONG"
    assert node.call(lambda: [c.gated for c in server.connections.values()]) == [True, True]
    assert watcher.reply().endswith(b'"PING"')
    watcher.send(encode_request("RESET"))
    assert watcher.reply() == b"RESET"
    assert node.call(lambda: [c.gated for c in server.connections.values()]) == [False, False]
    client.send(encode_request("PING"))
    assert client.reply() == b"PONG"


def test_a_monitor_that_does_not_read_is_closed(node, monkeypatch) -> None:
    monkeypatch.setattr(monitor_module, "MONITOR_BACKLOG_LIMIT_BYTES", 256 * 1024)
    stalled = socket.create_connection(("127.0.0.1", node.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(encode_request("MONITOR"))
    time.sleep(0.2)
    writer = redis.Redis(port=node.port, socket_timeout=10)
    try:
        value = "x" * 10_000
        deadline = time.monotonic() + 30
        while node.call(lambda: bool(node.node.server.monitors)):
            assert time.monotonic() < deadline, "the stalled monitor was never closed"
            with writer.pipeline(transaction=False) as pipe:
                for _ in range(50):
                    pipe.set("k", value)
                pipe.execute()
        assert writer.get("k") == value.encode()  # the node went on serving
    finally:
        writer.close()
        stalled.close()
