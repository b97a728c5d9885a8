"""Connection commands: PING ECHO QUIT HELLO AUTH SELECT CLIENT RESET.

Replies and error strings follow the Redis command reference (redis.io/commands).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from .. import REDIS_COMPAT_VERSION
from ..command_table import Command, Subcommand, subcommand_handler
from ..errors import NOT_INTEGER, SYNTAX, WRONGPASS, CommandError
from ..hookspecs import hookimpl
from ..replies import VerbatimReply
from .arguments import parse_int


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
            name = _valid_client_name(argv[i + 1])
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
            "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
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


def select(conn: Any, argv: list[bytes]) -> str:
    try:
        index = int(argv[1])
    except ValueError:
        raise CommandError(NOT_INTEGER) from None
    if index != 0:
        # One keyspace per node, as Redis Cluster has.
        raise CommandError("ERR DB index is out of range")
    return "OK"


def reset(conn: Any, argv: list[bytes]) -> str:
    conn.client_name = None
    conn.set_resp_version(2)
    conn.set_authenticated(not conn.server.requirepass)
    return "RESET"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _valid_client_name(name: bytes) -> bytes:
    # Redis allows printable ASCII without spaces (validateClientName in networking.c).
    if any(c < 0x21 or c > 0x7E for c in name):
        raise CommandError(
            "ERR Client names cannot contain spaces, newlines or special characters.")
    return name


CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST",
    "    Return information about client connections.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "HELP",
    "    Print this help.",
]


_CLIENT_TYPES = (b"normal", b"slave", b"replica", b"pubsub", b"master")


def _client_list(conn: Any, argv: list[bytes]) -> VerbatimReply:
    clients = list(conn.server.connections.values())
    if len(argv) == 4 and argv[2].lower() == b"type":
        kind = argv[3].lower()
        if kind not in _CLIENT_TYPES:
            raise CommandError(f"ERR Unknown client type '{_text(argv[3])}'")
        if kind != b"normal":  # every DistCache client is a normal one
            clients = []
    elif len(argv) > 3 and argv[2].lower() == b"id":
        wanted = set()
        for raw in argv[3:]:
            try:
                wanted.add(parse_int(raw))
            except CommandError:
                raise CommandError("ERR Invalid client ID") from None
        clients = [c for c in clients if c.client_id in wanted]
    elif len(argv) != 2:
        raise CommandError(SYNTAX)
    return VerbatimReply("".join(c.describe() + "\n" for c in clients).encode())


def _client_setname(conn: Any, argv: list[bytes]) -> str:
    conn.client_name = _valid_client_name(argv[2]) or None
    return "OK"


def _client_setinfo(conn: Any, argv: list[bytes]) -> str:
    option, value = argv[2].lower(), argv[3]
    if option not in (b"lib-name", b"lib-ver"):
        raise CommandError(f"ERR Unrecognized option '{_text(argv[2])}'")
    if any(c < 0x21 or c > 0x7E for c in value):
        raise CommandError(f"ERR {option.decode().upper()} cannot contain spaces, newlines or "
                           "special characters.")
    setattr(conn, "lib_name" if option == b"lib-name" else "lib_ver", value)
    return "OK"


_CLIENT_FLAGS = frozenset({"noscript", "loading", "stale"})
CLIENT_SUBCOMMANDS = (
    Subcommand(name="getname", arity=2, flags=_CLIENT_FLAGS,
               handler=lambda conn, argv: conn.client_name,
               summary="Returns the name of the connection."),
    Subcommand(name="id", arity=2, flags=_CLIENT_FLAGS,
               handler=lambda conn, argv: conn.client_id,
               summary="Returns the unique client ID of the connection."),
    Subcommand(name="info", arity=2, flags=_CLIENT_FLAGS,
               handler=lambda conn, argv: VerbatimReply((conn.describe() + "\n").encode()),
               summary="Returns information about the connection."),
    Subcommand(name="list", arity=-2, flags=_CLIENT_FLAGS | {"admin"}, handler=_client_list,
               summary="Lists open connections."),
    Subcommand(name="setname", arity=3, flags=_CLIENT_FLAGS, handler=_client_setname,
               summary="Sets the connection name."),
    # Redis 7.2's: redis-py 5 sends it on every new connection.
    Subcommand(name="setinfo", arity=4, flags=_CLIENT_FLAGS, handler=_client_setinfo,
               summary="Sets information specific to the client or connection."),
    Subcommand(name="help", arity=2, flags={"loading", "stale"},
               handler=lambda conn, argv: CLIENT_HELP,
               summary="Returns helpful text about the different subcommands."),
)


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
        Command(name="select", handler=select, arity=2, flags=anytime, group=group,
                summary="Changes the selected database (only 0 exists)."),
        Command(name="reset", handler=reset, arity=1, flags=handshake, group=group,
                summary="Resets the connection."),
        Command(name="client", handler=subcommand_handler("client", CLIENT_SUBCOMMANDS),
                arity=-2, group=group, subcommands=CLIENT_SUBCOMMANDS,
                summary="A container for client connection commands."),
    ):
        register(command)
