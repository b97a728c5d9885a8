"""Transactions on a real node with real clients: redis-py's transactional pipelines (what web
frameworks' cache backends send for set_many/delete_many), WATCH under concurrent writers,
async handlers inside EXEC, the queue limit, and what the transaction leaves visible before
EXEC. Byte-for-byte replies and WATCH's rules are in ``redis_corpus/transactions.py``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from distcache_core.protocol import encode_request

FIXTURES = str(Path(__file__).resolve().parent.parent / "fixtures")


def test_redis_py_transactional_pipeline(r) -> None:
    with r.pipeline() as pipe:  # transaction=True: MULTI ... EXEC
        pipe.set("a", 1).incr("a").get("a").mget("a", "nope").delete("nope")
        assert pipe.execute() == [True, 2, b"2", [b"2", None], 0]
    # A runtime error is that command's reply; the others ran.
    with r.pipeline() as pipe:
        pipe.set("s", "x").incr("s").set("after", 1)
        results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], redis.ResponseError)
    assert r.get("after") == b"1"
    # A command refused while queueing aborts the whole transaction: nothing ran.
    with r.pipeline() as pipe:
        pipe.set("never", 1).execute_command("NOSUCHCOMMAND")
        with pytest.raises(redis.ResponseError):
            pipe.execute()
    assert r.exists("never") == 0


def test_framework_style_set_many_and_delete_many(r) -> None:
    """What Django's and Flask-Caching's Redis backends send: SETs with a TTL, then DELs, each
    batch in one MULTI/EXEC."""
    values = {f"cache:{i}": f"value-{i}".encode() for i in range(50)}
    with r.pipeline() as pipe:
        for key, value in values.items():
            pipe.set(key, value, ex=300)
        assert all(pipe.execute())
    assert r.mget(list(values)) == list(values.values())
    assert 295 <= r.ttl("cache:7") <= 300
    with r.pipeline() as pipe:
        for key in list(values)[:30]:
            pipe.delete(key)
        assert pipe.execute() == [1] * 30
    assert r.dbsize() == 20


def test_watch_retry_loop_under_concurrent_writers(node) -> None:
    """redis-py's optimistic-locking idiom: many clients increment one counter through
    WATCH/MULTI/EXEC; aborted EXECs retry, and no increment is lost."""
    clients, rounds = 6, 40
    errors: list[BaseException] = []

    def worker() -> None:
        client = redis.Redis(port=node.port, socket_timeout=10)
        try:
            for _ in range(rounds):
                with client.pipeline() as pipe:
                    while True:
                        try:
                            pipe.watch("counter")
                            current = int(pipe.get("counter") or 0)
                            pipe.multi()
                            pipe.set("counter", current + 1)
                            pipe.execute()
                            break
                        except redis.WatchError:
                            continue  # another writer got in first: read again
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    check = redis.Redis(port=node.port, socket_timeout=5)
    try:
        assert int(check.get("counter")) == clients * rounds
    finally:
        check.close()


def test_transaction_api_helper(r) -> None:
    """redis-py's ``Redis.transaction``: WATCH, a read, MULTI/EXEC, retried on WatchError."""
    r.set("balance", 100)

    def withdraw(pipe: redis.client.Pipeline) -> None:
        balance = int(pipe.get("balance"))
        pipe.multi()
        pipe.set("balance", balance - 30)

    r.transaction(withdraw, "balance")
    assert r.get("balance") == b"70"


def test_watch_subscribes_only_while_something_is_watched(node, r) -> None:
    mutations = node.node.mutations
    assert node.call(lambda: mutations.active) is False
    r.set("k", 1)
    with r.pipeline() as pipe:
        pipe.watch("k")
        assert node.call(lambda: mutations.active) is True
        pipe.multi()
        pipe.incr("k")
        assert pipe.execute() == [2]
    assert node.call(lambda: mutations.active) is False
    # A watcher made dirty by another client's write: the registry lets go after the write.
    with r.pipeline() as pipe:
        pipe.watch("k")
        r.set("k", 5)
        assert node.call(lambda: mutations.active) is False
        pipe.multi()
        pipe.incr("k")
        with pytest.raises(redis.WatchError):
            pipe.execute()


def test_client_list_shows_multi_state(node, raw_client) -> None:
    client = raw_client(node.port)
    observer = redis.Redis(port=node.port, socket_timeout=5)
    try:
        client.send(encode_request("CLIENT", "ID") + encode_request("WATCH", "w")
                    + encode_request("MULTI") + encode_request("SET", "k", "v")
                    + encode_request("GET", "k"))
        client_id = client.replies(5)[0]

        def line() -> dict:
            return next(c for c in observer.client_list() if int(c["id"]) == client_id)

        assert (line()["flags"], line()["multi"]) == ("x", "2")
        assert int(line()["multi-mem"]) > 0
        observer.set("w", "changed")
        assert line()["flags"] == "xd"
        client.send(encode_request("EXEC"))
        assert client.reply() is None
        assert (line()["flags"], line()["multi"]) == ("N", "-1")
    finally:
        observer.close()


