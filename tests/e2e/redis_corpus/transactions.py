"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH, with what another client does in between
(``conn=1``) and keys expiring (``Pause``)."""

from distcache_core.testing.differential import Case, Pause, Req, shape

CASES = [
    Case("multi-exec", [("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("GET", "a"),
                        ("MGET", "a", "nope"), ("EXEC",), ("GET", "a"), ("MULTI",), ("EXEC",)]),
    Case("multi-errors-abort", [
        ("MULTI",), ("MULTI",), ("WATCH", "a"), ("SET", "a", "1"), ("GET",),
        ("NOSUCH", "x"), ("SAVE",), ("SET", "b", "2"), ("EXEC",), ("GET", "a"), ("EXEC",),
        ("DISCARD",), ("MULTI", "x"), ("EXEC", "x"), ("DISCARD", "x"), ("UNWATCH", "x"),
        ("WATCH",)]),
    Case("multi-subcommand-errors-abort", [
        ("MULTI",), ("CLIENT", "LIST"), ("CLIENT", "ID", "x"), ("EXEC",), ("MULTI",),
        ("CONFIG", "BOGUS"), ("EXEC",), ("MULTI",), ("CONFIG", "GET", "maxmemory"),
        Req(("CLIENT", "ID"), shape), Req(("EXEC",), shape)]),
    Case("exec-runtime-errors", [
        ("MULTI",), ("SET", "s", "x"), ("INCR", "s"), ("SET", "k", "v", "EX", "0"),
        ("GET", "s"), ("SETRANGE", "s", "-1", "x"), ("APPEND", "s", "y"), ("EXEC",)]),
    Case("multi-nested-and-discard", [
        ("MULTI",), ("SET", "a", "1"), ("MULTI",), ("SET", "b", "2"), ("DISCARD",),
        ("EXISTS", "a", "b"), ("DISCARD",), ("MULTI",), ("MULTI",), ("EXEC",)]),
    Case("multi-select", [
        ("SET", "k", "zero"), ("MULTI",), ("SELECT", "1"), ("SELECT", "99"), ("SET", "k", "one"),
        ("GET", "k"), ("EXEC",), ("GET", "k"), ("SELECT", "0"), ("GET", "k")]),
    Case("multi-reset-quit", [("MULTI",), ("SET", "a", "1"), ("RESET",), ("EXEC",),
                              ("GET", "a"), ("MULTI",), ("SET", "a", "1"), ("QUIT",)]),
    Case("watch-own-write", [
        ("SET", "k", "1"), ("WATCH", "k"), ("SET", "k", "2"), ("MULTI",), ("GET", "k"),
        ("EXEC",), ("WATCH", "k"), ("MULTI",), ("INCR", "k"), ("EXEC",), ("GET", "k")]),
    Case("watch-other-client", [
        ("SET", "k", "1"), ("WATCH", "k", "other"), Req(("GET", "k"), conn=1),
        ("MULTI",), ("INCR", "k"), ("EXEC",),
        ("WATCH", "k"), Req(("SET", "k", "9"), conn=1), ("MULTI",), ("INCR", "k"), ("EXEC",),
        ("WATCH", "missing"), Req(("SET", "missing", "x"), conn=1), ("MULTI",), ("EXEC",),
        ("WATCH", "k"), Req(("DEL", "k"), conn=1), ("MULTI",), ("EXEC",),
        ("WATCH", "k"), Req(("DEL", "k"), conn=1), ("MULTI",), ("EXEC",),
        ("SET", "k", "1"), ("WATCH", "k"), Req(("EXPIRE", "k", "100"), conn=1), ("MULTI",),
        ("EXEC",), ("WATCH", "k"), Req(("PERSIST", "k"), conn=1), ("MULTI",), ("EXEC",),
        ("WATCH", "k"), Req(("PERSIST", "k"), conn=1), ("MULTI",), ("EXEC",)]),
    Case("unwatch-and-discard-forget", [
        ("SET", "k", "1"), ("WATCH", "k"), ("UNWATCH",), Req(("SET", "k", "2"), conn=1),
        ("MULTI",), ("GET", "k"), ("EXEC",), ("WATCH", "k"), ("MULTI",), ("DISCARD",),
        Req(("SET", "k", "3"), conn=1), ("MULTI",), ("GET", "k"), ("EXEC",),
        ("WATCH", "k"), ("RESET",), Req(("SET", "k", "4"), conn=1), ("MULTI",), ("EXEC",)]),
    Case("watch-per-database", [
        ("WATCH", "k"), Req(("SELECT", "1"), conn=1), Req(("SET", "k", "x"), conn=1),
        ("MULTI",), ("EXEC",), ("SELECT", "1"), ("WATCH", "k"),
        Req(("SET", "k", "y"), conn=1), ("MULTI",), ("EXEC",)]),
    Case("watch-expiry", [
        ("SET", "k", "v", "PX", "200"), ("WATCH", "k"), Pause(0.4), ("MULTI",), ("EXEC",),
        ("SET", "k", "v", "PX", "100"), Pause(0.3), ("WATCH", "k"), ("MULTI",), ("EXEC",)]),
    Case("watch-flush", [
        ("SET", "k", "v"), ("WATCH", "k"), Req(("FLUSHDB",), conn=1), ("MULTI",), ("EXEC",),
        ("WATCH", "k"), Req(("FLUSHDB",), conn=1), ("MULTI",), ("EXEC",),
        ("SET", "k", "v"), ("WATCH", "k"), Req(("FLUSHALL",), conn=1), ("MULTI",), ("EXEC",),
        ("SELECT", "2"), ("SET", "k", "v"), ("WATCH", "k"), Req(("FLUSHDB",), conn=1),
        ("MULTI",), ("EXEC",), ("WATCH", "k"), Req(("FLUSHALL",), conn=1), ("MULTI",),
        ("EXEC",)]),
    Case("watch-swapdb", [
        ("WATCH", "k"), Req(("SWAPDB", "0", "1"), conn=1), ("MULTI",), ("EXEC",),
        Req(("SELECT", "1"), conn=1), Req(("SET", "k", "in1"), conn=1),
        ("WATCH", "k"), Req(("SWAPDB", "0", "1"), conn=1), ("MULTI",), ("GET", "k"), ("EXEC",),
        ("WATCH", "k"), Req(("SWAPDB", "1", "0"), conn=1), ("MULTI",), ("GET", "k"), ("EXEC",),
        ("WATCH", "k"), Req(("SWAPDB", "2", "3"), conn=1), ("MULTI",), ("EXEC",)]),
    Case("exec-reply-types", [
        ("MULTI",), ("PING",), ("ECHO", "hi"), ("GET", "nope"), ("TTL", "nope"),
        ("CONFIG", "GET", "maxmemory"), ("SET", "f", "1.5"), ("INCRBYFLOAT", "f", "1"),
        ("SCAN", "0", "MATCH", "nope*"), ("EXEC",)]),
]
