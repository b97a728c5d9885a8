"""String commands against a real node: redis-py sessions, exact error lines, and raw framing.

Redis 7.0 (``src/t_string.c`` and the redis.io command pages) is the reference for every value,
reply type and error line checked here.
"""

from __future__ import annotations

import time

import pytest

from distcache_core.protocol import encode_request as command
from distcache_core.testing.wire import assert_error, exchange

NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
#: A key and a value that would break any parser that is not binary safe.
BINARY_KEY = b"key\x00with\r\nnul"
BINARY_VALUE = b"\x00\r\n\xff$3\r\nfoo\r\n\x00"






# --- GET / SET --------------------------------------------------------------------------------


def test_get_set_basic(r):
    assert r.get("missing") is None
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", "") is True
    assert r.get("k") == b""


def test_binary_safe_keys_and_values(r):
    assert r.set(BINARY_KEY, BINARY_VALUE) is True
    assert r.get(BINARY_KEY) == BINARY_VALUE
    assert r.strlen(BINARY_KEY) == len(BINARY_VALUE)
    assert r.mget([BINARY_KEY, b"key"]) == [BINARY_VALUE, None]
    assert r.append(BINARY_KEY, b"\r\n") == len(BINARY_VALUE) + 2
    assert r.getrange(BINARY_KEY, 0, 2) == b"\x00\r\n"
    assert r.getdel(BINARY_KEY) == BINARY_VALUE + b"\r\n"
    assert r.exists(BINARY_KEY) == 0


def test_set_nx_xx(r):
    assert r.set("k", "1", xx=True) is None
    assert r.get("k") is None
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.get("k") == b"1"
    assert r.set("k", "3", xx=True) is True
    assert r.get("k") == b"3"
    # Case-insensitive options, repeated NX allowed.
    assert r.execute_command("SET", "k", "4", "xx", "Xx") is True


def test_set_get_option(r):
    assert r.set("k", "1", get=True) is None
    assert r.set("k", "2", get=True) == b"1"
    # With NX the old value is still returned and nothing is written (Redis 7.0 allows NX GET).
    assert r.set("k", "3", nx=True, get=True) == b"2"
    assert r.get("k") == b"2"
    assert r.set("missing", "x", xx=True, get=True) is None
    assert r.exists("missing") == 0
    assert r.set("k", "4", xx=True, get=True) == b"2"
    assert r.get("k") == b"4"


def test_set_expire_options(r):
    assert r.set("ex", "v", ex=100) is True
    assert r.ttl("ex") == 100
    assert r.set("px", "v", px=100_000) is True
    assert 99_000 < r.pttl("px") <= 100_000
    at_seconds = int(time.time()) + 1000
    assert r.set("exat", "v", exat=at_seconds) is True
    assert r.expiretime("exat") == at_seconds
    at_ms = int(time.time() * 1000) + 1_000_000
    assert r.set("pxat", "v", pxat=at_ms) is True
    assert r.pexpiretime("pxat") == at_ms
    # The same expire option twice is accepted; the last one wins.
    assert r.execute_command("SET", "twice", "v", "EX", "10", "EX", "200") is True
    assert r.ttl("twice") == 200


def test_set_replaces_or_keeps_ttl(r):
    r.set("k", "1", ex=100)
    assert r.set("k", "2", keepttl=True) is True
    assert r.ttl("k") == 100
    assert r.get("k") == b"2"
    assert r.set("k", "3") is True
    assert r.ttl("k") == -1


def test_set_px_expires(r):
    r.set("k", "v", px=40)
    assert r.get("k") == b"v"
    time.sleep(0.08)
    assert r.get("k") is None
    assert r.exists("k") == 0


def test_set_exat_pxat_in_the_past_leaves_no_key(r):
    r.set("k", "old")
    assert r.set("k", "v", exat=1) is True
    assert r.get("k") is None
    assert r.set("k", "v", pxat=int(time.time() * 1000) - 10) is True
    assert r.exists("k") == 0


@pytest.mark.parametrize("options", [
    ("NX", "XX"),
    ("XX", "NX"),
    ("EX", "10", "PX", "100"),
    ("PX", "100", "EX", "10"),
    ("EX", "10", "EXAT", "99999999999"),
    ("PXAT", "99999999999999", "PX", "10"),
    ("KEEPTTL", "EX", "10"),
    ("PX", "10", "KEEPTTL"),
    ("EX",),
    ("PXAT",),
    ("PERSIST",),
    ("BOGUS",),
    ("EX", "10", "BOGUS"),
])
def test_set_syntax_errors(r, options):
    assert_error(r, SYNTAX, "SET", "k", "v", *options)
    assert r.exists("k") == 0


