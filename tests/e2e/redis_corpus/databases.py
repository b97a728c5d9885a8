"""Logical databases: SELECT MOVE SWAPDB FLUSHDB FLUSHALL, and the key commands, INFO keyspace,
COPY ... DB and RESET as they see the selected database."""

import re

from distcache_core.testing.differential import (
    Case,
    Reply,
    Req,
    scan_reply,
    shape,
    unordered,
)


def KEYSPACE(expected: Reply, actual: Reply) -> str | None:  # noqa: N802
    """INFO keyspace: the same ``dbN:keys=..,expires=..`` lines. ``avg_ttl`` is Redis's
    running estimate from its expiry sampling (its value depends on when the sampler ran);
    DistCache reports 0."""
    def lines(reply: Reply) -> list[str]:
        text = (reply.value or b"").decode()
        return [re.sub(r",avg_ttl=\d+", "", line) for line in text.split("\r\n")
                if line.startswith("db")]
    if expected.kind != actual.kind:
        return f"type {expected.kind!r} != {actual.kind!r}"
    if lines(expected) != lines(actual):
        return f"redis {lines(expected)} != node {lines(actual)}"
    return None

CASES = [
    Case("select-range", [("SELECT", "15"), ("SELECT", "16"), ("SELECT", "-1"), ("SELECT", "x"),
                          ("SELECT", "01"), ("SELECT", "+1"), ("SELECT", "4294967296"),
                          ("SELECT", "-4294967296"), ("SELECT", "2147483647"),
                          ("SELECT", "99999999999999999999"), ("SELECT", "1", "2")]),
    Case("select-separates-keys", [
        ("SET", "k", "zero"), ("SELECT", "1"), ("GET", "k"), ("SET", "k", "one"),
        ("SET", "only1", "x", "EX", "100"), ("DBSIZE",), Req(("KEYS", "*"), unordered),
        Req(("SCAN", "0"), scan_reply), Req(("RANDOMKEY",), shape), ("EXISTS", "k", "only1"),
        Req(("INFO", "keyspace"), KEYSPACE), ("SELECT", "0"), ("GET", "k"), ("DBSIZE",),
        ("KEYS", "*"), ("EXISTS", "only1")]),
    Case("flushdb-per-database", [
        ("SET", "a", "1"), ("SELECT", "3"), ("SET", "b", "2"), ("SET", "c", "3"),
        Req(("INFO", "keyspace"), KEYSPACE), ("FLUSHDB",), ("DBSIZE",), ("SELECT", "0"),
        ("DBSIZE",), ("GET", "a"), Req(("INFO", "keyspace"), KEYSPACE)]),
    Case("flushall-every-database", [
        ("SET", "a", "1"), ("SELECT", "2"), ("SET", "b", "2"), ("SELECT", "15"),
        ("SET", "c", "3"), ("FLUSHALL",), ("DBSIZE",), ("SELECT", "2"), ("DBSIZE",),
        ("SELECT", "0"), ("DBSIZE",), Req(("INFO", "keyspace"), KEYSPACE)]),
    Case("move", [
        ("SET", "k", "v"), ("PEXPIRE", "k", "100000"), ("MOVE", "k", "1"), ("EXISTS", "k"),
        ("SELECT", "1"), ("GET", "k"), ("TTL", "k"), ("MOVE", "k", "1"), ("MOVE", "nope", "0"),
        ("SET", "taken", "1"), ("SELECT", "0"), ("SET", "taken", "0"), ("MOVE", "taken", "1"),
        ("GET", "taken"), ("MOVE", "taken", "16"), ("MOVE", "taken", "-1"),
        ("MOVE", "taken", "x"), ("MOVE", "taken", "4294967296"), ("MOVE", "taken"),
        ("MOVE", "nope", "1")]),
    Case("swapdb", [
        ("SET", "a", "zero"), ("SELECT", "1"), ("SET", "a", "one"), ("SET", "b", "one"),
        ("SWAPDB", "0", "1"), ("GET", "a"), ("DBSIZE",), ("SELECT", "0"), ("GET", "a"),
        ("GET", "b"), ("DBSIZE",), ("SWAPDB", "1", "2"), ("SELECT", "2"), ("GET", "a"),
        Req(("INFO", "keyspace"), KEYSPACE), ("SWAPDB", "2", "2"), ("GET", "a"),
        ("SWAPDB", "0", "16"), ("SWAPDB", "-1", "0"), ("SWAPDB", "x", "0"),
        ("SWAPDB", "0", "y"), ("SWAPDB", "x", "y"), ("SWAPDB", "0", "4294967296"),
        ("SWAPDB", "0")]),
    Case("swapdb-keeps-expiry", [
        ("SET", "t", "v", "EX", "100"), ("SWAPDB", "0", "5"), ("TTL", "t"), ("SELECT", "5"),
        ("TTL", "t"), ("PERSIST", "t"), ("SWAPDB", "5", "6"), ("TTL", "t"), ("SELECT", "6"),
        ("TTL", "t")]),
    Case("copy-db", [
        ("SET", "a", "1", "EX", "100"), ("COPY", "a", "a", "DB", "1"),
        ("COPY", "a", "a", "DB", "0"),
        ("COPY", "a", "b", "DB", "2"), ("COPY", "a", "a", "DB", "1"),
        ("COPY", "a", "a", "DB", "1", "REPLACE"), ("COPY", "a", "a", "DB", "16"),
        ("COPY", "a", "a", "DB", "-1"), ("COPY", "a", "a", "DB", "4294967296"),
        ("COPY", "a", "a", "DB", "x"), ("SELECT", "1"), ("GET", "a"), ("TTL", "a"),
        ("SELECT", "2"), ("GET", "b"), ("COPY", "b", "c", "DB", "0"), ("SELECT", "0"),
        ("GET", "c")]),
    Case("reset-selects-database-0", [("SET", "k", "zero"), ("SELECT", "4"), ("GET", "k"),
                                      ("RESET",), ("GET", "k")]),
    Case("config-get-databases", [("CONFIG", "GET", "databases")]),
]
