"""SETBIT GETBIT BITCOUNT BITPOS BITOP LCS on a real node, and side by side with redis-server.

Redis 7.0 (``src/bitops.c``, ``lcsCommand``) is the reference. The fixed cases are in the
shared corpus (``redis_corpus/bits.py``); here seeded random values, ranges and strings go to
both servers and the raw replies are compared.
"""

from __future__ import annotations

import random
import time

from distcache_core.testing.differential import Case, run_case
from distcache_core.testing.wire import assert_error

OFFSET_ERROR = "ERR bit offset is not an integer or out of range"
BIT_ERROR = "ERR bit is not an integer or out of range"
NOT_INTEGER = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"


def assert_same(redis_server, node, requests) -> None:
    assert run_case(Case("random", requests, resp=(2,)), redis_server.port, node.port) == []


# --- SETBIT / GETBIT ----------------------------------------------------------------------------


def test_setbit_getbit(r):
    assert r.setbit("k", 7, 1) == 0
    assert r.get("k") == b"\x01"
    assert r.setbit("k", 7, 1) == 1
    assert r.setbit("k", 0, 1) == 0
    assert r.get("k") == b"\x81"
    assert r.getbit("k", 0) == 1
    assert r.getbit("k", 1) == 0
    assert r.getbit("k", 1000) == 0
    assert r.getbit("missing", 3) == 0
    # Growing pads with zero bytes.
    assert r.setbit("k", 23, 1) == 0
    assert r.get("k") == b"\x81\x00\x01"
    assert r.setbit("k", 0, 0) == 1
    assert r.get("k") == b"\x01\x00\x01"


def test_setbit_keeps_ttl_and_clearing_a_missing_bit_creates_the_key(r):
    r.set("k", "a", ex=100)
    r.setbit("k", 1, 0)
    assert 0 < r.ttl("k") <= 100
    assert r.setbit("fresh", 9, 0) == 0
    assert r.get("fresh") == b"\x00\x00"


def test_bit_argument_errors(r):
    for offset in ("-1", "x", "4294967296", "1.5", "+1"):
        assert_error(r, OFFSET_ERROR, "SETBIT", "k", offset, "1")
        assert_error(r, OFFSET_ERROR, "GETBIT", "k", offset)
    for value in ("2", "-1", "x", "01"):
        assert_error(r, BIT_ERROR, "SETBIT", "k", "1", value)
    assert r.exists("k") == 0
    assert r.setbit("k", 4294967295, 1) == 0  # the last addressable bit: a 512 MiB value
    assert r.strlen("k") == 512 * 1024 * 1024
    r.delete("k")


# --- BITCOUNT / BITPOS ----------------------------------------------------------------------------


def test_bitcount(r):
    r.set("k", "foobar")
    assert r.bitcount("k") == 26
    assert r.bitcount("k", 0, 0) == 4
    assert r.bitcount("k", 1, 1) == 6
    assert r.bitcount("k", 1, 1, "BYTE") == 6
    assert r.bitcount("k", 5, 30, "BIT") == 17
    assert r.bitcount("k", -2, -1) == 7
    assert r.bitcount("k", -1, -2) == 0
    assert r.bitcount("missing") == 0
    assert_error(r, SYNTAX, "BITCOUNT", "k", "0")
    assert_error(r, SYNTAX, "BITCOUNT", "k", "0", "1", "bits")
    assert_error(r, NOT_INTEGER, "BITCOUNT", "k", "a", "1")
    # A missing key is 0 before the arguments are read.
    assert r.execute_command("BITCOUNT", "missing", "a") == 0


def test_bitpos(r):
    r.set("k", b"\xff\xf0\x00")
    assert r.bitpos("k", 0) == 12
    r.set("k", b"\x00\xff\xf0")
    assert r.bitpos("k", 1, 0) == 8
    assert r.bitpos("k", 1, 2) == 16
    assert r.bitpos("k", 1, 2, -1, "BYTE") == 16
    assert r.bitpos("k", 1, 7, 15, "BIT") == 8
    r.set("k", b"\xff\xff")
    assert r.bitpos("k", 0) == 16  # past the end: the string is padded with zeros
    assert r.bitpos("k", 0, 0, -1) == -1  # an explicit end: no zero in range
    assert r.bitpos("missing", 0) == 0
    assert r.bitpos("missing", 1) == -1
    assert_error(r, "ERR The bit argument must be 1 or 0.", "BITPOS", "k", "2")
    assert_error(r, NOT_INTEGER, "BITPOS", "k", "x")
    assert_error(r, SYNTAX, "BITPOS", "k", "1", "0", "1", "nibble")


# --- BITOP ------------------------------------------------------------------------------------


