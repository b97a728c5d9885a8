"""CLIENT and its subcommands (``clientCommand`` in Redis 7.0's networking.c): names, ids,
CLIENT LIST / INFO, KILL, NO-EVICT, SETINFO.

Every DistCache client is a ``normal`` client of the ``default`` user; there are no replicas,
pub/sub or ACL users among connections, so the filters that name them match nothing.
"""

from __future__ import annotations

from typing import Any

from ..command_table import Command, Subcommand, subcommand_handler
from ..errors import SYNTAX, CommandError
from ..replies import VerbatimReply
from .arguments import parse_int

CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
]

_CLIENT_TYPES = (b"normal", b"slave", b"replica", b"pubsub", b"master")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def valid_client_name(name: bytes) -> bytes:
    """A name CLIENT SETNAME and HELLO SETNAME accept: printable ASCII without spaces
    (``validateClientName`` in networking.c)."""
    if any(c < 0x21 or c > 0x7E for c in name):
        raise CommandError(
            "ERR Client names cannot contain spaces, newlines or special characters.")
    return name


def _client_type(raw: bytes) -> bytes:
    kind = raw.lower()
    if kind not in _CLIENT_TYPES:
        raise CommandError(f"ERR Unknown client type '{_text(raw)}'")
    return kind


def _client_list(conn: Any, argv: list[bytes]) -> VerbatimReply:
    clients = list(conn.server.connections.values())
    if len(argv) == 4 and argv[2].lower() == b"type":
        if _client_type(argv[3]) != b"normal":
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
    conn.client_name = valid_client_name(argv[2]) or None
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


def _kill_filter(argv: list[bytes]) -> tuple[dict[str, Any] | None, bool]:
    """CLIENT KILL's ``<option> <value>`` pairs: (connection attribute -> the value it must
    have, or None when nothing can match; skip me)."""
    wanted: dict[str, Any] | None = {}
    skip_me = True
    for i in range(2, len(argv), 2):
        if i + 1 >= len(argv):  # checked pair by pair, as Redis parses them
            raise CommandError(SYNTAX)
        option, value = argv[i].lower(), argv[i + 1]
        if option == b"id":
            try:
                client_id = parse_int(value)
            except CommandError:
                client_id = 0
            if client_id < 1:
                raise CommandError("ERR client-id should be greater than 0")
            if wanted is not None:
                wanted["client_id"] = client_id
        elif option == b"type":
            if _client_type(value) != b"normal":
                wanted = None  # no replica or pub/sub connections here
        elif option in (b"addr", b"laddr"):
            if wanted is not None:
                wanted["peer" if option == b"addr" else "local"] = _text(value)
        elif option == b"user":
            if value != b"default":  # the only user there is
                raise CommandError(f"ERR No such user '{_text(value)}'")
        elif option == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError(SYNTAX)
            skip_me = value.lower() == b"yes"
        else:
            raise CommandError(SYNTAX)
    return wanted, skip_me


def _close(conn: Any, victim: Any) -> None:
    if victim is conn:  # the reply still goes out, then the connection closes (as Redis)
        conn.close_after_reply()
    else:
        victim.close()


def _client_kill(conn: Any, argv: list[bytes]) -> Any:
    clients = list(conn.server.connections.values())
    if len(argv) == 3:
        # The old form, CLIENT KILL ip:port: +OK, or an error when no client has that address.
        address = _text(argv[2])
        victims = [c for c in clients if c.peer == address]
        if not victims:
            raise CommandError("ERR No such client")
        for victim in victims:
            _close(conn, victim)
        return "OK"
    wanted, skip_me = _kill_filter(argv)
    if wanted is None:
        return 0
    killed = 0
    for victim in clients:
        if (victim is conn and skip_me) or any(
                getattr(victim, attribute) != value for attribute, value in wanted.items()):
            continue
        _close(conn, victim)
        killed += 1
    return killed


def _client_no_evict(conn: Any, argv: list[bytes]) -> str:
    # Accepted for compatibility: DistCache never evicts clients to free memory; a client that
    # stops reading is paused instead (node.reply_buffer_high_water_bytes).
    setting = argv[2].lower()
    if setting not in (b"on", b"off"):
        raise CommandError(SYNTAX)
    conn.no_evict = setting == b"on"
    return "OK"


_FLAGS = frozenset({"noscript", "loading", "stale"})
_ADMIN = _FLAGS | {"admin"}
SUBCOMMANDS = (
    Subcommand(name="getname", arity=2, flags=_FLAGS,
               handler=lambda conn, argv: conn.client_name,
               summary="Returns the name of the connection."),
    Subcommand(name="id", arity=2, flags=_FLAGS,
               handler=lambda conn, argv: conn.client_id,
               summary="Returns the unique client ID of the connection."),
    Subcommand(name="info", arity=2, flags=_FLAGS,
               handler=lambda conn, argv: VerbatimReply((conn.describe() + "\n").encode()),
               summary="Returns information about the connection."),
    Subcommand(name="kill", arity=-3, flags=_ADMIN, handler=_client_kill,
               summary="Terminates open connections."),
    Subcommand(name="list", arity=-2, flags=_ADMIN, handler=_client_list,
               summary="Lists open connections."),
    Subcommand(name="no-evict", arity=3, flags=_ADMIN, handler=_client_no_evict,
               summary="Sets the client eviction mode of the connection."),
    Subcommand(name="setname", arity=3, flags=_FLAGS, handler=_client_setname,
               summary="Sets the connection name."),
    # Redis 7.2's: redis-py 5 sends it on every new connection.
    Subcommand(name="setinfo", arity=4, flags=_FLAGS, handler=_client_setinfo,
               summary="Sets information specific to the client or connection."),
    Subcommand(name="help", arity=2, flags={"loading", "stale"},
               handler=lambda conn, argv: CLIENT_HELP,
               summary="Returns helpful text about the different subcommands."),
)

#: Registered by :mod:`.connection` with the other connection commands.
CLIENT = Command(name="client", handler=subcommand_handler("client", SUBCOMMANDS), arity=-2,
                 group="connection", subcommands=SUBCOMMANDS,
                 summary="A container for client connection commands.")
