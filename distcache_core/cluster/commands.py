"""CLUSTER (INFO NODES MEET FORGET KEYOWNER HELP) and the internal peer commands (``DC.*``).

Peers talk over the same RESP port as clients. A peer link starts with ``DC.AUTH secret
node-id mode``; with ``cluster.secret`` set, every other ``DC.*`` command is refused
(``-NOPERM``) on a connection that has not passed it, so a plain client cannot write versioned
data, fake heartbeats or read the keyspace around the router. Without a secret the node warns
at start that they are open to anyone who can connect.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from ..command_table import Command, Subcommand, subcommand_handler
from ..errors import NOAUTH, CommandError
from ..hookspecs import hookimpl
from ..replies import VerbatimReply
from .membership import DOWN
from .peer import MODES

NOPERM = ("NOPERM this is an internal cluster command: a peer authenticates with DC.AUTH "
          "and the cluster secret first")


def _cluster(conn: Any) -> Any:
    return conn.node.cluster


def _peer_only(handler: Callable[[Any, list[bytes]], Any]) -> Callable[[Any, list[bytes]], Any]:
    def checked(conn: Any, argv: list[bytes]) -> Any:
        cluster = _cluster(conn)
        if cluster.secret and not conn.__dict__.get("cluster_peer"):
            raise CommandError(NOPERM)
        return handler(conn, argv)

    return checked


def _int(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None


def _db(conn: Any, raw: bytes) -> int:
    db = _int(raw)
    conn.node.databases[db]  # raises "DB index is out of range"
    return db


# -- DC.* -----------------------------------------------------------------------------------


def dc_auth(conn: Any, argv: list[bytes]) -> str:
    """``DC.AUTH secret node-id mode``: this connection is a peer's link."""
    cluster = _cluster(conn)
    secret, node_id, mode = argv[1], argv[2].decode("utf-8", "replace"), argv[3].decode()
    if mode not in MODES:
        raise CommandError(f"ERR unknown link mode '{mode}'")
    if cluster.secret:
        if not hmac.compare_digest(secret, cluster.secret.encode()):
            raise CommandError("NOPERM the cluster secret does not match")
    elif not conn.authenticated:
        raise CommandError(NOAUTH)
    if conn.node.config.node.tls_ca_file and conn.transport is not None \
            and not conn.transport.get_extra_info("peercert"):
        raise CommandError("NOPERM peers must present a certificate signed by the cluster CA")
    conn.set_authenticated(True)
    conn.__dict__["cluster_peer"] = node_id
    table = cluster.router.table_for(mode)
    conn.command_get = table.get
    conn.command_lookup = lambda name: table.get(name) or table.get(name.lower())
    conn.client_name = f"peer:{node_id}:{mode}".encode()
    return "OK"


def dc_heartbeat(conn: Any, argv: list[bytes]) -> list[bytes]:
    return _cluster(conn).membership.on_heartbeat(argv)  # type: ignore[no-any-return]


def dc_view(conn: Any, argv: list[bytes]) -> list[bytes]:
    return _cluster(conn).membership.view()  # type: ignore[no-any-return]


def dc_apply(conn: Any, argv: list[bytes]) -> int:
    """``DC.APPLY db version op key [value expire_at_ms]``."""
    op = argv[3].upper()
    value: bytes | None = None
    expire: bytes = b""
    if op == b"SET":
        if len(argv) != 7:
            raise CommandError("ERR syntax error")
        value, expire = argv[5], argv[6]
    elif op == b"EXPIRE":
        if len(argv) != 6:
            raise CommandError("ERR syntax error")
        expire = argv[5]
    elif len(argv) != 5:
        raise CommandError("ERR syntax error")
    return _cluster(conn).replicator.apply(  # type: ignore[no-any-return]
        _db(conn, argv[1]), _int(argv[2]), op, argv[4], value,
        _int(expire) if expire else None)


def dc_count(conn: Any, argv: list[bytes]) -> int:
    return _cluster(conn).router.count_primary(_db(conn, argv[1]))  # type: ignore[no-any-return]


def dc_keys(conn: Any, argv: list[bytes]) -> list[bytes]:
    return _cluster(conn).router.keys_primary(  # type: ignore[no-any-return]
        _db(conn, argv[1]), argv[2])


def dc_scan(conn: Any, argv: list[bytes]) -> Any:
    result = _cluster(conn).router.scan_primary(_db(conn, argv[1]), _int(argv[2]), argv[3:])
    if isinstance(result, CommandError):
        raise result
    return result


def dc_rebalanced(conn: Any, argv: list[bytes]) -> str:
    _cluster(conn).rebalancer.peer_done(argv[2].decode(), argv[1].decode())
    return "OK"


# -- CLUSTER --------------------------------------------------------------------------------


