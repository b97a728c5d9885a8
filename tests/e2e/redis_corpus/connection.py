"""Connection commands: PING ECHO QUIT HELLO AUTH SELECT CLIENT RESET, inline requests and
unknown commands (the data types DistCache does not serve)."""

from distcache_core.testing.differential import Case, Req, masked, shape

HELLO = masked("id", "version")  # client ids count each server's connections

CASES = [
    Case("ping", [("PING",), ("PING", "hello"), ("PING", "a", "b"), ("ping",), ("PiNg", "")]),
    Case("echo", [("ECHO", "x"), ("ECHO", b"\x00\xff\r\n"), ("ECHO",), ("ECHO", "a", "b")]),
    Case("inline", [b"PING\r\n", b"ECHO hi\r\n", b"SET k v\r\n", b"GET k\n",
                    b"\r\nPING\r\n", b"ECHO \"a b\" 'c'\r\n", b"GET\r\n"]),
    Case("quit", [("QUIT",)]),
    Case("quit-extra-args", [("QUIT", "now")]),
    Case("hello", [Req(("HELLO",), HELLO), Req(("HELLO", "2"), HELLO),
                   Req(("HELLO", "3"), HELLO), Req(("HELLO", "2"), HELLO)]),
    Case("hello-setname", [Req(("HELLO", "2", "SETNAME", "app"), HELLO), ("CLIENT", "GETNAME")]),
    Case("hello-errors", [("HELLO", "4"), ("HELLO", "x"), ("HELLO", "1"),
                          ("HELLO", "2", "BOGUS"), ("HELLO", "2", "AUTH", "default"),
                          ("HELLO", "2", "SETNAME", "a b"),
                          ("HELLO", "2", "AUTH", "someone", "pw")]),
    Case("hello-auth-without-password",
         [Req(("HELLO", "3", "AUTH", "default", "anything"), HELLO)]),
    Case("auth-without-password", [("AUTH", "pw"), ("AUTH", "default", "pw"),
                                   ("AUTH", "bob", "pw"), ("AUTH",), ("AUTH", "a", "b", "c")]),
    Case("select", [("SELECT", "0"), ("SELECT", "x"), ("SELECT", "-1"), ("SELECT",),
                    ("SELECT", "99")]),
    Case("reset", [("CLIENT", "SETNAME", "x"), ("RESET",), ("CLIENT", "GETNAME"),
                   ("RESET", "x")]),
    Case("client-names", [("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", "app-1"),
                          ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", "has space"),
                          ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
                          ("CLIENT", "SETNAME"), ("CLIENT", "GETNAME", "x")]),
    Case("client-setinfo", [("CLIENT", "SETINFO", "LIB-NAME", "redis-py"),
                            ("CLIENT", "SETINFO", "lib-ver", "5.0"),
                            ("CLIENT", "SETINFO", "bogus", "x"),
                            ("CLIENT", "SETINFO", "LIB-NAME", "a b"),
                            ("CLIENT", "SETINFO", "LIB-NAME")],
         differs="CLIENT SETINFO is Redis 7.2; redis-server 7.0 answers unknown subcommand"),
    # Ids, addresses and ages are each server's own: only the reply types are compared.
    Case("client-id-list-info", [Req(("CLIENT", "ID"), shape), Req(("CLIENT", "LIST"), shape),
                                 Req(("CLIENT", "INFO"), shape),
                                 Req(("CLIENT", "LIST", "TYPE", "normal"), shape)]),
    Case("client-no-evict", [("CLIENT", "NO-EVICT", "on"), ("CLIENT", "NO-EVICT", "OFF"),
                             ("CLIENT", "NO-EVICT", "maybe"), ("CLIENT", "NO-EVICT")]),
    # Other test connections may be open on either server: how many a filter kills is compared
    # by type only; the errors exactly.
    Case("client-kill", [("CLIENT", "KILL", "1.2.3.4:5"), ("CLIENT", "KILL", "ID", "999999"),
                         Req(("CLIENT", "KILL", "TYPE", "master"), shape),
                         Req(("CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME", "no"), shape),
                         ("CLIENT", "KILL", "ID", "0"), ("CLIENT", "KILL", "ID", "x"),
                         ("CLIENT", "KILL", "TYPE", "bogus"), ("CLIENT", "KILL", "USER", "nobody"),
                         ("CLIENT", "KILL", "SKIPME", "maybe"), ("CLIENT", "KILL", "BOGUS", "x"),
                         ("CLIENT", "KILL", "ID", "1", "TYPE"),
                         ("CLIENT", "KILL", "TYPE", "bogus", "SKIPME"), ("CLIENT", "KILL"),
                         ("CLIENT", "ID", "x")]),
    Case("client-errors", [("CLIENT",), ("CLIENT", "BOGUS"), ("CLIENT", "ID", "x"),
                           ("CLIENT", "LIST", "BOGUS")]),
    Case("client-help", [Req(("CLIENT", "HELP"), shape)],
         differs="DistCache lists only the CLIENT subcommands it implements"),
    Case("unknown-commands", [("FOO",), ("FOO", "a", "b"), ("foo", "x" * 200)]),
]
