"""OBJECT, MEMORY, DEBUG (off by default, as Redis 7) and MONITOR; what a monitor sees of
another client's commands is read with ``Req(b"")`` (sends nothing, reads the next line)."""

import re

from distcache_core.testing.differential import Case, Reply, Req, map_keys, shape


def monitor_line(expected: Reply, actual: Reply) -> str | None:
    """A MONITOR line without its clock and the client's port: ``+<time> [db addr] args``."""
    def strip(reply: Reply) -> bytes:
        return re.sub(rb"^\+\d+\.\d{6} \[(\d+) [^\]:]+:\d+\]", rb"+T [\1 ADDR]", reply.raw)
    if strip(expected) == strip(actual):
        return None
    return f"redis {expected.describe()} != node {actual.describe()}"


SEEN = Req(b"", monitor_line)

CASES = [
    Case("object-encoding-refcount", [
        ("SET", "i", "123"), ("OBJECT", "ENCODING", "i"), ("OBJECT", "REFCOUNT", "i"),
        ("SET", "n", "-5"), ("OBJECT", "ENCODING", "n"), ("OBJECT", "REFCOUNT", "n"),
        ("SET", "big", "10000"), ("OBJECT", "REFCOUNT", "big"),
        ("SET", "e", "x" * 44), ("OBJECT", "ENCODING", "e"),
        ("SET", "r", "x" * 45), ("OBJECT", "ENCODING", "r"),
        ("SET", "f", "1.5"), ("OBJECT", "ENCODING", "f"), ("SET", "z", "01"),
        ("OBJECT", "ENCODING", "z"), ("SET", "l", "12345678901234567890"),
        ("OBJECT", "ENCODING", "l"), ("INCR", "n"), ("OBJECT", "ENCODING", "n"),
        ("OBJECT", "ENCODING", "nope"), ("OBJECT", "REFCOUNT", "nope"),
        ("OBJECT", "IDLETIME", "nope"), ("OBJECT", "FREQ", "nope"), ("OBJECT", "FREQ", "i"),
        ("OBJECT", "ENCODING"), ("OBJECT", "BOGUS", "k"), ("OBJECT",), ("OBJECT", "HELP")]),
    Case("object-idletime", [("SET", "k", "v"), ("OBJECT", "IDLETIME", "k")],
         differs="lru_ttl keeps the LRU order, not access times: IDLETIME is refused, saying "
                 "so (a time per key measured +2.3% a GET/SET: builtin/inspection.py)"),
    Case("object-encoding-after-append", [("SET", "a", "x"), ("APPEND", "a", "y"),
                                          ("OBJECT", "ENCODING", "a")],
         differs="Redis keeps 'raw' for a string changed in place; DistCache reports the "
                 "encoding a SET of the same bytes gets ('embstr')"),
    Case("memory-usage", [
        ("SET", "k", "v"), Req(("MEMORY", "USAGE", "k"), shape),
        Req(("MEMORY", "USAGE", "k", "SAMPLES", "5"), shape), ("MEMORY", "USAGE", "nope"),
        ("MEMORY", "USAGE", "k", "SAMPLES", "x"), ("MEMORY", "USAGE", "k", "BOGUS"),
        ("MEMORY", "USAGE"), ("MEMORY", "BOGUS")]),
    Case("memory-help", [("MEMORY", "HELP"), ("MEMORY", "HELP", "x")]),
    # The figures are each process's own (Redis's from jemalloc); the keys, their order and
    # the value types are Redis's, and a database with keys gets its db.N entry.
    Case("memory-stats", [
        Req(("MEMORY", "STATS"), map_keys), ("SET", "k", "v"), ("SELECT", "3"),
        ("SET", "k", "v"), ("EXPIRE", "k", "100"), Req(("MEMORY", "STATS"), map_keys),
        ("MEMORY", "STATS", "x")]),
    # Both instances hold far less than 5 MiB of data: "empty" in Redis's words.
    Case("memory-doctor-purge", [
        ("MEMORY", "DOCTOR"), ("SET", "k", "v"), ("MEMORY", "DOCTOR"), ("MEMORY", "DOCTOR", "x"),
        ("MEMORY", "PURGE"), ("MEMORY", "PURGE", "x"), ("GET", "k"),
        Req(("MEMORY", "MALLOC-STATS"), shape), ("MEMORY", "MALLOC-STATS", "x")]),
    Case("debug-disabled", [("DEBUG", "SLEEP", "0"), ("DEBUG", "OBJECT", "k"), ("DEBUG",)]),
    Case("monitor", [
        ("MONITOR",), Req(("SET", "k", "v"), conn=1), SEEN,
        Req(("SELECT", "2"), conn=1), SEEN, Req(("GET", "x y\n"), conn=1), SEEN,
        Req(("AUTH", "secret"), conn=1), SEEN, Req(("CONFIG", "GET", "timeout"), conn=1),
        Req(("NOSUCH",), conn=1), Req(("MULTI",), conn=1), SEEN, Req(("INCR", "n"), conn=1),
        Req(("EXEC",), conn=1), SEEN, SEEN, Req(("PING",), conn=1), SEEN,
        ("PING",), SEEN, ("GET", "k"), ("RESET",), ("GET", "k")],
         # RESP3: the second connection's HELLO 3 would be one more line to read.
         resp=(2,)),
    Case("monitor-own-commands", [("MONITOR",), ("PING",), SEEN, ("ECHO", "a\tb"), SEEN,
                                  ("SET", "k", "v"), ("RESET",), ("SET", "k", "v")]),
    Case("monitor-in-exec", [("MULTI",), ("MONITOR",), ("EXEC",), ("PING",)]),
]
