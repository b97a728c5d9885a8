"""Connection and server commands over real sockets."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def test_ping_echo(r, raw):
    assert r.ping() is True
    assert r.echo(b"hi\x00") == b"hi\x00"
    raw.send(b"PING\r\n")
    assert raw.reply() == b"PONG"
    raw.send(b"PING hello\r\n")
    assert raw.reply() == b"hello"


def test_inline_and_multibulk_pipelined_in_one_write(raw):
    raw.send(b"SET a 1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nGET a\n")
    assert raw.replies(3) == [b"OK", b"1", b"1"]


def test_nc_style_session_replies_in_order_then_closes(node):
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    sock.sendall(b"SET k v\r\nGET k\r\nDEL k\r\nGET k\r\n")
    sock.shutdown(socket.SHUT_WR)  # what `nc -q1` does after stdin ends
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    assert data == b"+OK\r\n$1\r\nv\r\n:1\r\n$-1\r\n"


def test_quit_replies_then_closes(raw):
    raw.send(b"QUIT\r\nPING\r\n")
    assert raw.reply() == b"OK"
    assert raw.is_closed_by_peer()


def test_auth(make_node):
    node = make_node("node.requirepass='s3cret'")
    # No retries: redis-py 8 retries a refused handshake three times with backoff (~7 s).
    client = redis.Redis(port=node.port, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.AuthenticationError):
        client.get("k")
    with pytest.raises(redis.AuthenticationError):
        client.execute_command("AUTH", "wrong")
    assert redis.Redis(port=node.port, password="s3cret").set("k", "v")
    assert redis.Redis(port=node.port, username="default", password="s3cret").get("k") == b"v"


def _first_line(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_hello_before_auth_is_refused_in_redis_words(make_node, redis_server):
    # Clients that open with HELLO (redis-py 5+ with a protocol, Lettuce) show this error to
    # their user when no password was configured on their side: Redis 7.0's exact words.
    node = make_node("node.requirepass='s3cret'")
    admin = redis.Redis(port=redis_server.port)
    admin.config_set("requirepass", "s3cret")  # the admin connection stays authenticated
    try:
        ours = _first_line(node.port, b"HELLO 3\r\n")
        theirs = _first_line(redis_server.port, b"HELLO 3\r\n")
    finally:
        admin.config_set("requirepass", "")
    assert ours.startswith(b"-NOAUTH HELLO must be called")
    assert ours == theirs


def test_auth_raw_errors(make_node, raw_client):
    node = make_node("node.requirepass='s3cret'")
    raw = raw_client(node.port)
    raw.send(b"GET k\r\nAUTH nope\r\nAUTH s3cret\r\nGET k\r\n")
    first, second, third, fourth = raw.replies(4)
    assert str(first) == "NOAUTH Authentication required."
    assert str(second) == "WRONGPASS invalid username-password pair or user is disabled."
    assert (third, fourth) == (b"OK", None)


def test_auth_without_password_configured(raw):
    raw.send(b"AUTH x\r\n")
    assert str(raw.reply()).startswith(
        "ERR AUTH <password> called without any password configured for the default user.")


def test_unauthenticated_clients_get_small_request_limits(make_node, raw_client):
    node = make_node("node.requirepass='pw'")
    raw = raw_client(node.port)
    raw.send(b"*11\r\n")
    assert str(raw.reply()) == "ERR Protocol error: unauthenticated multibulk length"


def test_hello_3_switches_to_resp3(make_node):
    node = make_node()
    client = redis.Redis(port=node.port, protocol=3)
    client.set("k", "v")
    assert client.get("k") == b"v"
    info = client.execute_command("HELLO", "3")
    assert info[b"proto"] == 3 and info[b"server"] == b"redis" and info[b"mode"] == b"standalone"


def test_hello_errors(r):
    with pytest.raises(redis.ResponseError, match="NOPROTO unsupported protocol version"):
        r.execute_command("HELLO", "4")
    with pytest.raises(redis.ResponseError, match="Protocol version is not an integer"):
        r.execute_command("HELLO", "x")


def test_select(r):
    assert r.execute_command("SELECT", 15) is True
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", 16)


def test_client_subcommands(r):
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == "worker-1"
    assert isinstance(r.client_id(), int)
    clients = r.client_list()
    assert any(c["name"] == "worker-1" for c in clients)
    with pytest.raises(redis.ResponseError, match="Client names cannot contain spaces"):
        r.client_setname("has space")
    with pytest.raises(redis.ResponseError, match="unknown subcommand 'NOPE'. Try CLIENT HELP."):
        r.execute_command("CLIENT", "NOPE")


def test_info_has_the_fields_clients_read(r):
    r.set("a", "1")
    r.get("a")
    r.get("missing")
    info = r.info("everything")
    assert info["redis_version"].startswith("7.0")
    assert "distcache_version" in info
    assert info["cluster_enabled"] == 0
    assert info["arch_bits"] == 64
    assert info["keyspace_hits"] == 1 and info["keyspace_misses"] == 1
    assert info["db0"]["keys"] == 1
    for field in ("used_memory", "connected_clients", "expired_keys", "evicted_keys",
                  "total_commands_processed", "uptime_in_seconds", "tcp_port"):
        assert field in info
    assert set(r.info("memory")) >= {"used_memory", "maxmemory"}
    assert "redis_version" not in r.info("memory")


def test_time_dbsize_flush(r):
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 5 and 0 <= micros < 1_000_000
    r.mset({"a": 1, "b": 2})
    assert r.dbsize() == 2
    assert r.flushdb() is True
    assert r.dbsize() == 0
    r.set("c", 3)
    assert r.flushall() is True and r.dbsize() == 0


def test_config_get_set(r):
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    assert r.config_set("maxclients", 50) is True
    assert r.config_get("maxclients") == {"maxclients": "50"}
    assert r.config_get("save") == {"save": ""}
    assert "appendonly" in r.config_get("*")
    with pytest.raises(redis.ResponseError, match="Unknown option or number of arguments for "
                                                  "CONFIG SET - 'nosuch'"):
        r.config_set("nosuch", 1)
    with pytest.raises(redis.ResponseError, match="can't set immutable config"):
        r.config_set("port", 1)
    with pytest.raises(redis.ResponseError, match="couldn't be parsed into an integer"):
        r.config_set("timeout", "soon")


def test_command_introspection(r, raw):
    count = r.command_count()
    assert count > 40
    raw.send(b"COMMAND INFO get nosuch\r\n")
    info = raw.reply()
    assert info[0][:6] == [b"get", 2, [b"readonly", b"fast"], 1, 1, 1] and info[1] is None
    # redis-py parses every COMMAND reply as COMMAND's own, so the subcommands go raw.
    raw.send(b"COMMAND DOCS set\r\n")
    name, doc = raw.reply()  # RESP2: a flat array of name, doc pairs
    assert name == b"set" and doc[0] == b"summary" and doc[1]
    raw.send(b"COMMAND GETKEYS MSET a 1 b 2\r\n")
    assert raw.reply() == [b"a", b"b"]
    raw.send(b"COMMAND COUNT\r\n")
    assert raw.reply() == count


def test_lastsave_and_save_without_persistence(r):
    assert abs(r.lastsave().timestamp() - time.time()) < 60
    with pytest.raises(redis.ResponseError, match="no persistence plugin is configured"):
        r.save()


def test_shutdown_stops_the_node(make_node):
    node = make_node()
    client = redis.Redis(port=node.port)
    client.shutdown()  # redis-py treats the closed connection as success, as Redis sends none
    node._thread.join(5)
    assert not node._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", node.port), timeout=1)


def test_example_plugin_command_is_served(make_node):
    node = make_node()
    client = redis.Redis(port=node.port)
    assert client.execute_command("GREET", "Ada") == b"Hello, Ada!"
    assert client.execute_command("GREET") == b"Hello, world!"


def test_client_kill_closes_the_named_connections(node, raw_client):
    killer, victim, bystander = (raw_client(node.port) for _ in range(3))
    victim.send(b"CLIENT ID\r\n")
    victim_id = victim.reply()
    # By id (new form): the count of connections closed.
    killer.send(f"CLIENT KILL ID {victim_id}\r\n".encode())
    assert killer.reply() == 1
    assert victim.is_closed_by_peer()
    # By address (old form): the address CLIENT LIST shows, i.e. the client's own socket.
    host, port = bystander.sock.getsockname()[:2]
    killer.send(f"CLIENT KILL {host}:{port}\r\n".encode())
    assert killer.reply() == b"OK"
    assert bystander.is_closed_by_peer()
    killer.send(b"CLIENT KILL 127.0.0.1:1\r\n")
    assert str(killer.reply()) == "ERR No such client"
    # SKIPME yes (the default) spares the caller; SKIPME no replies, then closes it too.
    killer.send(b"CLIENT KILL TYPE normal\r\nPING\r\n")
    assert killer.replies(2)[1] == b"PONG"
    killer.send(b"CLIENT KILL TYPE normal SKIPME no\r\n")
    assert killer.reply() >= 1
    assert killer.is_closed_by_peer()


def test_client_no_evict_is_accepted(r):
    assert r.execute_command("CLIENT", "NO-EVICT", "on") == b"OK"
    assert r.execute_command("CLIENT", "NO-EVICT", "off") == b"OK"
