"""CLUSTER: the errors a client sees are Redis's (arity, unknown subcommand); what the
subcommands answer is DistCache's own (a standalone redis-server answers each one with
"cluster support disabled", while a node routes keys itself and reports its members: README,
Cluster section)."""

from distcache_core.testing.differential import Case

CASES = [
    Case("cluster-errors", [("CLUSTER",), ("cluster", "bogus"), ("CLUSTER", "MEET"),
                            ("CLUSTER", "MEET", "127.0.0.1"), ("CLUSTER", "FORGET"),
                            ("CLUSTER", "NODES", "x"), ("CLUSTER", "INFO", "x"),
                            ("CLUSTER", "HELP", "x")]),
    Case("cluster-info", [("CLUSTER", "INFO"), ("CLUSTER", "NODES"), ("CLUSTER", "HELP")],
         differs="DistCache's CLUSTER INFO/NODES/HELP describe its own cluster; redis-server "
                 "7.0 in standalone mode answers 'ERR This instance has cluster support "
                 "disabled'"),
]