@pytest.mark.parametrize("options", [
    ("EX", "0"),
    ("EX", "-1"),
    ("PX", "0"),
    ("EXAT", "-5"),
    ("PXAT", "0"),
    # Seconds that overflow signed 64-bit milliseconds, and a relative time that overflows
    # once the current time is added.
    ("EX", str(LLONG_MAX // 1000 + 1)),
    ("PX", str(LLONG_MAX)),
])
def test_set_invalid_expire_time(r, options):
    assert_error(r, "ERR invalid expire time in 'set' command", "SET", "k", "v", *options)
    assert r.exists("k") == 0


@pytest.mark.parametrize("value", ["abc", "1.5", " 10", "+10", "010", "", "99999999999999999999"])
def test_set_expire_not_an_integer(r, value):
    assert_error(r, NOT_INTEGER, "SET", "k", "v", "EX", value)


def test_setnx(r):
    assert r.setnx("k", "1") is True
    assert r.setnx("k", "2") is False
    assert r.get("k") == b"1"


def test_setex_psetex(r):
    assert r.execute_command("SETEX", "k", "100", "v") is True
    assert r.ttl("k") == 100
    assert r.get("k") == b"v"
    assert r.psetex("p", 100_000, "v") is True
    assert 99_000 < r.pttl("p") <= 100_000
    r.psetex("short", 40, "v")
    time.sleep(0.08)
    assert r.get("short") is None


@pytest.mark.parametrize("name", ["SETEX", "PSETEX"])
def test_setex_psetex_errors(r, name):
    expected = f"ERR invalid expire time in '{name.lower()}' command"
    assert_error(r, expected, name, "k", "0", "v")
    assert_error(r, expected, name, "k", "-10", "v")
    assert_error(r, NOT_INTEGER, name, "k", "ten", "v")
    assert_error(r, f"ERR wrong number of arguments for '{name.lower()}' command", name, "k", "1")
    assert r.exists("k") == 0


def test_getset(r):
    assert r.getset("k", "1") is None
    r.expire("k", 100)
    assert r.getset("k", "2") == b"1"
    assert r.get("k") == b"2"
    assert r.ttl("k") == -1  # GETSET, like SET, drops the TTL


def test_getdel(r):
    assert r.getdel("k") is None
    r.set("k", "v")
    assert r.getdel("k") == b"v"
    assert r.exists("k") == 0


def test_getex(r):
    assert r.getex("missing") is None
    r.set("k", "v")
    assert r.getex("k") == b"v"
    assert r.ttl("k") == -1
    assert r.getex("k", ex=100) == b"v"
    assert r.ttl("k") == 100
    assert r.getex("k", px=200_000) == b"v"
    assert 199_000 < r.pttl("k") <= 200_000
    at = int(time.time()) + 500
    assert r.getex("k", exat=at) == b"v"
    assert r.expiretime("k") == at
    assert r.getex("k", pxat=at * 1000 + 123) == b"v"
    assert r.pexpiretime("k") == at * 1000 + 123
    assert r.getex("k", persist=True) == b"v"
    assert r.ttl("k") == -1


def test_getex_past_time_returns_value_then_deletes(r):
    r.set("k", "v")
    assert r.getex("k", pxat=1) == b"v"
    assert r.exists("k") == 0


def test_getex_px_expires(r):
    r.set("k", "v")
    assert r.getex("k", px=40) == b"v"
    time.sleep(0.08)
    assert r.get("k") is None


@pytest.mark.parametrize("options", [
    ("PERSIST", "EX", "10"),
    ("EX", "10", "PERSIST"),
    ("EX", "10", "PX", "10"),
    ("NX",),
    ("GET",),
    ("KEEPTTL",),
    ("EX",),
])
def test_getex_syntax_errors(r, options):
    r.set("k", "v")
    assert_error(r, SYNTAX, "GETEX", "k", *options)
    assert r.ttl("k") == -1


def test_getex_expire_errors(r):
    r.set("k", "v")
    assert_error(r, "ERR invalid expire time in 'getex' command", "GETEX", "k", "EX", "0")
    assert_error(r, "ERR invalid expire time in 'getex' command", "GETEX", "k", "PX", "-1")
    assert_error(r, NOT_INTEGER, "GETEX", "k", "EX", "soon")
    # As in Redis, the time is only checked once the key is found.
    assert r.execute_command("GETEX", "missing", "EX", "0") is None


# --- MGET / MSET ------------------------------------------------------------------------------


def test_mget_mset(r):
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "missing", "b", "a") == [b"1", None, b"2", b"1"]
    r.expire("a", 100)
    r.mset({"a": "3"})
    assert r.ttl("a") == -1


def test_mset_odd_arguments(r):
    assert_error(r, "ERR wrong number of arguments for 'mset' command", "MSET", "a", "1", "b")
    assert_error(r, "ERR wrong number of arguments for 'msetnx' command", "MSETNX", "a", "1", "b")
    assert_error(r, "ERR wrong number of arguments for 'mset' command", "MSET", "a")
    assert r.exists("a") == 0


def test_msetnx_all_or_nothing(r):
    assert r.msetnx({"a": "1", "b": "2"}) is True
    assert r.msetnx({"c": "3", "b": "x"}) is False
    assert r.mget("a", "b", "c") == [b"1", b"2", None]


# --- APPEND STRLEN GETRANGE SETRANGE ----------------------------------------------------------


def test_append_and_strlen(r):
    assert r.strlen("k") == 0
    assert r.append("k", "Hello") == 5
    assert r.append("k", " World") == 11
    assert r.get("k") == b"Hello World"
    assert r.strlen("k") == 11
    r.expire("k", 100)
    r.append("k", "!")
    assert r.ttl("k") == 100


@pytest.mark.parametrize(("start", "end", "expected"), [
    (0, 3, b"This"),
    (-3, -1, b"ing"),
    (0, -1, b"This is a string"),
    (10, 100, b"string"),
    (5, 3, b""),
    (-1, -5, b""),
    (-100, 3, b"This"),
    (-100, -100, b"T"),
    (100, 200, b""),
    (LLONG_MIN, LLONG_MAX, b"This is a string"),
])
def test_getrange(r, start, end, expected):
    r.set("k", "This is a string")
    assert r.getrange("k", start, end) == expected
    assert r.execute_command("SUBSTR", "k", start, end) == expected


def test_getrange_missing_key_and_errors(r):
    assert r.getrange("missing", 0, -1) == b""
    r.set("empty", "")
    assert r.getrange("empty", 0, -1) == b""
    assert_error(r, NOT_INTEGER, "GETRANGE", "missing", "a", "1")
    assert_error(r, NOT_INTEGER, "GETRANGE", "missing", "0", str(LLONG_MAX + 1))


def test_setrange(r):
    assert r.setrange("k", 6, "Redis") == 11
    assert r.get("k") == b"\x00" * 6 + b"Redis"
    r.set("k", "Hello World")
    r.expire("k", 100)
    assert r.setrange("k", 6, "Redis") == 11
    assert r.get("k") == b"Hello Redis"
    assert r.ttl("k") == 100
    assert r.setrange("k", 13, "!") == 14
    assert r.get("k") == b"Hello Redis\x00\x00!"
    # Setting nothing: the length, and no key created.
    assert r.setrange("k", 100, "") == 14
    assert r.setrange("missing", 5, "") == 0
    assert r.exists("missing") == 0


def test_setrange_errors(r):
    assert_error(r, "ERR offset is out of range", "SETRANGE", "k", "-1", "x")
    assert_error(r, NOT_INTEGER, "SETRANGE", "k", "one", "x")
    assert_error(r, "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                 "SETRANGE", "k", str(512 * 1024 * 1024), "x")
    assert r.exists("k") == 0
    r.set("k", "v")
    assert_error(r, "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                 "SETRANGE", "k", str(512 * 1024 * 1024 - 1), "xy")
    assert r.get("k") == b"v"


# --- counters ---------------------------------------------------------------------------------


def test_incr_decr(r):
    assert r.incr("n") == 1
    assert r.incr("n") == 2
    assert r.decr("n") == 1
    assert r.incrby("n", 10) == 11
    assert r.decrby("n", 20) == -9
    assert r.get("n") == b"-9"
    assert r.decr("other") == -1
    r.set("n", "100")
    r.expire("n", 100)
    assert r.incr("n") == 101
    assert r.ttl("n") == 100  # INCR keeps the TTL


@pytest.mark.parametrize("stored", [
    "abc", "1.5", " 1", "1 ", "+1", "01", "", "9223372036854775808"])
def test_incr_on_a_non_integer(r, stored):
    r.set("n", stored)
    assert_error(r, NOT_INTEGER, "INCR", "n")
    assert r.get("n") == stored.encode()


@pytest.mark.parametrize("increment", ["abc", "1.0", "-0", "9223372036854775808", "0x10"])
def test_incrby_argument_not_an_integer(r, increment):
    assert_error(r, NOT_INTEGER, "INCRBY", "n", increment)
    assert_error(r, NOT_INTEGER, "DECRBY", "n", increment)
    assert r.exists("n") == 0


def test_incr_overflow(r):
    r.set("n", str(LLONG_MAX))
    assert_error(r, "ERR increment or decrement would overflow", "INCR", "n")
    r.set("n", str(LLONG_MIN))
    assert_error(r, "ERR increment or decrement would overflow", "DECR", "n")
    assert_error(r, "ERR increment or decrement would overflow", "DECRBY", "n", "1")
    assert r.incrby("n", LLONG_MAX) == -1
    assert_error(r, "ERR decrement would overflow", "DECRBY", "n", str(LLONG_MIN))
    assert r.get("n") == b"-1"


@pytest.mark.parametrize(("stored", "increment", "expected"), [
    ("10.50", "0.1", b"10.6"),
    ("10.6", "-5", b"5.6"),
    ("5.0e3", "2.0e2", b"5200"),
    (None, "3.0e3", b"3000"),
    ("0.1", "0.2", b"0.3"),
    ("1", "-1", b"0"),
    ("-1.5", "0.5", b"-1"),
    ("1e20", "1", b"100000000000000000000"),  # a 64-bit significand cannot hold the 1
    ("1.5", "0.1", b"1.6"),
    ("-1.4", "1e3", b"998.59999999999999998"),  # what Redis's long double prints
    ("0", "1e-18", b"0"),
    ("0", "0.00000000000000001", b"0.00000000000000001"),
    ("3", "1.5", b"4.5"),
    (None, ".5", b"0.5"),
])
def test_incrbyfloat_formatting(r, stored, increment, expected):
    if stored is not None:
        r.set("f", stored)
    assert r.incrbyfloat("f", increment) == float(expected)
    assert r.get("f") == expected


def test_incrbyfloat_keeps_ttl_and_result_works_with_incr(r):
    r.set("f", "2.5", ex=100)
    r.incrbyfloat("f", "0.5")
    assert r.get("f") == b"3"
    assert r.ttl("f") == 100
    assert r.incr("f") == 4


@pytest.mark.parametrize("bad", ["abc", " 1", "1 ", "1_0", "", "nan", "1e", "--1"])
def test_incrbyfloat_not_a_float(r, bad):
    assert_error(r, NOT_FLOAT, "INCRBYFLOAT", "f", bad)
    r.set("f", bad)
    assert_error(r, NOT_FLOAT, "INCRBYFLOAT", "f", "1")
    assert r.get("f") == bad.encode()


def test_incrbyfloat_nan_or_infinity(r):
    assert_error(r, "ERR increment would produce NaN or Infinity", "INCRBYFLOAT", "f", "inf")
    assert_error(r, "ERR increment would produce NaN or Infinity", "INCRBYFLOAT", "f", "-inf")
    r.set("f", "inf")
    assert_error(r, "ERR increment would produce NaN or Infinity", "INCRBYFLOAT", "f", "1")
    assert r.get("f") == b"inf"


# --- reply framing on the wire ----------------------------------------------------------------


def test_raw_set_get_on_missing_key_is_a_nil_bulk(raw):
    exchange(raw, command("SET", "k", "v", "GET"), b"$-1\r\n")
    exchange(raw, command("SET", "k", "w", "GET"), b"$1\r\nv\r\n")
    exchange(raw, command("SET", "k", "x", "NX"), b"$-1\r\n")
    exchange(raw, command("SET", "k", "x", "XX"), b"+OK\r\n")


def test_raw_mget_with_missing_keys(raw):
    exchange(raw, command("MSET", "a", "1", "c", BINARY_VALUE), b"+OK\r\n")
    expected = b"*3\r\n$1\r\n1\r\n$-1\r\n$%d\r\n%s\r\n" % (len(BINARY_VALUE), BINARY_VALUE)
    exchange(raw, command("MGET", "a", "b", "c"), expected)


def test_raw_integer_and_bulk_replies(raw):
    exchange(raw, command("INCRBYFLOAT", "f", "10.5"), b"$4\r\n10.5\r\n")
    exchange(raw, command("INCRBYFLOAT", "f", "0.1"), b"$4\r\n10.6\r\n")
    exchange(raw, command("INCR", "n"), b":1\r\n")
    exchange(raw, command("SETNX", "n", "x"), b":0\r\n")
    exchange(raw, command("MSETNX", "n", "x"), b":0\r\n")
    exchange(raw, command("APPEND", "s", "ab"), b":2\r\n")
    exchange(raw, command("STRLEN", "s"), b":2\r\n")
    exchange(raw, command("GETRANGE", "nokey", "0", "-1"), b"$0\r\n\r\n")
    exchange(raw, command("GETDEL", "nokey"), b"$-1\r\n")
    exchange(raw, command("SET", "k", "v", "EX", "0"),
             b"-ERR invalid expire time in 'set' command\r\n")


def test_raw_inline_binary_roundtrip(raw):
    raw.send(command("SET", BINARY_KEY, BINARY_VALUE) + command("GET", BINARY_KEY))
    assert raw.replies(2) == [b"OK", BINARY_VALUE]
