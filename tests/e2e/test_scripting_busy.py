"""A script that runs longer than ``node.lua_time_limit_ms``: other clients get ``-BUSY``
(except for the allow-busy commands), SCRIPT KILL stops a script that has not written, a
script that wrote is UNKILLABLE, SHUTDOWN NOSAVE still works, and before the limit other
clients simply wait.

Most tests start the script the way the dispatch does, by calling the EVAL handler on the
node's loop thread for a client's connection (past the limit it returns a future instead of a
reply, which the tests then inspect), and talk to the node from other real clients; the tests
at the end run EVAL from a real client end to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time

import pytest
import redis

from distcache_core.errors import CommandError
from distcache_core.hookspecs import hookimpl
from distcache_core.scripting.commands import eval_

BUSY = b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
LIMIT_MS = 300


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


@pytest.fixture
def node(make_node):
    return make_node(f"node.lua_time_limit_ms={LIMIT_MS}")


def start_script(node, raw_client, script: str, *args: str):
    """EVAL ``script`` for a real client's connection, from the node's loop thread; returns
    the handler's result (a future once past the limit). The loop is blocked meanwhile."""
    caller = raw_client(node.port)
    caller.send(b"PING\r\n")
    assert caller.reply() == b"PONG"
    server = node.node.server

    def run():
        conn = next(iter(server.connections.values()))
        argv = [b"EVAL", script.encode(), *(a.encode() for a in (args or ("0",)))]
        try:
            return eval_(conn, argv)
        except CommandError as exc:
            return exc

    result: list = []
    thread = threading.Thread(target=lambda: result.append(node.call(run)))
    thread.start()
    return thread, result


def request(node, raw_client, line: bytes) -> bytes:
    client = raw_client(node.port)
    client.send(line + b"\r\n")
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = client.sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.rstrip(b"\r\n")


def wait_busy(node, raw_client) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if request(node, raw_client, b"PING") == BUSY:
            return
        time.sleep(0.05)
    raise AssertionError("the node never reported BUSY")


def outcome(node, future):
    """Wait (in the test thread) for a busy script's future; its result or exception."""
    deadline = time.monotonic() + 10
    while not node.call(future.done):
        assert time.monotonic() < deadline, "the script never ended"
        time.sleep(0.02)
    # (Wrapped: node.call re-raises an exception it is handed back.)
    kind, value = node.call(lambda: ("error", future.exception()) if future.exception()
                            else ("result", future.result()))
    return value


def test_busy_then_script_kill(node, raw_client):
    script = "local i = 0 while true do i = i + 1 end"
    thread, result = start_script(node, raw_client, script)
    wait_busy(node, raw_client)
    assert request(node, raw_client, b"GET k") == BUSY
    assert request(node, raw_client, b"SCRIPT LOAD x") == BUSY
    assert request(node, raw_client, b"SHUTDOWN") == BUSY
    # Redis's checks before the busy one still come first.
    assert request(node, raw_client, b"NOSUCH").startswith(b"-ERR unknown command 'NOSUCH'")
    assert request(node, raw_client, b"GET") == (
        b"-ERR wrong number of arguments for 'get' command")
    # allow-busy commands are served.
    assert request(node, raw_client, b"AUTH x").startswith(b"-ERR AUTH <password> called")
    assert request(node, raw_client, b"SCRIPT KILL") == b"+OK"
    thread.join(10)
    future = result[0]
    error = outcome(node, future)
    assert isinstance(error, CommandError)
    assert error.message == ("ERR Script killed by user with SCRIPT KILL... script: "
                             f"{sha1(script)}, on @user_script:1.")
    assert request(node, raw_client, b"PING") == b"+PONG"
    assert request(node, raw_client, b"SCRIPT KILL") == (
        b"-NOTBUSY No scripts in execution right now.")


@pytest.mark.parametrize("script", [
    "while true do pcall(function() while true do end end) end",
    "local co = coroutine.wrap(function() while true do end end) co()",
    "while true do local co = coroutine.create(function() while true do end end) "
    "coroutine.resume(co) end",
    # The script's handler would run with hooks off: it is not called once killed.
    "xpcall(function() while true do end end, function() while true do end end)\n"
    "return 'not reached'",
    "local t = setmetatable({}, {__index = function() while true do end end}) return t.x",
    "while true do pcall(error) end",
])
def test_script_kill_cannot_be_evaded(node, raw_client, script):
    thread, result = start_script(node, raw_client, script)
    wait_busy(node, raw_client)
    assert request(node, raw_client, b"SCRIPT KILL") == b"+OK"
    thread.join(10)
    error = outcome(node, result[0])
    assert "Script killed by user with SCRIPT KILL..." in error.message
    assert request(node, raw_client, b"PING") == b"+PONG"