def cluster_state(cluster: Any) -> str:
    """``ok`` while every key has a copy up, else ``fail``."""
    down = [n for n in cluster.strategy.nodes() if n in cluster.down]
    return "ok" if len(down) < cluster.replication_factor else "fail"


def info_fields(cluster: Any) -> list[tuple[str, Any]]:
    """CLUSTER INFO's fields (INFO's ``cluster`` section shows them too)."""
    membership = cluster.membership
    members = list(membership.members.values()) if membership is not None else []
    states = [m.state for m in members]
    progress = cluster.rebalancer.progress
    router = cluster.router
    handoff = router.handoff
    live, tombstones = cluster.versions.counts()
    totals = cluster.pool.totals()
    return [
        ("cluster_state", cluster_state(cluster)),
        ("cluster_my_node_id", cluster.me),
        ("cluster_known_nodes", len(members)),
        ("cluster_size", len(cluster.strategy.nodes())),
        ("cluster_nodes_alive", states.count("alive")),
        ("cluster_nodes_suspect", states.count("suspect")),
        ("cluster_nodes_down", states.count(DOWN)),
        ("cluster_replication_factor", cluster.replication_factor),
        ("cluster_write_ack", cluster.replicator.write_ack),
        ("cluster_ring_epoch", cluster.ring_epoch),
        ("cluster_routing", "on" if router.active else "off"),
        ("cluster_forwarded_commands", router.forwarded),
        ("cluster_split_commands", router.split),
        ("cluster_fanout_commands", router.fanned_out),
        ("cluster_replicated_writes", cluster.replicator.sent),
        ("cluster_applied_from_peers", cluster.replicator.applied),
        ("cluster_stale_from_peers", cluster.replicator.stale),
        ("cluster_versions", live),
        ("cluster_tombstones", tombstones),
        ("cluster_hints_pending", len(cluster.hints)),
        ("cluster_hints_bytes", cluster.hints.bytes_held),
        ("cluster_hints_delivered", cluster.hints.delivered),
        ("cluster_hints_dropped", cluster.hints.dropped),
        ("cluster_rebalance_state", progress.state),
        ("cluster_rebalance_ring", progress.digest),
        ("cluster_rebalance_keys_scanned", progress.keys_scanned),
        ("cluster_rebalance_keys_to_move", progress.keys_to_move),
        ("cluster_rebalance_keys_moved", progress.keys_moved),
        ("cluster_rebalance_eta_seconds", progress.eta_seconds()),
        ("cluster_rebalance_repairs", progress.repairs),
        ("cluster_handoff_pending", ",".join(sorted(handoff.pending)) if handoff else ""),
        ("cluster_peer_calls", totals.calls),
        ("cluster_peer_failures", totals.errors + totals.timeouts),
        ("cluster_peer_rejected", totals.rejected),
    ]


def peer_info_fields(cluster: Any) -> list[tuple[str, str]]:
    """INFO ``cluster``'s line per peer, in the style of ``cmdstat_*``: ``peer_<id>:calls=..,
    errors=..,timeouts=..,rejected=..,usec_per_call=..,breaker=closed,breaker_transitions=..``
    (redis-py's ``info()`` reads each into a dict)."""
    return [(f"peer_{node_id}",
             f"calls={c['calls']},errors={c['errors']},timeouts={c['timeouts']},"
             f"rejected={c['rejected']},usec_per_call={c['latency_usec']['usec_per_call']:.2f},"
             f"breaker={c['breaker']},breaker_transitions={c['breaker_transitions']}")
            for node_id, c in cluster.peer_calls().items()]


def cluster_info(conn: Any, argv: list[bytes]) -> VerbatimReply:
    text = "".join(f"{k}:{v}\r\n" for k, v in info_fields(_cluster(conn)))
    return VerbatimReply(text.encode())


def node_lines(cluster: Any) -> list[str]:
    """One line per member: id, address, flags (myself, state), then ``key=value`` fields."""
    membership = cluster.membership
    shares = getattr(cluster.strategy, "shares", None)  # optional: each node's ring share
    share_of = shares() if shares is not None else {}
    ring = set(cluster.strategy.nodes())
    now = time.monotonic() * 1000
    lines = []
    for member in sorted(membership.members.values(), key=lambda m: m.node_id):
        flags = ["myself"] if member.myself else []
        flags.append(member.state)
        if member.node_id not in ring:
            flags.append("noring")
        if member.myself:
            breaker, keys, heard, history = "-", cluster.local_keys(), 0, ""
        else:
            breaker = cluster.policy.for_peer(member.node_id).state
            keys = member.keys
            heard = int(now - member.last_heard_ms)
            history = ",".join(f"{old}>{new}@{at}" for old, new, _, at in
                               cluster.breaker_history.get(member.node_id, ()))
        share = share_of.get(member.node_id, 0.0)
        lines.append(
            f"{member.node_id} {member.address} {','.join(flags)} breaker={breaker} "
            f"share={share:.4f} keys={keys} incarnation={member.incarnation} "
            f"last-heard-ms={heard} hints={cluster.hints.pending(member.node_id)} "
            f"breaker-changes={history or '-'}")
    return lines


