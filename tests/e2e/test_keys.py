"""Generic key and expiry commands against a real node: redis-py sessions, exact error lines,
and raw framing.

Redis 7.0 (``src/db.c``, ``src/expire.c`` and the redis.io command pages) is the reference.
"""

from __future__ import annotations

import time

import pytest

from distcache_core.protocol import encode_request as command
from distcache_core.testing.wire import assert_error, exchange

NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"
LLONG_MAX = 2**63 - 1
BINARY_KEY = b"key\x00with\r\nnul"






def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- DEL UNLINK EXISTS TYPE TOUCH -------------------------------------------------------------


def test_del_unlink_exists(r):
    r.mset({"a": "1", "b": "2", "c": "3", BINARY_KEY: "4"})
    assert r.exists("a", "a", "b", "missing") == 3  # duplicates count
    assert r.delete("a", "a", "missing") == 1  # the second "a" is already gone
    assert r.unlink("b", "c") == 2
    assert r.exists(BINARY_KEY) == 1
    assert r.delete(BINARY_KEY) == 1
    assert r.exists("a", "b", "c", BINARY_KEY) == 0
    assert r.delete("a") == 0


def test_type(r):
    r.set("k", "v")
    assert r.type("k") == b"string"
    assert r.type("missing") == b"none"


def test_touch(r):
    r.mset({"a": "1", "b": "2"})
    assert r.touch("a", "b", "missing", "a") == 3


def test_arity_errors(r):
    assert_error(r, "ERR wrong number of arguments for 'del' command", "DEL")
    assert_error(r, "ERR wrong number of arguments for 'expire' command", "EXPIRE", "k")
    assert_error(r, "ERR wrong number of arguments for 'rename' command", "RENAME", "k")


# --- EXPIRE family ----------------------------------------------------------------------------


def test_ttl_pttl_on_missing_and_persistent_keys(r):
    assert r.ttl("missing") == -2
    assert r.pttl("missing") == -2
    assert r.expiretime("missing") == -2
    assert r.pexpiretime("missing") == -2
    r.set("k", "v")
    assert r.ttl("k") == -1
    assert r.pttl("k") == -1
    assert r.expiretime("k") == -1
    assert r.pexpiretime("k") == -1


def test_expire_and_ttl(r):
    assert r.expire("missing", 100) is False
    r.set("k", "v")
    assert r.expire("k", 100) is True
    assert r.ttl("k") == 100
    assert 99_000 < r.pttl("k") <= 100_000
    assert r.pexpire("k", 50_000) is True
    assert r.ttl("k") == 50
    # TTL rounds to the nearest second: 1499 ms is 1, 1500 ms is 2.
    r.pexpire("k", 1499)
    assert r.ttl("k") == 1


def test_expireat_pexpireat_and_expiretime(r):
    r.set("k", "v")
    at = int(time.time()) + 1000
    assert r.expireat("k", at) is True
    assert r.expiretime("k") == at
    assert r.pexpiretime("k") == at * 1000
    at_ms = now_ms() + 123_456
    assert r.pexpireat("k", at_ms) is True
    assert r.pexpiretime("k") == at_ms
    assert r.expiretime("k") == at_ms // 1000
    assert r.pexpireat("missing", at_ms) is False


@pytest.mark.parametrize("args", [
    ("EXPIRE", "k", "-1"),
    ("PEXPIRE", "k", "0"),
    ("EXPIREAT", "k", "1"),
    ("PEXPIREAT", "k", "-100"),
])
def test_expire_in_the_past_deletes(r, args):
    r.set("k", "v")
    assert r.execute_command(*args) == 1
    assert r.exists("k") == 0
    assert r.get("k") is None


def test_pexpire_expires_lazily(r):
    r.set("k", "v")
    r.pexpire("k", 40)
    assert r.get("k") == b"v"
    time.sleep(0.08)
    assert r.get("k") is None
    assert r.ttl("k") == -2
    assert r.delete("k") == 0


def test_expire_nx_xx(r):
    r.set("k", "v")
    assert r.expire("k", 100, xx=True) is False
    assert r.ttl("k") == -1
    assert r.expire("k", 100, nx=True) is True
    assert r.expire("k", 200, nx=True) is False
    assert r.ttl("k") == 100
    assert r.expire("k", 300, xx=True) is True
    assert r.ttl("k") == 300
    assert r.expire("missing", 100, nx=True) is False


