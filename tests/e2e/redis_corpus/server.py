"""Server commands: INFO COMMAND CONFIG SLOWLOG TIME DBSIZE FLUSHDB FLUSHALL SAVE BGSAVE
BGREWRITEAOF LASTSAVE SHUTDOWN (only its error paths: a real one would stop the reference
Redis)."""

from distcache_core.testing.differential import (
    Case,
    Req,
    command_docs,
    command_info,
    exact,
    info_fields,
    shape,
    subset,
)

#: INFO fields whose values do not depend on the process, its history or the machine.
STABLE_INFO_FIELDS = ("redis_mode", "arch_bits", "role", "connected_slaves", "cluster_enabled",
                      "loading", "maxmemory", "maxmemory_policy", "blocked_clients", "db0")
# ...plus the error counters, compared in cases that reset them first.
ERROR_FIELDS = ("total_error_replies", "errorstat_ERR", "errorstat_NOPROTO",
                "errorstat_NOAUTH")


#: One request of each command that has keys (COMMAND GETKEYSANDFLAGS reports their flags).
KEYED_REQUESTS = [
    ("GET", "k"), ("SET", "k", "v"), ("SETNX", "k", "v"), ("SETEX", "k", "1", "v"),
    ("PSETEX", "k", "1", "v"), ("GETSET", "k", "v"), ("GETDEL", "k"), ("GETEX", "k"),
    ("MGET", "a", "b"), ("MSET", "a", "1", "b", "2"), ("MSETNX", "a", "1", "b", "2"),
    ("APPEND", "k", "v"), ("STRLEN", "k"), ("GETRANGE", "k", "0", "1"),
    ("SUBSTR", "k", "0", "1"), ("SETRANGE", "k", "0", "v"), ("INCR", "k"), ("DECR", "k"),
    ("INCRBY", "k", "1"), ("DECRBY", "k", "1"), ("INCRBYFLOAT", "k", "1"), ("DEL", "a", "b"),
    ("UNLINK", "a", "b"), ("EXISTS", "a", "b"), ("TOUCH", "a", "b"), ("TYPE", "k"),
    ("RENAME", "a", "b"), ("RENAMENX", "a", "b"), ("COPY", "a", "b"), ("EXPIRE", "k", "1"),
    ("PEXPIRE", "k", "1"), ("EXPIREAT", "k", "1"), ("PEXPIREAT", "k", "1"), ("TTL", "k"),
    ("PTTL", "k"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"), ("PERSIST", "k"),
    ("SETBIT", "k", "1", "1"), ("GETBIT", "k", "1"), ("BITCOUNT", "k"), ("BITPOS", "k", "1"),
    ("BITOP", "AND", "d", "a", "b"), ("LCS", "a", "b"), ("MOVE", "k", "1"), ("WATCH", "a", "b"),
    ("EVAL", "return 1", "2", "a", "b", "c"), ("EVALSHA", "x", "1", "a"),
    ("EVAL_RO", "return 1", "1", "a"), ("EVALSHA_RO", "x", "1", "a"),
    ("OBJECT", "ENCODING", "k"), ("OBJECT", "FREQ", "k"), ("OBJECT", "IDLETIME", "k"),
    ("OBJECT", "REFCOUNT", "k"), ("MEMORY", "USAGE", "k"),
]


def command_counts(expected, actual):
    """INFO commandstats: the same commands with the same calls, rejected and failed calls
    (``usec`` and ``usec_per_call`` are each server's own timing). Redis counts a container's
    subcommands apart (``cmdstat_config|resetstat``); DistCache counts the container."""
    def counts(reply):
        text = (reply.value or b"").decode()
        if reply.kind == "=":
            text = text[4:]
        out = {}
        for line in text.split("\r\n"):
            if line.startswith("cmdstat_"):
                name, _, fields = line.partition(":")
                values = dict(f.split("=") for f in fields.split(","))
                total = out.setdefault(name.partition("|")[0], {})
                for key in ("calls", "rejected_calls", "failed_calls"):
                    total[key] = total.get(key, 0) + int(values[key])
            elif line.startswith("#"):
                out[line] = True
        return out

    problem = exact(expected, actual) if expected.kind != actual.kind else None
    if problem is None and counts(expected) != counts(actual):
        problem = f"redis {counts(expected)} != node {counts(actual)}"
    return problem


def latency_names(expected, actual):
    """INFO latencystats: each command the node lists, Redis lists too, with p50, p99 and
    p99.9. The node times a sample of reads, at most one a millisecond, so requests sent back
    to back may leave some commands, or all, without a line (tests/e2e/test_metrics.py spaces
    its requests and checks every line)."""
    def names(reply):
        text = (reply.value or b"").decode()
        if reply.kind == "=":
            text = text[4:]
        return {line.partition(":")[0].partition("|")[0]: tuple(
                    f.split("=")[0] for f in line.partition(":")[2].split(","))
                for line in text.split("\r\n") if line.startswith("latency_")}

    redis_names, node_names = names(expected), names(actual)
    if any(redis_names.get(k) != v for k, v in node_names.items()):
        return f"redis {redis_names} does not hold node {node_names}"
    return None


CASES = [
    Case("info", [("SET", "a", "1"), ("SET", "b", "2"),
                  Req(("INFO",), info_fields(*STABLE_INFO_FIELDS)),
                  Req(("INFO", "keyspace"), info_fields("db0")),
                  Req(("INFO", "server", "clients"), info_fields(*STABLE_INFO_FIELDS)),
                  Req(("INFO", "all"), info_fields(*STABLE_INFO_FIELDS)),
                  Req(("INFO", "everything"), info_fields(*STABLE_INFO_FIELDS)),
                  Req(("INFO", "bogus"), info_fields()),
                  Req(("info", "CLUSTER"), info_fields("cluster_enabled"))]),
    Case("info-empty-keyspace", [Req(("INFO", "keyspace"), info_fields("db0"))]),
    Case("error-stats", [("CONFIG", "RESETSTAT"),
                         Req(("INFO", "stats"), info_fields(*ERROR_FIELDS)),
                         Req(("INFO", "errorstats"), info_fields(*ERROR_FIELDS)),
                         ("GET",), ("NOSUCHCOMMAND",), ("SET", "s", "x"), ("INCR", "s"),
                         ("SET", "k", "v", "BOGUS"), ("GET", "s"), ("HELLO", "4"),
                         Req(("INFO", "stats"), info_fields(*ERROR_FIELDS)),
                         Req(("INFO", "errorstats"), info_fields(*ERROR_FIELDS)),
                         ("CONFIG", "RESETSTAT"),
                         Req(("INFO", "errorstats"), info_fields(*ERROR_FIELDS))]),
    Case("command-count", [Req(("COMMAND", "COUNT"), shape), ("COMMAND", "COUNT", "x")]),
    Case("command", [Req(("COMMAND",), command_info)]),
    Case("command-info", [Req(("COMMAND", "INFO", "get", "SET", "nosuch", "client", "mset",
                                "ping", "config", "command", "del", "expire", "hello"),
                               command_info),
                          Req(("COMMAND", "INFO"), command_info)]),
    Case("command-docs", [Req(("COMMAND", "DOCS"), command_docs),
                          Req(("COMMAND", "DOCS", "get", "client", "nosuch"), command_docs),
                          ("COMMAND", "DOCS", "nosuch")]),
    Case("command-list", [Req(("COMMAND", "LIST"), subset),
                          ("COMMAND", "LIST", "FILTERBY", "PATTERN", "getr*"),
                          Req(("COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"), subset),
                          ("COMMAND", "LIST", "FILTERBY", "BOGUS", "x"),
                          ("COMMAND", "LIST", "extra")]),
    Case("command-getkeys", [("COMMAND", "GETKEYS", "SET", "k", "v"),
                             ("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"),
                             ("COMMAND", "GETKEYS", "GET"),
                             ("COMMAND", "GETKEYS", "PING"),
                             ("COMMAND", "GETKEYS", "nosuch", "x"),
                             ("COMMAND", "GETKEYS"),
                             ("COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k"),
                             ("COMMAND", "GETKEYS", "object", "help"),
                             ("COMMAND", "GETKEYS", "OBJECT", "ENCODING"),
                             ("COMMAND", "GETKEYS", "OBJECT", "BOGUS", "k"),
                             ("COMMAND", "GETKEYS", "OBJECT"),
                             ("COMMAND", "GETKEYS", "EVAL", "return 1", "2", "a", "b", "c"),
                             ("COMMAND", "GETKEYS", "EVAL", "return 1", "0"),
                             ("COMMAND", "GETKEYS", "EVAL", "return 1", "3", "a"),
                             ("COMMAND", "GETKEYS", "EVAL", "return 1", "-1", "a"),
                             ("COMMAND", "GETKEYS", "EVALSHA", "x", "1x", "a"),
                             ("COMMAND", "GETKEYS", "BITOP", "AND", "d", "a", "b"),
                             ("COMMAND", "GETKEYS", "MSET", "a", "1", "b")]),
    # Each command with keys, as a client would send it: its keys and Redis's key spec flags.
    Case("command-getkeysandflags", [
        ("COMMAND", "GETKEYSANDFLAGS", *request) for request in KEYED_REQUESTS] + [
        ("COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v", "get"),
        ("COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v", "EX", "5", "GET"),
        ("COMMAND", "GETKEYSANDFLAGS", "EVAL", "return 1", "0"),
        ("COMMAND", "GETKEYSANDFLAGS", "PING"), ("COMMAND", "GETKEYSANDFLAGS", "nosuch", "k"),
        ("COMMAND", "GETKEYSANDFLAGS", "GET"), ("COMMAND", "GETKEYSANDFLAGS")]),
    Case("command-errors", [("COMMAND", "BOGUS"), ("COMMAND", "INFO", "get", "y")]),
    Case("command-help", [("COMMAND", "HELP")]),
    Case("config-get", [("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "maxmemory-policy"),
                        ("CONFIG", "GET", "timeout"), ("CONFIG", "GET", "nosuch"),
                        ("CONFIG", "GET", "appendonly"), ("CONFIG", "GET", "cluster-enabled"),
                        ("CONFIG", "GET", "save"),
                        ("CONFIG", "GET", "proto-max-bulk-len"),
                        Req(("CONFIG", "GET", "port"), shape), Req(("CONFIG", "GET", "dir"), shape),
                        Req(("CONFIG", "GET", "maxclients"), shape),
                        ("CONFIG", "GET"), ("CONFIG",), ("CONFIG", "BOGUS")]),
    Case("config-set", [("CONFIG", "SET", "timeout", "0"), ("CONFIG", "GET", "timeout"),
                        ("CONFIG", "SET", "timeout", "x"), ("CONFIG", "SET", "nosuch", "1"),
                        ("CONFIG", "SET", "timeout"), ("CONFIG", "SET", "timeout", "-1"),
                        ("CONFIG", "SET", "maxclients", "x"), ("CONFIG", "SET", "timeout", "0")]),
    Case("config-set-maxmemory", [
        ("CONFIG", "SET", "maxmemory", "100mb"), ("CONFIG", "GET", "maxmemory"),
        Req(("INFO", "memory"), info_fields("maxmemory", "maxmemory_human", "maxmemory_policy")),
        ("CONFIG", "SET", "maxmemory", "1GB"), ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "SET", "maxmemory", "10k"), ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "SET", "maxmemory", "12345"), ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "SET", "maxmemory", "abc"), ("CONFIG", "SET", "maxmemory", "-1"),
        ("CONFIG", "SET", "maxmemory", "1.5mb"), ("CONFIG", "SET", "maxmemory", "2tb"),
        ("CONFIG", "SET", "maxmemory-policy", "NOEVICTION"),
        ("CONFIG", "GET", "maxmemory-policy"),
        Req(("INFO", "memory"), info_fields("maxmemory", "maxmemory_policy")),
        ("CONFIG", "SET", "maxmemory-policy", "volatile-ttl"),
        ("CONFIG", "SET", "maxmemory-policy", "bogus"), ("CONFIG", "GET", "maxmemory-policy"),
        ("CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "allkeys-lru"),
        ("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "maxmemory-policy")]),
    Case("config-set-lfu-policy", [("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"),
                                   ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")],
         differs="lru_ttl has no LFU (nor volatile-random): CONFIG SET refuses those policies, "
                 "naming the engine and the policies it has"),
    Case("config-resetstat", [("CONFIG", "RESETSTAT"), ("CONFIG", "RESETSTAT", "x")]),
    Case("config-help", [("CONFIG", "HELP"), ("CONFIG", "HELP", "x")]),
    Case("config-rewrite", [("CONFIG", "REWRITE")],
         differs="DistCache never rewrites its TOML file and says so; Redis started without a "
                 "file says 'The server is running without a config file'"),
    Case("time-lastsave", [Req(("TIME",), shape), Req(("LASTSAVE",), shape), ("TIME", "x"),
                           ("LASTSAVE", "x")]),
    Case("dbsize-flush", [("DBSIZE",), ("SET", "a", "1"), ("SET", "b", "1"), ("DBSIZE",),
                          ("FLUSHDB",), ("DBSIZE",), ("SET", "a", "1"), ("FLUSHDB", "ASYNC"),
                          ("FLUSHDB", "sync"), ("FLUSHDB", "bogus"), ("FLUSHDB", "a", "b"),
                          ("FLUSHALL",), ("FLUSHALL", "ASYNC"), ("FLUSHALL", "SYNC"),
                          ("FLUSHALL", "bogus"), ("DBSIZE", "x")]),
    Case("save", [("SAVE",), Req(("BGSAVE",), shape), Req(("BGREWRITEAOF",), shape)],
         differs="SAVE/BGSAVE/BGREWRITEAOF need a persistence plugin, which this node has not "
                 "(tests/e2e/test_persistence.py compares them with one)"),
    Case("save-arguments", [("SAVE", "x"), ("BGSAVE", "NOW"), ("BGSAVE", "SCHEDULE", "x"),
                            ("BGREWRITEAOF", "x")]),
    Case("shutdown-errors", [("SHUTDOWN", "ABORT"), ("SHUTDOWN", "BOGUS")]),
    Case("commandstats", [("CONFIG", "RESETSTAT"),
                          ("SET", "a", "1"), ("GET", "a"), ("GET", "a"), ("GET",),
                          ("SET", "s", "x"), ("INCR", "s"), ("NOSUCH",), ("GET", "a", "b"),
                          ("MGET", "a", "s", "zz"), ("set", "b", "2"),
                          Req(("INFO", "commandstats"), command_counts),
                          Req(("INFO", "latencystats"), latency_names),
                          Req(("INFO", "everything"), info_fields()),
                          ("CONFIG", "RESETSTAT"),
                          Req(("INFO", "commandstats"), command_counts)]),
    Case("slowlog", [("CONFIG", "SET", "slowlog-log-slower-than", "-1"), ("SLOWLOG", "RESET"),
                     ("SLOWLOG", "LEN"), ("SLOWLOG", "GET"), ("SLOWLOG", "GET", "-1"),
                     ("SLOWLOG", "GET", "-2"), ("SLOWLOG", "GET", "x"),
                     ("SLOWLOG", "GET", "1", "2"), ("SLOWLOG", "LEN", "x"),
                     ("SLOWLOG", "RESET", "x"), ("SLOWLOG", "BOGUS"), ("SLOWLOG",),
                     ("SLOWLOG", "HELP"), ("CONFIG", "GET", "slowlog-max-len"),
                     ("CONFIG", "SET", "slowlog-max-len", "-1"),
                     ("CONFIG", "SET", "slowlog-log-slower-than", "-2"),
                     ("CONFIG", "SET", "slowlog-log-slower-than", "x"),
                     ("CONFIG", "GET", "slowlog-log-slower-than"),
                     ("CONFIG", "SET", "slowlog-log-slower-than", "10000"),
                     ("CONFIG", "GET", "slowlog-log-slower-than")]),
]