def cluster_nodes(conn: Any, argv: list[bytes]) -> VerbatimReply:
    return VerbatimReply("".join(line + "\n" for line in node_lines(_cluster(conn))).encode())


async def cluster_meet(conn: Any, argv: list[bytes]) -> str:
    host = argv[2].decode("utf-8", "replace")
    try:
        port = int(argv[3])
    except ValueError:
        raise CommandError(f"ERR Invalid base port specified: {argv[3].decode(errors='replace')}"
                           ) from None
    if not 0 < port < 65536:
        raise CommandError(f"ERR Invalid base port specified: {port}")
    try:
        await _cluster(conn).meet(host, port)
    except ConnectionError as exc:
        raise CommandError(f"ERR cannot meet {host}:{port}: {exc}") from None
    return "OK"


def cluster_forget(conn: Any, argv: list[bytes]) -> str:
    cluster = _cluster(conn)
    node_id = argv[2].decode("utf-8", "replace")
    if node_id == cluster.me:
        raise CommandError("ERR I tried hard but I can't forget myself...")
    if not cluster.membership.forget(node_id):
        raise CommandError(f"ERR Unknown node {node_id}")
    return "OK"


def cluster_keyowner(conn: Any, argv: list[bytes]) -> list[bytes]:
    cluster = _cluster(conn)
    nodes = cluster.strategy.preference_list(argv[2], cluster.replication_factor)
    return [n.encode() for n in nodes]


CLUSTER_HELP = [
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "INFO",
    "    Return information about the cluster (state, members, replication, moves).",
    "NODES",
    "    Return the members: id, address, state, breaker state, ring share, keys.",
    "MEET <host> <port>",
    "    Join the cluster <host>:<port> belongs to (or bring it into this one).",
    "FORGET <node-id>",
    "    Take a node off the cluster (its keys move to the others).",
    "KEYOWNER <key>",
    "    Return the nodes that hold <key>: the owner first, then the replicas.",
    "HELP",
    "    Print this help.",
]

_ADMIN = frozenset({"admin", "stale", "no_async_loading"})
CLUSTER_SUBCOMMANDS = (
    Subcommand(name="info", arity=2, handler=cluster_info, flags={"stale"},
               summary="Returns information about the state of the cluster."),
    Subcommand(name="nodes", arity=2, handler=cluster_nodes, flags={"stale"},
               summary="Returns the cluster members and their state."),
    Subcommand(name="meet", arity=-4, handler=cluster_meet, flags=_ADMIN,
               summary="Joins a node's cluster through it."),
    Subcommand(name="forget", arity=3, handler=cluster_forget, flags=_ADMIN,
               summary="Removes a node from the cluster."),
    Subcommand(name="keyowner", arity=3, handler=cluster_keyowner, flags={"stale"},
               summary="Returns the nodes holding a key, owner first."),
    Subcommand(name="help", arity=2, handler=lambda conn, argv: CLUSTER_HELP,
               flags={"loading", "stale"},
               summary="Returns helpful text about the different subcommands."),
)


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    register(Command(name="cluster", handler=subcommand_handler("cluster", CLUSTER_SUBCOMMANDS),
                     arity=-2, group="cluster", subcommands=CLUSTER_SUBCOMMANDS,
                     summary="A container for cluster commands."))
    internal = frozenset({"admin", "noscript", "loading", "stale"})
    for name, handler, arity, flags, summary in (
        ("dc.auth", dc_auth, 4, internal | {"noauth", "fast"},
         "Internal: authenticates a peer link with the cluster secret."),
        ("dc.heartbeat", _peer_only(dc_heartbeat), -6, internal | {"fast"},
         "Internal: a member's heartbeat and membership gossip."),
        ("dc.view", _peer_only(dc_view), 1, internal | {"fast"},
         "Internal: this node's view of the members (a node about to join reads it first)."),
        ("dc.apply", _peer_only(dc_apply), -5, internal | {"write"},
         "Internal: applies a versioned change if it is newer than the local copy."),
        ("dc.count", _peer_only(dc_count), 2, internal | {"readonly"},
         "Internal: keys this node answers for (DBSIZE)."),
        ("dc.keys", _peer_only(dc_keys), 3, internal | {"readonly"},
         "Internal: keys this node answers for that match a pattern (KEYS)."),
        ("dc.scan", _peer_only(dc_scan), -3, internal | {"readonly"},
         "Internal: one SCAN step over the keys this node answers for."),
        ("dc.rebalanced", _peer_only(dc_rebalanced), 3, internal,
         "Internal: a peer finished moving keys for a ring."),
    ):
        register(Command(name=name, handler=handler, arity=arity, flags=flags, group="cluster",
                         summary=summary))