def test_bitop(r):
    r.set("a", b"\x0f\xf0")
    r.set("b", b"\xff")
    assert r.bitop("AND", "dest", "a", "b") == 2
    assert r.get("dest") == b"\x0f\x00"
    assert r.bitop("or", "dest", "a", "b") == 2
    assert r.get("dest") == b"\xff\xf0"
    assert r.bitop("XOR", "dest", "a", "b", "missing") == 2
    assert r.get("dest") == b"\xf0\xf0"
    assert r.bitop("NOT", "dest", "a") == 2
    assert r.get("dest") == b"\xf0\x0f"
    r.set("dest", "x", ex=100)
    assert r.bitop("AND", "dest", "a", "b") == 2
    assert r.ttl("dest") == -1  # the destination is replaced, TTL and all
    # Only empty sources: the destination is deleted.
    assert r.bitop("OR", "dest", "missing", "missing2") == 0
    assert r.exists("dest") == 0
    assert_error(r, SYNTAX, "BITOP", "NAND", "dest", "a")
    assert_error(r, "ERR BITOP NOT must be called with a single source key.",
                 "BITOP", "NOT", "dest", "a", "b")


def test_bitop_on_large_values_is_fast(r):
    size = 8 * 1024 * 1024
    r.set("a", b"\xaa" * size)
    r.set("b", b"\x0f" * (size // 2))
    started = time.monotonic()
    assert r.bitop("XOR", "dest", "a", "b") == size
    assert r.bitcount("dest") == (size // 2) * 4 + (size // 2) * 4
    assert time.monotonic() - started < 10


# --- LCS --------------------------------------------------------------------------------------


def test_lcs(r):
    r.mset({"a": "ohmytext", "b": "mynewtext"})
    assert r.execute_command("LCS", "a", "b") == b"mytext"
    assert r.execute_command("LCS", "a", "b", "LEN") == 6
    assert r.execute_command("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN") == [
        b"matches", [[[4, 7], [5, 8], 4]], b"len", 6]
    assert r.execute_command("LCS", "a", "missing") == b""
    assert_error(r, "ERR If you want both the length and indexes, please just use IDX.",
                 "LCS", "a", "b", "LEN", "IDX")
    assert_error(r, SYNTAX, "LCS", "a", "b", "MINMATCHLEN")
    r.set("big", "x" * 12000)
    assert_error(r, "ERR Insufficient memory, transient memory for LCS exceeds "
                 "proto-max-bulk-len", "LCS", "big", "big")


def test_lcs_of_long_strings_answers_quickly(r):
    rng = random.Random(7)
    r.set("a", bytes(rng.choice(b"acgt") for _ in range(8000)))
    r.set("b", bytes(rng.choice(b"acgt") for _ in range(8000)))
    started = time.monotonic()
    reply = r.execute_command("LCS", "a", "b", "IDX")
    assert reply[3] > 4000
    assert time.monotonic() - started < 10


# --- side by side with redis-server -----------------------------------------------------------

def _random_value(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 2, 3, 5, 8, 17, 40])
    pool = [0x00, 0xFF, 0x0F, 0xF0, 0x80, 0x01, 0x55]
    return bytes(rng.choice(pool) if rng.random() < 0.7 else rng.getrandbits(8)
                 for _ in range(size))


def test_random_ranges_match_redis(redis_server, builtin_node):
    rng = random.Random(20240607)
    requests: list[tuple] = []
    for round_ in range(60):
        value = _random_value(rng)
        requests.append(("SET", "v", value))
        requests.append(("SET", f"w{round_ % 3}", _random_value(rng)))
        bits = len(value) * 8 + 16
        for _ in range(12):
            start = rng.randint(-bits, bits)
            end = rng.randint(-bits, bits)
            unit = rng.choice(["BIT", "BYTE"])
            bit = rng.choice(["0", "1"])
            requests.append(("BITCOUNT", "v", start, end, unit))
            requests.append(("BITPOS", "v", bit, start, end, unit))
            requests.append(("BITPOS", "v", bit, start))
            if unit == "BIT":
                requests.append(("BITPOS", "v", bit, start, end))
        requests.append(("BITPOS", "v", "0"))
        requests.append(("BITPOS", "v", "1"))
        offset = rng.randint(0, bits)
        requests.append(("SETBIT", "v", offset, rng.choice(["0", "1"])))
        requests.append(("GET", "v"))
        requests.append(("BITOP", rng.choice(["AND", "OR", "XOR"]), "d", "v", "w0", "w1"))
        requests.append(("GET", "d"))
        requests.append(("LCS", "v", "w2", "IDX", "WITHMATCHLEN"))
        requests.append(("LCS", "v", "w1"))
    assert_same(redis_server, builtin_node, requests)


def test_random_lcs_matches_redis(redis_server, builtin_node):
    rng = random.Random(99)
    requests: list[tuple] = []
    for _ in range(80):
        alphabet = rng.choice([b"ab", b"abc", b"acgt", bytes(range(256))])
        a = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        b = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        requests += [("SET", "a", a), ("SET", "b", b), ("LCS", "a", "b"),
                     ("LCS", "a", "b", "IDX", "WITHMATCHLEN"),
                     ("LCS", "a", "b", "IDX", "MINMATCHLEN", rng.randint(0, 4))]
    assert_same(redis_server, builtin_node, requests)
