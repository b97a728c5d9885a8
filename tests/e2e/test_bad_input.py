"""Issue 2, section 7: every kind of bad input gets Redis's reply, the connection is closed
only where Redis closes it, and the node keeps serving everyone else."""

from __future__ import annotations

import socket
import time

import hiredis
import pytest
import redis


def assert_error(reply, text: str) -> None:
    assert isinstance(reply, hiredis.ReplyError), reply
    assert str(reply) == text


def still_serving(port: int) -> None:
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        assert client.ping() is True
        client.set(b"canary", b"alive")
        assert client.get(b"canary") == b"alive"
    finally:
        client.close()


def test_unknown_command_keeps_connection(raw, node):
    raw.send(b"*3\r\n$6\r\nFOOBAR\r\n$1\r\na\r\n$2\r\nbc\r\n")
    assert_error(raw.reply(), "ERR unknown command 'FOOBAR', with args beginning with: 'a' 'bc' ")
    raw.send(b"PING\r\n")
    assert raw.reply() == b"PONG"


def test_wrong_arity(raw):
    raw.send(b"*1\r\n$3\r\nGET\r\n")
    assert_error(raw.reply(), "ERR wrong number of arguments for 'get' command")
    raw.send(b"GET a b\r\n")
    assert_error(raw.reply(), "ERR wrong number of arguments for 'get' command")


@pytest.mark.parametrize("args", [
    [b"SET", b"k", b"v", b"NX", b"XX"],
    [b"SET", b"k", b"v", b"EX", b"10", b"PX", b"100"],
    [b"SET", b"k", b"v", b"KEEPTTL", b"EX", b"10"],
    [b"SET", b"k", b"v", b"BOGUS"],
    [b"SET", b"k", b"v", b"EX"],
])
def test_set_with_conflicting_or_unknown_options(r, args):
    with pytest.raises(redis.ResponseError, match="^syntax error$"):
        r.execute_command(*args)
    assert r.get(b"k") is None


def test_incr_on_non_integer_and_overflow(r):
    r.set(b"s", b"abc")
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        r.incr(b"s")
    r.set(b"n", str(2**63 - 1))
    with pytest.raises(redis.ResponseError, match="^increment or decrement would overflow$"):
        r.incr(b"n")
    assert r.get(b"n") == str(2**63 - 1).encode()


def test_expire_with_non_integer(r):
    r.set(b"k", b"v")
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        r.execute_command("EXPIRE", "k", "soon")
    assert r.ttl(b"k") == -1