def test_a_script_that_wrote_is_unkillable_but_ends(node, raw_client):
    # Writes, then runs about a second past the limit by the node's own clock.
    script = """
        redis.call('SET', 'written', '1')
        local start = redis.call('TIME')
        local n = 0
        repeat
            n = n + 1
            redis.call('INCR', 'rounds')
            local now = redis.call('TIME')
        until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 1300000
        return n
    """
    thread, result = start_script(node, raw_client, script)
    wait_busy(node, raw_client)
    assert request(node, raw_client, b"SCRIPT KILL").startswith(
        b"-UNKILLABLE Sorry the script already executed write commands against the dataset.")
    assert request(node, raw_client, b"INCR rounds") == BUSY  # nothing interleaves
    thread.join(10)
    rounds = outcome(node, result[0])
    assert isinstance(rounds, int) and rounds > 0
    # Every INCR of the script ran, before and after the limit, and no one else's.
    assert request(node, raw_client, b"GET rounds") == b"$%d\r\n%d" % (len(str(rounds)), rounds)
    assert request(node, raw_client, b"PING") == b"+PONG"


def test_before_the_limit_other_clients_wait(make_node, raw_client):
    node = make_node("node.lua_time_limit_ms=5000")
    script = ("local start = redis.call('TIME') repeat local now = redis.call('TIME') "
              "until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 700000 "
              "return redis.call('SET', 'done', '1')")
    thread, result = start_script(node, raw_client, script)
    time.sleep(0.1)
    started = time.monotonic()
    assert request(node, raw_client, b"GET done") == b"$1\r\n1"  # answered after the script
    assert time.monotonic() - started > 0.3
    thread.join(10)
    assert result[0] == "OK"


def test_shutdown_nosave_stops_a_busy_node(node, raw_client):
    thread, _ = start_script(node, raw_client, "redis.call('SET', 'k', 'v') while true do end")
    wait_busy(node, raw_client)
    client = raw_client(node.port)
    client.send(b"SHUTDOWN NOSAVE\r\n")
    assert client.is_closed_by_peer(10)
    thread.join(10)
    node._thread.join(10)
    assert not node._thread.is_alive()
    # The unkillable script was stopped with the node: no Lua thread keeps spinning.
    deadline = time.monotonic() + 10
    while any(t.name == "distcache-lua" and t.is_alive() for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the script's thread outlived the node"
        time.sleep(0.05)


# --- end to end --------------------------------------------------------------------------------


def test_eval_client_gets_the_kill_error(node):
    script = "while true do end"
    slow = redis.Redis(port=node.port, socket_timeout=10)
    other = redis.Redis(port=node.port, socket_timeout=10)
    errors: list[Exception] = []

    def run_slow():
        try:
            slow.eval(script, 0)
        except redis.ResponseError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run_slow)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            other.ping()
        except redis.exceptions.BusyLoadingError:
            break
        except redis.ResponseError as exc:
            assert "Redis is busy running a script" in str(exc)
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert other.script_kill()
    thread.join(10)
    assert "Script killed by user with SCRIPT KILL..." in str(errors[0])
    assert other.ping()


def test_eval_client_gets_a_late_result(node):
    client = redis.Redis(port=node.port, socket_timeout=10)
    script = ("local start = redis.call('TIME') repeat local now = redis.call('TIME') "
              "until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 800000 "
              "return 'late'")
    assert client.eval(script, 0) == b"late"
    assert client.ping()


class _HeldBarrier:
    """A persistence stand-in whose durability barrier the test releases by hand."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    @hookimpl
    def distcache_node_started(self, node):
        async def barrier():
            self.calls += 1
            while not self.release.is_set():
                await asyncio.sleep(0.01)

        node.add_barrier_source(barrier)


def test_a_busy_script_that_wrote_replies_once_its_writes_are_durable(make_node):
    held = _HeldBarrier()
    node = make_node(f"node.lua_time_limit_ms={LIMIT_MS}", extra_plugins=[("held", held)])
    client = redis.Redis(port=node.port, socket_timeout=10)
    # Writes only once past the limit: no request batch's barrier covers that write.
    script = ("local start = redis.call('TIME') repeat local now = redis.call('TIME') "
              "until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 600000 "
              "redis.call('SET', 'k', 'v') return 'done'")
    replies: list = []
    thread = threading.Thread(target=lambda: replies.append(client.eval(script, 0)))
    thread.start()
    time.sleep(1.5)  # the script has ended; its writes are not durable yet
    assert replies == []
    held.release.set()
    thread.join(10)
    assert replies == [b"done"]
    client.close()
