"""Pipelines through a node that owns few of their keys: forwarded commands leave in batches
(one per client, peer and write) whose replies come back as one slice, so these tests check
what batching could break: the order of replies among local, forwarded and split commands,
database switches in the middle, requests and replies cut anywhere by TCP, and a batch whose
peer stops answering."""

from __future__ import annotations

import random
import signal
import socket
import time

import hiredis

from .conftest import keys_owned_by

REQUEST_TIMEOUT_S = 0.5  # cluster.request_timeout_ms in conftest.FAST


def encode(*args: str | bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def read_replies(sock: socket.socket, count: int) -> list[object]:
    """The next ``count`` replies on ``sock``, parsed by hiredis (not the node's code); fails
    if the node closes the connection first."""
    reader = hiredis.Reader()
    values: list[object] = []
    while len(values) < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(values)} of {count} replies"
        reader.feed(chunk)
        while (reply := reader.gets()) is not False:
            values.append(reply)
    return values


def mixed_pipeline(prefix: str, count: int, seed: int) -> list[bytes]:
    """``count`` requests over 40 keys (spread over every node) and two databases: reads,
    writes, errors, misses, multi-key commands and local ones, in a random order."""
    rng = random.Random(seed)
    keys = [f"{prefix}{i}" for i in range(40)]
    requests = [encode("SELECT", "0")]
    for _ in range(count - 1):
        key, other = rng.choice(keys), rng.choice(keys)
        value = rng.choice(["v", "12", "x" * rng.randint(0, 150), "a\r\nb"])
        requests.append(rng.choice([
            encode("SET", key, value), encode("GET", key), encode("GET", key),
            encode("INCR", key), encode("APPEND", key, value), encode("STRLEN", key),
            encode("DEL", key), encode("EXISTS", key, other), encode("MGET", key, other),
            encode("GETRANGE", key, "0", "3"), encode("SETNX", key, value),
            encode("GETSET", key, value), encode("INCRBY", key, "-3"), encode("TYPE", key),
            encode("PING"), encode("ECHO", value), encode("SELECT", rng.choice("01")),
            encode("GET", f"{key}:missing"), encode("EXPIRE", key, "1000"),
        ]))
    return requests


def replies_of(port: int, requests: list[bytes], seed: int) -> bytes:
    """Send ``requests`` in random slices (so TCP cuts them anywhere) without waiting, and
    return the raw bytes of their replies (counted with hiredis, not with the node's code)."""
    rng = random.Random(seed)
    data = b"".join(requests)
    reader = hiredis.Reader()
    received = []
    left = len(requests)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.setblocking(True)
        pos = 0
        while pos < len(data):
            step = rng.choice([1, 7, 50, 400, 4096])
            sock.sendall(data[pos:pos + step])
            pos += step
        sock.settimeout(20)
        while left:
            chunk = sock.recv(65536)
            assert chunk, f"the connection closed with {left} replies missing"
            received.append(chunk)
            reader.feed(chunk)
            while left and reader.gets() is not False:
                left -= 1
    return b"".join(received)


def test_a_mixed_pipeline_through_a_non_owner_matches_redis(shared_cluster, redis_server
                                                             ) -> None:
    # 1,000 commands, about two thirds of them on keys other nodes own, byte for byte the
    # replies a single redis-server gives (the prefix is unique to this test on both).
    requests = mixed_pipeline("pipe-mixed:", 1000, seed=9)
    node = shared_cluster[0]
    owners = {node.client().execute_command("CLUSTER", "KEYOWNER", f"pipe-mixed:{i}")[0]
              for i in range(40)}
    assert len(owners) == 3
    forwarded_before = int(node.cluster_info()["cluster_forwarded_commands"])
    expected = replies_of(redis_server.port, requests, seed=1)
    assert replies_of(node.port, requests, seed=1) == expected
    assert int(node.cluster_info()["cluster_forwarded_commands"]) - forwarded_before > 300


def test_pipelined_batches_of_many_clients_stay_apart(shared_cluster) -> None:
    # Several clients pipelining GETs of the same other node's keys at once: their batches
    # share the link to that node, and each client gets its own values, in order.
    node = shared_cluster[1]
    keys = keys_owned_by(node, "node-3", 30, "pipe-clients:")
    setter = node.client()
    for key in keys:
        setter.set(key, f"value of {key}")
    sockets = [socket.create_connection(("127.0.0.1", node.port), timeout=20)
               for _ in range(8)]
    try:
        orders = []
        for index, sock in enumerate(sockets):
            order = [keys[(index * 7 + i * (index + 1)) % len(keys)] for i in range(200)]
            orders.append(order)
            sock.sendall(b"".join(encode("GET", key) for key in order))
        for sock, order in zip(sockets, orders, strict=True):
            values = read_replies(sock, len(order))
            assert values == [f"value of {key}".encode() for key in order]
    finally:
        for sock in sockets:
            sock.close()


def test_a_batch_whose_owner_hangs_is_answered_from_the_replica_in_order(make_cluster) -> None:
    # Replication factor 2: a pipeline of reads of node-3's keys (with reads of node-1's own
    # keys between them) is in flight when node-3 stops. Its link fails after
    # request_timeout_ms, and every unanswered read of the batch goes to the next copy (node-1
    # itself: a copy on node-2 would be asked through node-2, which may still be waiting on
    # node-3 itself); the client still gets every value, in order.
    cluster = make_cluster(3, replication_factor=2)
    one, three = cluster[0], cluster[2]
    client = one.client()
    remote = [key for key in (f"pipe-hang:{i}" for i in range(400))
              if client.execute_command("CLUSTER", "KEYOWNER", key) == [b"node-3", b"node-1"]]
    assert len(remote) >= 20
    remote = remote[:20]
    local = keys_owned_by(one, "node-1", 5, "pipe-here:")
    for key in remote + local:
        client.set(key, f"v-{key}")
    order = [remote[i % len(remote)] if i % 5 else local[i % len(local)] for i in range(100)]
    three.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", one.port), timeout=20) as sock:
            sock.sendall(b"".join(encode("GET", key) for key in order))
            values = read_replies(sock, len(order))
        assert values == [f"v-{key}".encode() for key in order]
        # Generous bound (a shared machine): the batch waited about request_timeout_ms.
        assert time.monotonic() - started < REQUEST_TIMEOUT_S + 5
    finally:
        three.signal(signal.SIGCONT)