def test_expire_gt_lt(r):
    r.set("k", "v")
    # No TTL counts as infinite: GT never beats it, LT always does.
    assert r.expire("k", 100, gt=True) is False
    assert r.ttl("k") == -1
    assert r.expire("k", 100, lt=True) is True
    assert r.ttl("k") == 100
    assert r.expire("k", 50, gt=True) is False
    at_ms = r.pexpiretime("k")
    assert r.pexpireat("k", at_ms, gt=True) is False  # equal is not greater
    assert r.pexpireat("k", at_ms, lt=True) is False  # nor less
    assert r.expire("k", 200, gt=True) is True
    assert r.ttl("k") == 200
    assert r.expire("k", 300, lt=True) is False
    assert r.expire("k", 150, lt=True) is True
    assert r.ttl("k") == 150
    # XX with GT or LT combine.
    assert r.execute_command("EXPIRE", "k", "400", "XX", "GT") == 1
    assert r.ttl("k") == 400
    # Repeated options are allowed.
    assert r.execute_command("EXPIRE", "k", "500", "gt", "GT") == 1


@pytest.mark.parametrize(("options", "expected"), [
    (("NX", "XX"), "ERR NX and XX, GT or LT options at the same time are not compatible"),
    (("NX", "GT"), "ERR NX and XX, GT or LT options at the same time are not compatible"),
    (("LT", "NX"), "ERR NX and XX, GT or LT options at the same time are not compatible"),
    (("GT", "LT"), "ERR GT and LT options at the same time are not compatible"),
    (("XX", "LT", "GT"), "ERR GT and LT options at the same time are not compatible"),
    (("Bogus",), "ERR Unsupported option Bogus"),
    (("NX", "EX"), "ERR Unsupported option EX"),
])
def test_expire_option_errors(r, options, expected):
    r.set("k", "v")
    for name in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
        assert_error(r, expected, name, "k", "100", *options)
    assert r.ttl("k") == -1


def test_expire_options_are_checked_before_the_time(r):
    assert_error(r, "ERR Unsupported option FOO", "EXPIRE", "k", "soon", "FOO")
    assert_error(r, NOT_INTEGER, "EXPIRE", "k", "soon", "NX")