def test_queue_limit_fails_the_transaction_not_the_node(make_node, raw_client) -> None:
    node = make_node("node.transaction_max_bytes=4096")
    client = raw_client(node.port)
    client.send(encode_request("MULTI"))
    assert client.reply() == b"OK"
    for index in range(20):
        client.send(encode_request("SET", f"k{index}", "x" * 300))
    replies = client.replies(20)
    refused = [reply for reply in replies if isinstance(reply, Exception)]
    assert len(refused) == 1 and "node.transaction_max_bytes" in str(refused[0])
    assert replies[0] == b"QUEUED" and replies[-1] == b"QUEUED"
    # The queue was freed at once; EXEC aborts and nothing was written.
    transaction = node.call(lambda: next(iter(node.node.server.connections.values())).transaction)
    assert transaction.commands == [] and transaction.refused
    client.send(encode_request("EXEC") + encode_request("DBSIZE"))
    aborted, size = client.replies(2)
    assert "EXECABORT" in str(aborted) and size == 0


def test_queued_commands_and_keys_are_visible_before_exec(node, raw_client) -> None:
    client = raw_client(node.port)
    client.send(encode_request("MULTI") + encode_request("SET", "a", "1")
                + encode_request("MSET", "b", "2", "a", "3") + encode_request("GET", "c")
                + encode_request("PING"))
    assert client.replies(5) == [b"OK", b"QUEUED", b"QUEUED", b"QUEUED", b"QUEUED"]

    def inspect() -> tuple[list[str], list[bytes]]:
        conn = next(iter(node.node.server.connections.values()))
        transaction = conn.transaction
        return [command.name for command, _ in transaction.commands], transaction.keys()

    assert node.call(inspect) == (["set", "mset", "get", "ping"], [b"a", b"b", b"c"])
    client.send(encode_request("DISCARD"))
    assert client.reply() == b"OK"


@pytest.fixture
def slow_node(node_process):
    return node_process("--port", "0", "--set", 'node.plugins=["slow_commands"]',
                        env={"PYTHONPATH": FIXTURES})


def test_async_handlers_inside_exec(slow_node, raw_client) -> None:
    """An async handler inside EXEC starts at once (its write applies in order); EXEC's
    reply waits for it, and replies after EXEC stay in order; other clients are served."""
    client = raw_client(slow_node.port)
    client.send(encode_request("MULTI") + encode_request("SET", "k", "first")
                + encode_request("SLOWSET", "k", "slow", "2500") + encode_request("GET", "k")
                + encode_request("SLOWECHO", "200", "echoed") + encode_request("EXEC")
                + encode_request("GET", "k"))
    started = time.monotonic()
    assert client.replies(5) == [b"OK"] + [b"QUEUED"] * 4
    other = redis.Redis(port=slow_node.port, socket_timeout=5)
    try:
        assert other.get("k") == b"slow"  # applied by EXEC before its reply is ready
        assert time.monotonic() - started < 2.0
    finally:
        other.close()
    assert client.replies(2) == [[b"OK", b"OK", b"slow", b"echoed"], b"slow"]
    assert time.monotonic() - started >= 2.4


def test_exec_replies_resp3(raw_client, node) -> None:
    client = raw_client(node.port)
    client.send(encode_request("HELLO", "3"))
    client.reply()
    client.send(encode_request("SET", "w", "1") + encode_request("WATCH", "w")
                + encode_request("SET", "w", "2") + encode_request("MULTI")
                + encode_request("GET", "w") + encode_request("EXEC"))
    replies = client.replies(6)
    assert replies[5] is None  # RESP3's null, not an empty array


def test_node_gate_checks_come_before_queueing(node, raw_client) -> None:
    """A node gate (loading, MISCONF, a busy script) refuses before MULTI queues, and the
    refusal aborts the transaction, as Redis's processCommand; what it lets through is
    queued (``dispatch.proceed``)."""
    from distcache_core.dispatch import proceed
    from distcache_core.errors import CommandError

    def refuse_writes(conn, command, argv):
        if command.is_write:
            raise CommandError("MISCONF writes are refused for this test")
        return proceed(conn, command, argv)

    server = node.node.server
    client = raw_client(node.port)
    client.send(encode_request("MULTI"))
    assert client.reply() == b"OK"
    node.call(lambda: server.set_node_gate("test", refuse_writes))
    try:
        client.send(encode_request("GET", "k") + encode_request("SET", "k", "v")
                    + encode_request("EXEC") + encode_request("MULTI")
                    + encode_request("GET", "k") + encode_request("EXEC"))
        replies = client.replies(6)
    finally:
        node.call(lambda: server.set_node_gate("test", None))
    assert replies[0] == b"QUEUED" and "MISCONF" in str(replies[1])
    assert "EXECABORT" in str(replies[2])
    assert replies[3:] == [b"OK", b"QUEUED", [None]]


def test_redis_py_lock(node) -> None:
    """redis-py's Lock: EVALSHA scripts (acquire, extend, release) with WATCH-free atomicity."""
    first = redis.Redis(port=node.port, socket_timeout=5)
    second = redis.Redis(port=node.port, socket_timeout=5)
    try:
        lock = first.lock("resource", timeout=10)
        assert lock.acquire(blocking=False)
        assert not second.lock("resource", timeout=10).acquire(blocking=False)
        assert lock.extend(5)
        assert 10 < first.pttl("resource") / 1000 <= 15
        lock.release()
        with second.lock("resource", timeout=10, blocking_timeout=5):
            assert first.exists("resource")
        assert not first.exists("resource")
    finally:
        first.close()
        second.close()