@pytest.mark.parametrize("request_bytes,error", [
    (b"*-5\r\n*1\r\n$4\r\nPING\r\n", None),  # negative count: ignored like *0, then PING
    (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
    (b"*1\r\n$-3\r\n", "ERR Protocol error: invalid bulk length"),
    (b"*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length"),
    (b"*1\r\n+PING\r\n", "ERR Protocol error: expected '$', got '+'"),
])
def test_bad_multibulk_headers(raw, node, request_bytes, error):
    raw.send(request_bytes)
    if error is None:
        assert raw.reply() == b"PONG"
        return
    assert_error(raw.reply(), error)
    assert raw.is_closed_by_peer()
    still_serving(node.port)


def test_bulk_length_over_the_limit_is_refused_at_the_header(make_node, raw_client):
    node = make_node("node.max_bulk_bytes=1024")
    raw = raw_client(node.port)
    raw.send(b"*2\r\n$3\r\nGET\r\n$1025\r\n")  # no data follows: the header alone is enough
    assert_error(raw.reply(), "ERR Protocol error: invalid bulk length")
    assert raw.is_closed_by_peer()
    ok = raw_client(node.port)
    ok.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1024\r\n" + b"x" * 1024 + b"\r\n")
    assert ok.reply() == b"OK"


def test_inline_line_over_the_limit_without_newline(make_node, raw_client):
    node = make_node("node.max_inline_bytes=4096")
    raw = raw_client(node.port)
    raw.send(b"SET k " + b"v" * 5000)
    assert_error(raw.reply(), "ERR Protocol error: too big inline request")
    assert raw.is_closed_by_peer()
    still_serving(node.port)


def test_unbalanced_quotes_inline(raw, node):
    raw.send(b'SET k "unterminated\r\n')
    assert_error(raw.reply(), "ERR Protocol error: unbalanced quotes in request")
    assert raw.is_closed_by_peer()
    still_serving(node.port)


def test_empty_lines_are_ignored(raw):
    raw.send(b"\r\n\n   \r\nPING\r\n")
    assert raw.reply() == b"PONG"  # no reply at all for the empty lines, as Redis


def test_nul_and_crlf_inside_keys_and_values_are_stored_exactly(r, raw):
    key, value = b"k\x00\r\n1", b"v\r\n\x00\xff\r\n"
    assert r.set(key, value) is True
    assert r.get(key) == value
    raw.send(b"*2\r\n$3\r\nGET\r\n$5\r\nk\x00\r\n1\r\n")
    assert raw.reply() == value
    raw.send(b'GET "k\\x00\\r\\n1"\r\n')  # the same key, quoted inline
    assert raw.reply() == value


def test_client_that_never_reads_keeps_memory_bounded(make_node):
    node = make_node("node.reply_buffer_high_water_bytes=65536")
    big = redis.Redis(port=node.port)
    big.set(b"big", b"x" * 1000)
    request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 4096  # ~4 MB of replies per 90 KB sent
    sock = socket.create_connection(("127.0.0.1", node.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 10
    while sent < 10 * 1024 * 1024 and time.monotonic() < deadline:
        try:
            sent += sock.send(request)
        except BlockingIOError:
            time.sleep(0.01)  # the node stopped reading from us: that is the point
    # The node stopped reading long before 10 MB of requests (= 400+ MB of replies) arrived.
    assert sent < 10 * 1024 * 1024

    def buffered() -> tuple[int, int, bool]:
        conn = next(c for c in node.node.server.connections.values() if c.reading_paused)
        return conn.transport.get_write_buffer_size(), len(conn._pending), conn.reading_paused

    write_buffer, pending_commands, paused = node.call(buffered)
    assert paused
    assert write_buffer < 2 * 65536 + 1100  # one high-water mark plus one reply, at most
    assert pending_commands < 10 * 1024 * 1024 // 26
    still_serving(node.port)  # and other clients are served meanwhile
    sock.close()
    big.close()


def test_connection_closed_mid_request(node):
    for partial in (b"*3\r\n$3\r\nSET\r\n$1\r\nk", b"*2\r\n$3\r\nGET\r\n$100\r\nabc", b"SET k"):
        sock = socket.create_connection(("127.0.0.1", node.port))
        sock.sendall(partial)
        sock.close()
    still_serving(node.port)
    assert redis.Redis(port=node.port).get(b"k") is None


def test_maxclients(make_node):
    node = make_node("node.maxclients=2")
    first, second = redis.Redis(port=node.port), redis.Redis(port=node.port)
    assert first.ping() and second.ping()
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    assert sock.recv(100) == b"-ERR max number of clients reached\r\n"
    assert sock.recv(100) == b""
    first.close()
    time.sleep(0.1)
    third = redis.Redis(port=node.port)
    assert third.ping()
    assert third.info("stats")["rejected_connections"] == 1


def test_idle_timeout_closes_idle_clients_only(make_node, raw_client):
    node = make_node("node.idle_timeout_seconds=1")
    idle = raw_client(node.port)
    busy = raw_client(node.port)
    deadline = time.monotonic() + 2.6
    while time.monotonic() < deadline:
        busy.send(b"PING\r\n")
        assert busy.reply() == b"PONG"
        time.sleep(0.2)
    assert idle.is_closed_by_peer(wait=0.5)