@pytest.mark.parametrize("name", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
@pytest.mark.parametrize("value", ["soon", "1.5", " 1", "+1", "", str(LLONG_MAX + 1)])
def test_expire_not_an_integer(r, name, value):
    r.set("k", "v")
    assert_error(r, NOT_INTEGER, name, "k", value)


@pytest.mark.parametrize(("name", "value"), [
    ("EXPIRE", str(LLONG_MAX // 1000 + 1)),
    ("EXPIRE", str(-(LLONG_MAX // 1000) - 1)),
    ("EXPIREAT", str(LLONG_MAX // 1000 + 1)),
    ("PEXPIRE", str(LLONG_MAX)),
    ("EXPIRE", str(LLONG_MAX // 1000)),  # fits in ms, overflows once now is added
])
def test_expire_overflow(r, name, value):
    r.set("k", "v")
    assert_error(r, f"ERR invalid expire time in '{name.lower()}' command", name, "k", value)
    assert r.ttl("k") == -1


def test_expireat_far_future_is_valid(r):
    r.set("k", "v")
    assert r.execute_command("PEXPIREAT", "k", str(LLONG_MAX)) == 1
    assert r.pexpiretime("k") == LLONG_MAX
    assert r.execute_command("EXPIREAT", "k", str(LLONG_MAX // 1000)) == 1
    assert r.expiretime("k") == LLONG_MAX // 1000


def test_persist(r):
    assert r.persist("missing") is False
    r.set("k", "v")
    assert r.persist("k") is False
    r.expire("k", 100)
    assert r.persist("k") is True
    assert r.ttl("k") == -1
    assert r.get("k") == b"v"


# --- KEYS SCAN RANDOMKEY ----------------------------------------------------------------------


def test_keys(r):
    assert r.keys("*") == []
    r.mset({"foo": "1", "fob": "2", "bar": "3", BINARY_KEY: "4"})
    assert sorted(r.keys("*")) == sorted([b"foo", b"fob", b"bar", BINARY_KEY])
    assert sorted(r.keys("fo?")) == [b"fob", b"foo"]
    assert r.keys("b*") == [b"bar"]
    assert r.keys("key\x00*") == [BINARY_KEY]
    assert r.keys("nothing*") == []


def test_keys_skips_expired(r):
    r.set("live", "1")
    r.set("dying", "2", px=30)
    time.sleep(0.06)
    assert r.keys("*") == [b"live"]


def test_scan_full_iteration(r):
    expected = {b"key:%d" % i for i in range(57)} | {BINARY_KEY}
    r.mset({key: "v" for key in expected})
    seen: set[bytes] = set()
    cursor = 0
    calls = 0
    while True:
        cursor, batch = r.scan(cursor, count=10)
        seen.update(batch)
        calls += 1
        if cursor == 0:
            break
    assert seen == expected
    assert calls > 1
    assert set(r.scan_iter(match="key:1*", count=5)) == {
        key for key in expected if key.startswith(b"key:1")}


def test_scan_type_filter(r):
    r.mset({"a": "1", "b": "2"})
    assert set(r.scan_iter(_type="string")) == {b"a", b"b"}
    assert set(r.scan_iter(_type="STRING")) == {b"a", b"b"}
    assert list(r.scan_iter(_type="hash")) == []
    # Redis 7.0 knows no type check: an unknown name simply matches nothing.
    assert list(r.scan_iter(_type="nosuchtype")) == []


@pytest.mark.parametrize(("args", "expected"), [
    (("SCAN", "abc"), "ERR invalid cursor"),
    (("SCAN", " 1"), "ERR invalid cursor"),
    (("SCAN", "18446744073709551616"), "ERR invalid cursor"),
    (("SCAN", "0", "COUNT", "0"), SYNTAX),
    (("SCAN", "0", "COUNT", "-1"), SYNTAX),
    (("SCAN", "0", "COUNT", "ten"), NOT_INTEGER),
    (("SCAN", "0", "COUNT"), SYNTAX),
    (("SCAN", "0", "MATCH"), SYNTAX),
    (("SCAN", "0", "BOGUS", "1"), SYNTAX),
    # The cursor is checked before the options.
    (("SCAN", "x", "COUNT", "0"), "ERR invalid cursor"),
])
def test_scan_errors(r, args, expected):
    assert_error(r, expected, *args)


def test_randomkey(r):
    assert r.randomkey() is None
    r.set("only", "v")
    assert r.randomkey() == b"only"
    r.mset({"a": "1", "b": "2"})
    assert r.randomkey() in {b"only", b"a", b"b"}


# --- RENAME RENAMENX COPY ---------------------------------------------------------------------


def test_rename_keeps_value_and_ttl(r):
    r.set("src", "v", ex=100)
    assert r.rename("src", "dst") is True
    assert r.exists("src") == 0
    assert r.get("dst") == b"v"
    assert r.ttl("dst") == 100
    # Overwrites the destination, and its TTL, with the source's state.
    r.set("other", "w")
    assert r.rename("other", "dst") is True
    assert r.get("dst") == b"w"
    assert r.ttl("dst") == -1


def test_rename_binary_and_same_key(r):
    r.set(BINARY_KEY, "v")
    assert r.rename(BINARY_KEY, b"plain\r\n") is True
    assert r.get(b"plain\r\n") == b"v"
    assert r.rename(b"plain\r\n", b"plain\r\n") is True
    assert r.get(b"plain\r\n") == b"v"


def test_rename_errors(r):
    assert_error(r, "ERR no such key", "RENAME", "missing", "dst")
    assert_error(r, "ERR no such key", "RENAMENX", "missing", "dst")
    assert_error(r, "ERR no such key", "RENAME", "missing", "missing")


def test_renamenx(r):
    r.mset({"a": "1", "b": "2"})
    assert r.renamenx("a", "b") is False
    assert r.mget("a", "b") == [b"1", b"2"]
    assert r.renamenx("a", "c") is True
    assert r.mget("a", "c") == [None, b"1"]
    assert r.renamenx("c", "c") is False


def test_copy(r):
    r.set("src", "v", ex=100)
    assert r.copy("src", "dst") is True
    assert r.get("dst") == b"v"
    assert r.ttl("dst") == 100
    assert r.get("src") == b"v"
    r.set("src", "w")
    assert r.copy("src", "dst") is False
    assert r.get("dst") == b"v"
    assert r.copy("src", "dst", replace=True) is True
    assert r.get("dst") == b"w"
    assert r.ttl("dst") == -1
    assert r.copy("missing", "dst", replace=True) is False
    assert r.execute_command("COPY", "src", "db0", "DB", "0") == 1


def test_copy_errors(r):
    r.set("src", "v")
    assert_error(r, "ERR source and destination objects are the same", "COPY", "src", "src")
    assert_error(r, "ERR DB index is out of range", "COPY", "src", "dst", "DB", "16")
    assert_error(r, NOT_INTEGER, "COPY", "src", "dst", "DB", "one")
    assert_error(r, SYNTAX, "COPY", "src", "dst", "BOGUS")
    assert_error(r, SYNTAX, "COPY", "src", "dst", "DB")
    assert r.exists("dst") == 0


# --- reply framing on the wire ----------------------------------------------------------------


def test_raw_reply_types(raw):
    exchange(raw, command("MSET", "a", "1", "b", "2"), b"+OK\r\n")
    exchange(raw, command("DEL", "a", "b", "c"), b":2\r\n")
    exchange(raw, command("EXISTS", "a"), b":0\r\n")
    exchange(raw, command("TYPE", "a"), b"+none\r\n")
    exchange(raw, command("SET", "a", "1"), b"+OK\r\n")
    exchange(raw, command("TYPE", "a"), b"+string\r\n")
    exchange(raw, command("EXPIRE", "a", "100"), b":1\r\n")
    exchange(raw, command("TTL", "a"), b":100\r\n")
    exchange(raw, command("PERSIST", "a"), b":1\r\n")
    exchange(raw, command("TTL", "nokey"), b":-2\r\n")
    exchange(raw, command("RENAME", "a", "b"), b"+OK\r\n")
    exchange(raw, command("RENAMENX", "b", "b"), b":0\r\n")
    exchange(raw, command("KEYS", "*"), b"*1\r\n$1\r\nb\r\n")
    exchange(raw, command("SCAN", "0"), b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n")
    exchange(raw, command("RANDOMKEY"), b"$1\r\nb\r\n")
    exchange(raw, command("DEL", "b"), b":1\r\n")
    exchange(raw, command("RANDOMKEY"), b"$-1\r\n")
    exchange(raw, command("RENAME", "b", "c"), b"-ERR no such key\r\n")
    exchange(raw, command("EXPIRE", "b", "1", "GT", "LT"),
             b"-ERR GT and LT options at the same time are not compatible\r\n")


def test_raw_resp3_integer_replies_are_not_booleans(raw):
    """After HELLO 3 a Python bool would go out as ``#t``; Redis sends these as integers."""
    raw.send(command("HELLO", "3"))
    raw.reply()
    exchange(raw, command("SET", "a", "1"), b"+OK\r\n")
    exchange(raw, command("EXISTS", "a"), b":1\r\n")
    exchange(raw, command("EXPIRE", "a", "100"), b":1\r\n")
    exchange(raw, command("PERSIST", "a"), b":1\r\n")
    exchange(raw, command("PERSIST", "a"), b":0\r\n")
    exchange(raw, command("TOUCH", "a"), b":1\r\n")
    exchange(raw, command("COPY", "a", "b"), b":1\r\n")
    exchange(raw, command("RENAMENX", "a", "b"), b":0\r\n")
    exchange(raw, command("SETNX", "a", "2"), b":0\r\n")
    exchange(raw, command("MSETNX", "c", "3"), b":1\r\n")
    exchange(raw, command("DEL", "a", "b"), b":2\r\n")
    exchange(raw, command("GET", "a"), b"_\r\n")
    exchange(raw, command("INCRBYFLOAT", "f", "1.5"), b"$3\r\n1.5\r\n")
