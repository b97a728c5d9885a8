"""Lua scripting on a real node through redis-py, the way applications use it: registered
scripts (EVALSHA with a fallback to SCRIPT LOAD), redis-py's Lock (a set of EVALSHA scripts),
scripts in pipelines, third-party commands called from scripts.

Reply shapes and error lines are checked against redis-server in redis_corpus/scripting.py;
the sandbox in test_lua_sandbox.py; the time limit in test_scripting_busy.py.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import redis

from distcache_core.command_table import Command
from distcache_core.hookspecs import hookimpl
from distcache_core.testing.wire import assert_error


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def test_eval_reads_and_writes_atomically(r):
    script = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return -1 end
        redis.call('SET', KEYS[1], current + tonumber(ARGV[1]))
        return current + tonumber(ARGV[1])
    """
    assert r.eval(script, 1, "budget", 30, 100) == 30
    assert r.eval(script, 1, "budget", 60, 100) == 90
    assert r.eval(script, 1, "budget", 20, 100) == -1
    assert r.get("budget") == b"90"


def test_registered_script_falls_back_to_script_load(r):
    incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert r.script_exists(incr_by.sha) == [False]
    assert incr_by(keys=["n"], args=[5]) == 5  # NOSCRIPT, then SCRIPT LOAD, then EVALSHA
    assert r.script_exists(incr_by.sha) == [True]
    assert incr_by(keys=["n"], args=[2]) == 7
    r.script_flush()
    assert r.script_exists(incr_by.sha) == [False]
    assert incr_by(keys=["n"], args=[1]) == 8


def test_scripts_in_a_pipeline(r):
    double = r.register_script("return redis.call('SET', KEYS[1], ARGV[1] * 2)")
    pipe = r.pipeline(transaction=False)
    double(keys=["a"], args=[21], client=pipe)
    pipe.get("a")
    pipe.eval("return #KEYS", 2, "x", "y")
    assert pipe.execute() == [b"OK", b"42", 2]


def test_redis_py_lock(r):
    lock = r.lock("resource", timeout=10, blocking_timeout=1)
    assert lock.acquire()
    assert r.get("resource") == lock.local.token
    other = r.lock("resource", timeout=10, blocking_timeout=0.2)
    assert not other.acquire()
    lock.extend(5)  # a script
    assert 10 < r.pttl("resource") <= 15_000
    lock.reacquire()  # a script
    assert lock.owned()
    lock.release()  # a script
    assert r.get("resource") is None
    # A lock whose key now holds someone else's token: the release script refuses.
    assert lock.acquire()
    r.set("resource", "someone-else")
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        lock.release()
    assert r.get("resource") == b"someone-else"
    r.delete("resource")
    with r.lock("resource", timeout=5):
        assert r.exists("resource") == 1
    assert r.exists("resource") == 0


def test_lock_excludes_concurrent_holders(node):
    clients = [redis.Redis(port=node.port, socket_timeout=5) for _ in range(4)]
    inside = []
    overlap = []

    def worker(client):
        for _ in range(5):
            with client.lock("shared", timeout=5, sleep=0.001, blocking_timeout=10):
                inside.append(1)
                if len(inside) > 1:
                    overlap.append(1)
                time.sleep(0.002)
                inside.pop()

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for client in clients:
        client.close()
    assert not overlap


def test_binary_safe_keys_and_arguments(r):
    key, value = b"k\x00\r\n", b"\xff\x00v\r\n"
    assert r.eval("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])",
                  1, key, value) == value
    assert r.get(key) == value


def test_many_keys_and_arguments(r):
    keys = [f"k{i}" for i in range(3000)]
    assert r.eval("for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[i]) end "
                  "return #KEYS", len(keys), *keys, *range(3000)) == 3000
    assert r.get("k2999") == b"2999"
    assert len(r.eval("return redis.call('MGET', unpack(KEYS))", 3000, *keys)) == 3000


def test_large_replies(r):
    reply = r.eval("local t = {} for i = 1, 100000 do t[i] = i end return t", 0)
    assert len(reply) == 100000 and reply[-1] == 100000
    assert len(r.eval("return string.rep('x', 10 * 1024 * 1024)", 0)) == 10 * 1024 * 1024


def test_script_errors_reach_the_client(r):
    r.set("s", "text")
    script = "return redis.call('INCR', KEYS[1])"
    assert_error(r, f"ERR value is not an integer or out of range script: {sha1(script)}, "
                 "on @user_script:1.", "EVAL", script, 1, "s")
    # redis.pcall hands the error to the script as a table; returned, it is the reply.
    assert_error(r, "ERR value is not an integer or out of range",
                 "EVAL", "return redis.pcall('INCR', KEYS[1])", 1, "s")
    assert r.eval("local e = redis.pcall('INCR', KEYS[1]) return e.err", 1, "s") == (
        b"ERR value is not an integer or out of range")
    with pytest.raises(redis.ResponseError, match="My Error"):
        r.eval("return redis.error_reply('My Error')", 0)


def test_select_inside_a_script_leaves_the_client_alone(r):
    # SELECT 0 is the one database until the databases work lands; the client keeps it.
    assert r.eval("return redis.call('SELECT', '0')", 0) == b"OK"
    assert r.set("after", "1")


def test_read_only_scripts(r):
    r.set("a", "1")
    assert r.eval_ro("return redis.call('GET', KEYS[1])", 1, "a") == b"1"
    script = "return redis.call('DEL', KEYS[1])"
    assert_error(r, "ERR Write commands are not allowed from read-only scripts. script: "
                 f"{sha1(script)}, on @user_script:1.", "EVAL_RO", script, 1, "a")
    assert r.get("a") == b"1"


class _Plugin:
    """A third-party plugin: one command that scripts may call, one that raises a bug."""

    @hookimpl
    def distcache_register_commands(self, register):
        def shout(conn, argv):
            return argv[1].upper() + b"!"

        def broken(conn, argv):
            raise RuntimeError("a bug in a plugin")

        register(Command(name="shout", handler=shout, arity=2, flags={"fast"}))
        register(Command(name="broken", handler=broken, arity=1))


def test_third_party_commands_are_callable_from_scripts(make_node):
    node = make_node(extra_plugins=[("shout-plugin", _Plugin())])
    client = redis.Redis(port=node.port, socket_timeout=5)
    try:
        assert client.eval("return redis.call('SHOUT', ARGV[1])", 0, "hi") == b"HI!"
        # A handler's exception reaches the script as Redis's error table, never as a
        # Python object.
        assert client.eval("local ok, e = pcall(redis.call, 'broken') return {type(e), e}",
                           0) == [b"string", b"ERR internal error while running the command "
                                  b"(see node log)"]
    finally:
        client.close()


def test_small_eval_cost(r):
    """The cost of a small EVAL (one redis.call) against a GET on the same connection, for the
    README; generous bound so that a loaded machine does not fail it."""
    sha = r.script_load("return redis.call('GET', KEYS[1])")
    r.set("k", "v")
    rounds = 2000

    def timed(call) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        return (time.perf_counter() - started) / rounds * 1e6

    get_us = timed(lambda: r.get("k"))
    evalsha_us = timed(lambda: r.evalsha(sha, 1, "k"))
    print(f"GET {get_us:.1f} us, EVALSHA with one redis.call {evalsha_us:.1f} us a round trip")
    assert evalsha_us < get_us + 5000
