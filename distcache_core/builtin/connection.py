"""Connection commands: PING ECHO QUIT HELLO AUTH RESET, and CLIENT (from .client); SELECT
is in :mod:`.databases`.

Replies and error strings follow the Redis command reference (redis.io/commands).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from .. import REDIS_COMPAT_VERSION, transactions
from ..command_table import Command
from ..errors import WRONGPASS, CommandError
from ..hookspecs import hookimpl
from . import client
from .client import valid_client_name
from .databases import select_database


def ping(conn: Any, argv: list[bytes]) -> Any:
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    return argv[1] if len(argv) == 2 else "PONG"


def echo(conn: Any, argv: list[bytes]) -> bytes:
    return argv[1]


def quit_(conn: Any, argv: list[bytes]) -> str:
    conn.close_after_reply()
    return "OK"


def _check_password(conn: Any, username: bytes, password: bytes) -> None:
    required = conn.server.requirepass
    # compare_digest: the time taken must not reveal how much of the password matched.
    if username != b"default" or not hmac.compare_digest(password, required.encode()):
        raise CommandError(WRONGPASS)
    conn.set_authenticated(True)


def auth(conn: Any, argv: list[bytes]) -> str:
    if len(argv) > 3:
        raise CommandError("ERR syntax error")
    if not conn.server.requirepass:
        if len(argv) == 2:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the default "
                "user. Are you sure your configuration is correct?")
        if argv[1] != b"default":
            raise CommandError(WRONGPASS)
        return "OK"
    username, password = (b"default", argv[1]) if len(argv) == 2 else (argv[1], argv[2])
    _check_password(conn, username, password)
    return "OK"


def hello(conn: Any, argv: list[bytes]) -> dict[str, Any]:
    version = conn.resp_version
    i = 1
    if len(argv) > 1:
        try:
            version = int(argv[1])
        except ValueError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        if version not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
        i = 2
    credentials: tuple[bytes, bytes] | None = None
    name: bytes | None = None
    while i < len(argv):
        option = argv[i].lower()
        remaining = len(argv) - i - 1
        if option == b"auth" and remaining >= 2:
            credentials = (argv[i + 1], argv[i + 2])
            i += 3
        elif option == b"setname" and remaining >= 1:
            name = valid_client_name(argv[i + 1])
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{_text(argv[i])}'")
    if credentials is not None:
        if conn.server.requirepass:
            _check_password(conn, *credentials)
        elif credentials[0] != b"default":
            raise CommandError(WRONGPASS)
    if not conn.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise "
            "the HELLO AUTH <user> <pass> option can be used to authenticate the client "
            "and select the RESP protocol version at the same time")
    if name is not None:
        conn.client_name = name or None
    conn.set_resp_version(version)
    return {
        "server": b"redis",
        "version": REDIS_COMPAT_VERSION.encode(),
        "proto": version,
        "id": conn.client_id,
        "mode": b"standalone",
        "role": b"master",
        "modules": [],
    }


def reset(conn: Any, argv: list[bytes]) -> str:
    conn.client_name = None
    conn.set_resp_version(2)
    conn.set_authenticated(not conn.server.requirepass)
    select_database(conn, 0)
    if conn.transaction is not None:
        transactions.end(conn)  # discards the transaction and the watched keys
    else:
        conn.server.watches.unwatch(conn)
    conn.server.monitors.discard(conn)
    return "RESET"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    group = "connection"
    # Redis 7.0's flags: these run while loading, before AUTH, and while a script is busy.
    handshake = {"noscript", "loading", "stale", "fast", "noauth", "allow_busy"}
    anytime = {"loading", "stale", "fast"}
    for command in (
        Command(name="ping", handler=ping, arity=-1, flags={"fast"}, group=group,
                summary="Returns the server's liveliness response."),
        Command(name="echo", handler=echo, arity=2, flags=anytime, group=group,
                summary="Returns the given string."),
        Command(name="quit", handler=quit_, arity=-1, flags=handshake, group=group,
                summary="Closes the connection."),
        Command(name="hello", handler=hello, arity=-1, flags=handshake, group=group,
                summary="Handshakes with the server (protocol version, AUTH, SETNAME)."),
        Command(name="auth", handler=auth, arity=-2, flags=handshake, group=group,
                summary="Authenticates the connection."),
        Command(name="reset", handler=reset, arity=1, flags=handshake, group=group,
                summary="Resets the connection."),
        client.CLIENT,
    ):
        register(command)
