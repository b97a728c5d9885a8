"""The router: each command runs where its keys live, decided by its routing declaration.

The router never sees a request it does not need to: it builds, once, a copy of each command
whose handler routes before running the real one (``Command.route`` and ``Command.merge``,
see :mod:`distcache_core.command_table`), and puts those in the server's command table while
the cluster has more than one node. A single node's request path is untouched.

- ``local`` commands (PING, INFO, CLIENT...) run where they arrive.
- ``keys`` commands go to the key's *coordinator*: its owner on the ring, or, while the owner
  is down, the first replica up (reads and writes alike: a write taken by a replica is handed
  to the owner later as a hint). When that is another node, the request is forwarded over a
  pooled, pipelined link and the owner's reply goes back to the client byte for byte. A
  request the fault policy refuses, or that never reached the peer, tries the next copy; a read
  that got no answer does too; a write that may have been applied reports ``-CLUSTERDOWN``.
  Keys that must share an owner (``same_owner``, or several keys with no merge) and do not get
  ``-CROSSSLOT``; commands with a merge (``concat``, ``sum``, ``all_ok``) are split by
  coordinator, sent in parallel, and their replies merged in the client's key order.
- ``all`` commands act on the whole cluster: each node answers for the keys it is the primary
  of (the coordinator, as above), so DBSIZE, KEYS and SCAN count each key once.

The *mode* of the link a request arrived on decides how far it may travel: a client's
request is forwarded on ``peer`` links, where the receiving node routes it once more if its
view of the ring differs (a join it knows of and the sender does not yet); that node forwards
on ``final`` links, whose requests always run where they land. No request is forwarded twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from ..command_table import ROUTE_ALL, ROUTE_KEYS, ROUTE_LOCAL, Command, CommandTable
from ..dispatch import defer
from ..errors import CommandError
from ..protocol import encode_error
from ..protocol.encoder import BULK_HEADERS
from ..replies import OK
from ..replyqueue import ReplyFuture, resolve_reply
from .keys import KeysOf, movable_keys
from .peer import MODE_FINAL, MODE_PEER, ForwardBatch, LinkFailure
from .resp import decode, encode_argv
from .transactions import ClusterTransactions

log = logging.getLogger("distcache.cluster.router")

CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
#: SCAN cursors carry the index of the node being walked in their low bits.
SCAN_NODE_BITS = 10

Handler = Callable[[Any, list[bytes]], Any]


def _resolve_decoded(future: asyncio.Future[Any], result: Any) -> None:
    """A peer's raw reply (or a :class:`LinkFailure`) as Python values."""
    if not future.done():
        if type(result) is bytes:
            try:
                result = decode(result)
            except Exception as exc:  # cannot happen: the link only hands on whole replies
                result = LinkFailure(f"undecodable reply: {exc}", sent=True)
        future.set_result(result)


async def _caught(awaitable: Awaitable[Any]) -> Any:
    """``awaitable``'s value, or the :class:`CommandError` it raised."""
    try:
        return await awaitable
    except CommandError as exc:
        return exc


#: Containers with subcommands that must reach every node.
EVERY_NODE_SUBCOMMANDS = {"script": frozenset({b"load", b"flush"})}


def _join(prefix: list[bytes], units: list[list[bytes]], suffix: list[bytes]) -> list[bytes]:
    argv = list(prefix)
    for unit in units:
        argv.extend(unit)
    argv.extend(suffix)
    return argv


def _bytes_of(done: asyncio.Future[Any]) -> bytes:
    """A finished future's reply bytes (an error line if it failed or was cancelled)."""
    if done.cancelled():
        return b"-ERR the command was cancelled\r\n"
    exc = done.exception()
    if exc is not None:
        return encode_error("ERR internal error while running the command (see node log)")
    return done.result()  # type: ignore[no-any-return]


class _Conn:
    """What an internal handler needs of a client connection: the engine of a database."""

    __slots__ = ("engine", "db", "node")

    def __init__(self, engine: Any, db: int, node: Any) -> None:
        self.engine = engine
        self.db = db
        self.node = node


class Router:
    """Builds the routed command tables and runs what they route."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.me: str = cluster.me
        self.strategy = cluster.strategy
        self.pool = cluster.pool
        #: Shared with the cluster: ids of members that are down.
        self.down: set[str] = cluster.down
        self.replication_factor: int = cluster.replication_factor
        #: Set by the rebalancer while keys move: reads that miss ask the previous owner.
        self.handoff: Any = None
        self.active = False
        self.split = 0
        self.fanned_out = 0
        self._original: dict[bytes, Command] = {}
        self.client_table: dict[bytes, Command] = {}
        self.peer_table: dict[bytes, Command] = {}
        self.final_table: dict[bytes, Command] = {}
        self._count_cache: dict[int, tuple[Any, int]] = {}
        self.transactions = ClusterTransactions(self)
        self.pool.forward_failed = self._batch_failed
        #: Lower-case name -> (local handler, is it a write, key position) of the single-key
        #: commands the fast path forwards in batches (for retrying a failed batch).
        self._routes: dict[bytes, tuple[Handler, bool, int]] = {}

    @property
    def forwarded(self) -> int:
        """Commands forwarded to their owner and answered by it."""
        return self.pool.stats.forwarded  # type: ignore[no-any-return]

    # -- tables --------------------------------------------------------------------------------

    def build(self, commands: CommandTable) -> None:
        """Make the three tables from the node's commands (once, at start)."""
        self._original = dict(commands.by_name)
        routed_client: dict[str, Command] = {}
        routed_peer: dict[str, Command] = {}
        final: dict[str, Command] = {}
        for command in commands:
            local = self._final_handler(command)
            here = self._here_handler(command, local)
            final[command.name] = command if here is command.handler else \
                attrs.evolve(command, handler=here)
            routed_client[command.name] = self._routed(command, local, MODE_PEER)
            routed_peer[command.name] = self._routed(command, local, MODE_FINAL)
        for table, by_name in ((self.client_table, routed_client),
                               (self.peer_table, routed_peer), (self.final_table, final)):
            table.clear()
            for raw_name in self._original:
                table[raw_name] = by_name[raw_name.decode().lower()]

    def install(self, commands: CommandTable) -> None:
        """Route every client's requests (the cluster has more than one node)."""
        if not self.active:
            commands.by_name.update(self.client_table)
            self.active = True

    def uninstall(self, commands: CommandTable) -> None:
        """Back to the plain table (the cluster shrank to this node alone)."""
        if self.active:
            commands.by_name.update(self._original)
            self.active = False

    def table_for(self, mode: str) -> dict[bytes, Command]:
        """The table a peer connection of ``mode`` dispatches through: ``peer`` links route
        once more, the others run everything where it lands."""
        return self.peer_table if mode == MODE_PEER else self.final_table

    def _final_handler(self, command: Command) -> Handler:
        replicator = self.cluster.replicator
        if command.is_write and replicator.acks_needed and command.route == ROUTE_KEYS:
            return replicator.with_acks(command.handler, command.first_key)
        return command.handler

    def _here_handler(self, command: Command, local: Handler) -> Handler:
        """What a ``final`` link runs: the command here, whatever the ring says, except that
        a read of keys still moving here asks their previous owner (:meth:`_local_or_previous`,
        :meth:`_here`)."""
        if command.route != ROUTE_KEYS or command.is_write:
            return local
        router = self
        me = self.me
        owner_of = self.strategy.owner
        if command.merge in ("concat", "sum"):
            def split_here(conn: Any, argv: list[bytes]) -> Any:
                if router.handoff is None:
                    return local(conn, argv)
                positions = command.key_positions(len(argv))
                if not positions:
                    return local(conn, argv)
                step = command.key_step or 1
                return router._here(conn, command, local, argv[:positions[0]],
                                    [argv[p:p + step] for p in positions],
                                    argv[positions[-1] + step:])

            return split_here
        position = command.first_key

        def single_here(conn: Any, argv: list[bytes]) -> Any:
            if router.handoff is None or owner_of(argv[position]) != me:
                return local(conn, argv)
            return router._local_or_previous(conn, argv, argv[position], local, False)

        return single_here

    def _routed(self, command: Command, local: Handler, mode: str) -> Command:
        movable = movable_keys(command)
        if movable is not None:
            return attrs.evolve(command, handler=self._movable_handler(command, local, mode,
                                                                       movable))
        if command.name == "exec":
            return attrs.evolve(command, handler=self.transactions.exec(command.handler, mode))
        if command.name == "watch":
            return attrs.evolve(command, handler=self.transactions.watch(command.handler))
        if command.name in EVERY_NODE_SUBCOMMANDS:
            return attrs.evolve(command, handler=self._every_node_handler(
                command, EVERY_NODE_SUBCOMMANDS[command.name]))
        if command.route == ROUTE_LOCAL:
            return command
        if command.route == ROUTE_ALL:
            handler = self._all_handler(command, local, mode)
        elif command.merge in ("concat", "sum", "all_ok"):
            handler = self._split_handler(command, local, mode)
        elif command.first_key == command.last_key:
            handler = self._single_handler(command, local, mode)
            self._routes[command.name.encode()] = (local, command.is_write, command.first_key)
        else:
            handler = self._same_owner_handler(command, local, mode)
        return attrs.evolve(command, handler=handler)

    # -- placement -----------------------------------------------------------------------------

    def coordinator(self, key: bytes, exclude: Sequence[str] = ()) -> str:
        """The node that runs commands on ``key``: its owner, or the first copy up."""
        owner = self.strategy.owner(key)
        if owner == self.me or (owner not in self.down and owner not in exclude):
            return owner
        return self._fallback(key, owner, exclude)

    def _fallback(self, key: bytes, owner: str, exclude: Sequence[str]) -> str:
        if self.replication_factor > 1:
            for node in self.strategy.preference_list(key, self.replication_factor)[1:]:
                if node == self.me or (node not in self.down and node not in exclude):
                    return node
        raise CommandError(self.cluster_down(owner))

    def is_primary(self, key: bytes) -> bool:
        """Does this node answer for ``key`` in whole-keyspace commands?"""
        try:
            return self.coordinator(key) == self.me
        except CommandError:
            return False

    def cluster_down(self, node_id: str, why: str = "") -> str:
        client = self.pool.clients.get(node_id)
        where = f" ({client.address})" if client is not None else ""
        if not why:
            why = "down" if node_id in self.down else "unreachable (breaker open)"
        copies = "" if self.replication_factor == 1 else " and no other copy answers"
        return f"CLUSTERDOWN The cluster is down: {node_id}{where} is {why}{copies}"

    # -- single key ----------------------------------------------------------------------------

    def _single_handler(self, command: Command, local: Handler, mode: str) -> Handler:
        position = command.first_key
        owner_of = self.strategy.owner
        me = self.me
        router = self
        is_write = command.is_write

        down = self.down
        clients = self.pool.clients
        # A forwarded request names the command as the table does (the owner reads any case):
        # with two or three short arguments it is then one join of constant-size parts, with
        # no call and no lookup of the client's spelling (~800 instructions less a GET).
        name = command.name.upper().encode()
        head2 = b"*2\r\n$%d\r\n%b\r\n" % (len(name), name)
        head3 = b"*3\r\n$%d\r\n%b\r\n" % (len(name), name)
        headers = BULK_HEADERS
        join = b"".join
        crlf = b"\r\n"

        def routed(conn: Any, argv: list[bytes]) -> Any:
            key = argv[position]
            owner = owner_of(key)
            if owner == me:
                if router.handoff is None:
                    return local(conn, argv)
                return router._local_or_previous(conn, argv, key, local, is_write)
            # The common case inline: the owner is up and its guard lets the call through.
            if owner not in down:
                client = clients.get(owner)
                if client is not None:
                    count = len(argv)
                    if count == 2 and len(key) < 1024:  # the key is the one argument
                        payload = join((head2, headers[len(key)], key, crlf))
                    elif count == 3 and len(argv[1]) < 1024 and len(argv[2]) < 1024:
                        first, second = argv[1], argv[2]
                        payload = join((head3, headers[len(first)], first, crlf,
                                        headers[len(second)], second, crlf))
                    else:
                        payload = encode_argv(argv)
                    future = client.forward(mode, conn, payload)
                    if future is not None:
                        return future
            return router._forward(conn, argv, key, local, is_write, mode, router.copies(key),
                                   0, "")

        return routed

    def copies(self, key: bytes) -> list[str]:
        """The owner of ``key`` then its replicas."""
        if self.replication_factor == 1:
            return [self.strategy.owner(key)]
        return self.strategy.preference_list(  # type: ignore[no-any-return]
            key, self.replication_factor)

    def _same_owner_handler(self, command: Command, local: Handler, mode: str) -> Handler:
        owner_of = self.strategy.owner
        router = self
        is_write = command.is_write
        me = self.me

        def routed(conn: Any, argv: list[bytes]) -> Any:
            positions = command.key_positions(len(argv))
            if not positions:
                return local(conn, argv)
            key = argv[positions[0]]
            owner = owner_of(key)
            for position in positions[1:]:
                if owner_of(argv[position]) != owner:
                    raise CommandError(CROSSSLOT)
            if owner == me and router.handoff is None:
                return local(conn, argv)
            if owner in router.down and len(positions) > 1:
                first_up = {router.coordinator(argv[p]) for p in positions}
                if len(first_up) > 1:
                    raise CommandError(router.cluster_down(
                        owner, "down and the keys' copies are on different nodes"))
            return router.route_key(conn, argv, key, local, is_write, mode)

        return routed

    def _movable_handler(self, command: Command, local: Handler, mode: str,
                         keys_of: KeysOf) -> Handler:
        """A command whose keys are found by parsing its arguments (EVAL's ``numkeys``): run
        on the owner its keys share, ``-CROSSSLOT`` when they do not; a script without keys
        runs where it arrives."""
        owner_of = self.strategy.owner
        router = self
        me = self.me
        is_write = "readonly" not in command.flags

        def routed(conn: Any, argv: list[bytes]) -> Any:
            try:
                keys = keys_of(argv)
            except (ValueError, IndexError):
                keys = []  # the command itself reports its bad arguments
            if not keys:
                return local(conn, argv)
            owner = owner_of(keys[0])
            for key in keys[1:]:
                if owner_of(key) != owner:
                    raise CommandError(CROSSSLOT)
            if owner == me and router.handoff is None:
                return local(conn, argv)
            return router.route_key(conn, argv, keys[0], local, is_write, mode)

        return routed

    def _every_node_handler(self, command: Command, subcommands: frozenset[bytes]) -> Handler:
        """A container whose ``subcommands`` change every node's state (SCRIPT LOAD and FLUSH:
        a script loaded through one node runs with EVALSHA on its keys' owner): run here,
        then on every other node up; the reply is this node's."""
        local = command.handler
        router = self

        def routed(conn: Any, argv: list[bytes]) -> Any:
            reply = local(conn, argv)
            if len(argv) > 1 and argv[1].lower() in subcommands and router.others_up():
                return router._everywhere(conn, argv, reply)
            return reply

        return routed

    async def _everywhere(self, conn: Any, argv: list[bytes], reply: Any) -> Any:
        """``reply`` once every other node up has run ``argv`` too (a node that fails to is
        logged: the command did its part here)."""
        nodes = self.others_up()
        results = await asyncio.gather(*(self.call(node, argv, conn.db) for node in nodes))
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, (LinkFailure, CommandError)):
                log.warning("%s did not run %s: %s", node,
                            argv[:2], getattr(result, "reason", result))
        return reply

    def route_key(self, conn: Any, argv: list[bytes], key: bytes, local: Handler,
                  is_write: bool, mode: str) -> Any:
        """Run a command of ``key`` on its coordinator."""
        owner = self.strategy.owner(key)
        if owner == self.me:
            return self._local_or_previous(conn, argv, key, local, is_write)
        return self._forward(conn, argv, key, local, is_write, mode, self.copies(key), 0, "")

    def _forward(self, conn: Any, argv: list[bytes], key: bytes, local: Handler, is_write: bool,
                 mode: str, candidates: list[str], start: int, why: str) -> Any:
        """Send to the first usable candidate from ``start``: a :class:`ReplyFuture`, or the
        local handler's reply when this node is the first one up."""
        me = self.me
        down = self.down
        clients = self.pool.clients
        for index in range(start, len(candidates)):
            node = candidates[index]
            if node == me:
                return local(conn, argv)
            if node in down:
                continue
            client = clients.get(node)
            if client is None:
                continue
            future = ReplyFuture()
            if client.send(mode, encode_argv(argv), self._forwarded,
                           (future, conn, argv, local, is_write, mode, key, node),
                           db=conn.db, resp_version=conn.resp_version):
                return future
        raise CommandError(self.cluster_down(candidates[0], why))

    def _batch_failed(self, batch: ForwardBatch, result: LinkFailure) -> None:
        """Forwarded commands got no answer: each still unanswered goes the way of a command
        sent alone (:meth:`_forwarded`), and the batch's future gets the replies that came,
        then theirs, in order."""
        conn = batch.conn
        node = batch.link.client.node_id
        mode = batch.link.mode
        unanswered = [decode(payload) for payload in batch.payloads[batch.count - batch.left:]]
        futures = []
        for argv in unanswered:
            future = ReplyFuture()
            futures.append(future)
            route = self._routes.get(argv[0].lower())
            if route is None:  # not a single-key command: cannot happen, but answer anyway
                resolve_reply(conn, future, encode_error(self.cluster_down(
                    node, f"not answering ({result.reason})")))
                continue
            local, is_write, position = route
            self._forwarded((future, conn, argv, local, is_write, mode, argv[position], node),
                            result)
        answered = b"".join(batch.parts) if batch.parts is not None else b""
        batch.parts = None
        pending = [f for f in futures if not f.done()]

        def finish(_: Any = None) -> None:
            if any(not f.done() for f in futures):
                return
            batch.answered(answered + b"".join(_bytes_of(f) for f in futures))

        if not pending:
            finish()
        for future in pending:
            future.add_done_callback(finish)

    def _forwarded(self, state: tuple[Any, ...], result: Any) -> None:
        if type(result) is bytes:
            future, conn = state[0], state[1]
            self.pool.stats.forwarded += 1
            resolve_reply(conn, future, result)
            return
        # No answer. A read, or a write that never left, may try the next copy.
        future, conn, argv, local, is_write, mode, key, node = state
        candidates = self.copies(key)
        index = candidates.index(node) if node in candidates else len(candidates)
        if is_write and result.sent:
            resolve_reply(conn, future, encode_error(self.cluster_down(
                node, f"not answering ({result.reason}); the write may or may not have been "
                      f"applied")))
            return
        try:
            reply = self._forward(conn, argv, key, local, is_write, mode, candidates, index + 1,
                                  f"not answering ({result.reason})")
        except CommandError as exc:
            resolve_reply(conn, future, encode_error(exc.message))
            return
        self._chain(conn, argv, reply, future)

    def _chain(self, conn: Any, argv: list[bytes], reply: Any, future: ReplyFuture) -> None:
        """Resolve ``future`` with ``reply`` (a handler's value, awaitable or future)."""
        if isinstance(reply, asyncio.Future):
            reply.add_done_callback(
                lambda done: resolve_reply(conn, future, _bytes_of(done)))
            return
        if isinstance(reply, Awaitable):
            encoded = defer(conn, argv, reply)
            if isinstance(encoded, bytes):
                resolve_reply(conn, future, encoded)
            else:
                encoded.add_done_callback(
                    lambda done: resolve_reply(conn, future, _bytes_of(done)))
            return
        try:
            resolve_reply(conn, future, self._encode(conn, reply))
        except Exception:  # a reply the encoder refuses: a bug, but the client gets an answer
            log.exception("cannot encode the reply of %r", argv[0][:64])
            resolve_reply(conn, future, encode_error("ERR internal error while running the "
                                                     "command (see node log)"))

    @staticmethod
    def _encode(conn: Any, reply: Any) -> bytes:
        if reply is OK:
            return b"+OK\r\n"
        return conn.encode(reply)  # type: ignore[no-any-return]

    def _local_or_previous(self, conn: Any, argv: list[bytes], key: bytes, local: Handler,
                           is_write: bool) -> Any:
        """This node owns ``key`` but keys are still moving here: a read of a key not here
        yet asks the node that owned it before the ring changed."""
        handoff = self.handoff
        if handoff is None or is_write or conn.engine.exists(key):
            return local(conn, argv)
        previous = handoff.previous_coordinator(key)
        if previous is None or previous == self.me or previous in self.down:
            return local(conn, argv)
        client = self.pool.clients.get(previous)
        if client is None:
            return local(conn, argv)
        future = ReplyFuture()
        state = (future, conn, argv, local, key)
        if not client.send(MODE_FINAL, encode_argv(argv), self._from_previous, state,
                           db=conn.db, resp_version=conn.resp_version):
            return local(conn, argv)
        handoff.reads += 1
        return future

    def _from_previous(self, state: tuple[Any, ...], result: Any) -> None:
        future, conn, argv, local, key = state
        # The key may have arrived meanwhile (moved, or written here): then it is the truth.
        if type(result) is bytes and not conn.engine.exists(key):
            resolve_reply(conn, future, result)
            return
        try:
            reply = local(conn, argv)
        except CommandError as exc:
            resolve_reply(conn, future, encode_error(exc.message))
            return
        self._chain(conn, argv, reply, future)

    # -- split and merge -----------------------------------------------------------------------

    def _split_handler(self, command: Command, local: Handler, mode: str) -> Handler:
        owner_of = self.strategy.owner
        router = self
        me = self.me
        is_write = command.is_write

        def routed(conn: Any, argv: list[bytes]) -> Any:
            positions = command.key_positions(len(argv))
            if not positions:
                return local(conn, argv)
            first = owner_of(argv[positions[0]])
            for position in positions[1:]:
                if owner_of(argv[position]) != first:
                    return router._split(conn, command, local, argv, positions, mode)
            if first == me:
                if router.handoff is None or is_write:
                    return local(conn, argv)
                return router._split(conn, command, local, argv, positions, mode)
            if first in router.down:
                # Their owner is down: each key's first copy up may be a different node.
                return router._split(conn, command, local, argv, positions, mode)
            return router.route_key(conn, argv, argv[positions[0]], local, is_write, mode)

        return routed

    async def _split(self, conn: Any, command: Command, local: Handler, argv: list[bytes],
                     positions: range, mode: str) -> Any:
        self.split += 1
        step = command.key_step or 1
        prefix = argv[:positions[0]]
        suffix = argv[positions[-1] + step:]
        units = [argv[p:p + step] for p in positions]
        keys = [argv[p] for p in positions]
        merge = command.merge
        values: list[Any] = [None] * len(units)
        total = 0
        exclude: list[str] = []
        pending = list(range(len(units)))
        while pending:
            groups: dict[str, list[int]] = {}
            for index in pending:
                groups.setdefault(self.coordinator(keys[index], exclude), []).append(index)
            parts = list(groups.items())
            # Every part leaves (or runs) now, before the client's next command: on the links
            # its single-key commands take, so each key sees its commands in the client's
            # order (a later SET of a key must not reach its owner before this MGET).
            started = [self._part(conn, command, node, prefix, [units[i] for i in indexes],
                                  suffix, local, mode)
                       for node, indexes in parts]
            outcomes = [await part if isinstance(part, Awaitable) else part
                        for part in started]
            pending = []
            for (node, indexes), outcome in zip(parts, outcomes, strict=True):
                if isinstance(outcome, LinkFailure):
                    if command.is_write and outcome.sent:
                        raise CommandError(self.cluster_down(
                            node, f"not answering ({outcome.reason}); part of the write may "
                                  f"have been applied"))
                    exclude.append(node)
                    pending.extend(indexes)
                    continue
                if isinstance(outcome, CommandError):
                    raise outcome
                if merge == "concat":
                    for index, value in zip(indexes, outcome, strict=True):
                        values[index] = value
                elif merge == "sum":
                    total += outcome
        if merge == "concat":
            return values
        if merge == "sum":
            return total
        return OK

    def _part(self, conn: Any, command: Command, node: str, prefix: list[bytes],
              units: list[list[bytes]], suffix: list[bytes], local: Handler, mode: str) -> Any:
        """Start one part of a split command: its outcome (a value, a :class:`CommandError`
        or a :class:`LinkFailure`), or an awaitable of it. A remote part is sent now, a local
        one runs now (but for reads of keys still moving here)."""
        argv = _join(prefix, units, suffix)
        if node != self.me:
            return self.request(node, argv, conn.db, mode, conn.resp_version)
        if self.handoff is not None and not command.is_write:
            return _caught(self._here(conn, command, local, prefix, units, suffix))
        try:
            reply = local(conn, argv)
        except CommandError as exc:
            return exc
        return _caught(reply) if isinstance(reply, Awaitable) else reply

    async def _here(self, conn: Any, command: Command, local: Handler, prefix: list[bytes],
                    units: list[list[bytes]], suffix: list[bytes]) -> Any:
        """Run a part of a split command here. While keys move here (a handoff), a read's
        keys not here yet are read from their previous owner, and the parts merged."""
        handoff = self.handoff
        away: dict[str, list[int]] = {}
        if handoff is not None and not command.is_write:
            exists = conn.engine.exists
            for index, unit in enumerate(units):
                if not exists(unit[0]):
                    previous = handoff.previous_coordinator(unit[0])
                    if previous is not None and previous != self.me \
                            and previous not in self.down:
                        away.setdefault(previous, []).append(index)
        if not away:
            reply = local(conn, _join(prefix, units, suffix))
            return await reply if isinstance(reply, Awaitable) else reply
        moved = {index for indexes in away.values() for index in indexes}
        here = [index for index in range(len(units)) if index not in moved]
        asked = list(away.items())
        remote = await asyncio.gather(*(
            self.call(node, _join(prefix, [units[i] for i in indexes], suffix), conn.db)
            for node, indexes in asked))
        handoff.reads += len(moved)
        for (node, indexes), result in zip(asked, remote, strict=True):
            if isinstance(result, (LinkFailure, CommandError)):
                here.extend(indexes)  # the previous owner did not answer: what is here
                away.pop(node)
        here.sort()
        mine: Any = local(conn, _join(prefix, [units[i] for i in here], suffix)) if here \
            else ([] if command.merge == "concat" else 0)
        if isinstance(mine, Awaitable):
            mine = await mine
        if command.merge == "sum":
            return mine + sum(r for (n, _), r in zip(asked, remote, strict=True) if n in away)
        values: list[Any] = [None] * len(units)
        for index, value in zip(here, mine, strict=True):
            values[index] = value
        for (node, indexes), result in zip(asked, remote, strict=True):
            if node in away:
                for index, value in zip(indexes, result, strict=True):
                    values[index] = value
        return values

    def request(self, node: str, argv: list[bytes], db: int = 0, mode: str = MODE_FINAL,
                resp_version: int = 2) -> asyncio.Future[Any]:
        """Send ``argv`` to ``node`` now: a future of its decoded reply (an error reply as a
        ``CommandError`` value; RESP3 types when ``resp_version`` is 3), or of a
        :class:`LinkFailure`."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        client = self.pool.clients.get(node)
        if client is None or node in self.down:
            future.set_result(LinkFailure("down", sent=False))
        elif not client.send(mode, encode_argv(argv), _resolve_decoded, future, db=db,
                             resp_version=resp_version):
            future.set_result(LinkFailure("breaker open", sent=False))
        return future

    async def call(self, node: str, argv: list[bytes], db: int = 0, mode: str = MODE_FINAL
                   ) -> Any:
        """Run ``argv`` on ``node``: what :meth:`request`'s future gives."""
        return await self.request(node, argv, db, mode)

    # -- the whole keyspace --------------------------------------------------------------------

    def _all_handler(self, command: Command, local: Handler, mode: str) -> Handler:
        builtin = {"dbsize": self._dbsize, "keys": self._keys, "scan": self._scan,
                   "randomkey": self._randomkey}.get(command.name)
        if builtin is not None:
            return builtin
        merge = command.merge

        def routed(conn: Any, argv: list[bytes]) -> Any:
            return self._fan_out(conn, argv, local, merge)

        return routed

    def others_up(self) -> list[str]:
        return [n for n in self.strategy.nodes() if n != self.me and n not in self.down]

    async def _gather(self, conn: Any, argv: list[bytes], local: Handler, *,
                      need_all: bool = False) -> list[Any]:
        """``argv`` run on every node up (``local`` here); failures raise CLUSTERDOWN."""
        nodes = self.strategy.nodes()
        missing = [n for n in nodes if n in self.down and n != self.me]
        if need_all and missing:
            raise CommandError(self.cluster_down(
                missing[0], f"down: {argv[0].decode(errors='replace').upper()} needs every "
                            f"node"))
        self.fanned_out += 1
        others = [n for n in nodes if n != self.me and n not in self.down]

        # This node's part runs now and the others' requests leave now, before the client's
        # next command runs (they take the final links, so a remote part is not ordered
        # with the client's forwarded commands on the peer links as strictly).
        mine = local(conn, argv)
        asked = [self.request(n, argv, conn.db) for n in others]
        results = [await mine if isinstance(mine, Awaitable) else mine]
        for future in asked:
            results.append(await future)
        for node, result in zip(others, results[1:], strict=True):
            if isinstance(result, LinkFailure):
                raise CommandError(self.cluster_down(node, f"not answering ({result.reason})"))
            if isinstance(result, CommandError):
                raise result
        return list(results)

    async def _fan_out(self, conn: Any, argv: list[bytes], local: Handler, merge: str) -> Any:
        results = await self._gather(conn, argv, local, need_all=merge == "all_ok")
        if merge == "sum_primary":
            return sum(results)
        if merge == "keys_union":
            return list(dict.fromkeys(k for part in results for k in part))
        if merge == "random":
            return next((r for r in results if r is not None), None)
        return results[0] if merge == "" else OK

    def _dbsize(self, conn: Any, argv: list[bytes]) -> Any:
        return self._fan_out(conn, [b"DC.COUNT", b"%d" % conn.db],
                             lambda c, a: self.count_primary(c.db), "sum_primary")

    def _keys(self, conn: Any, argv: list[bytes]) -> Any:
        return self._fan_out(conn, [b"DC.KEYS", b"%d" % conn.db, argv[1]],
                             lambda c, a: self.keys_primary(c.db, argv[1]), "keys_union")

    def _randomkey(self, conn: Any, argv: list[bytes]) -> Any:
        key = conn.engine.random_key()
        if key is not None:
            return key
        return self._random_elsewhere(conn, argv)

    async def _random_elsewhere(self, conn: Any, argv: list[bytes]) -> Any:
        for node in self.others_up():
            result = await self.call(node, argv, conn.db)
            if isinstance(result, bytes):
                return result
        return None

    def _scan(self, conn: Any, argv: list[bytes]) -> Any:
        from ..builtin.arguments import parse_scan_cursor

        cursor = parse_scan_cursor(argv[1])
        return self._scan_walk(conn, cursor, argv[2:])

    async def _scan_walk(self, conn: Any, cursor: int, options: list[bytes]) -> Any:
        nodes = self.strategy.nodes()
        index = cursor & ((1 << SCAN_NODE_BITS) - 1)
        node_cursor = cursor >> SCAN_NODE_BITS
        while index < len(nodes):
            node = nodes[index]
            if node != self.me and node in self.down:
                index, node_cursor = index + 1, 0
                continue
            request = [b"DC.SCAN", b"%d" % conn.db, b"%d" % node_cursor, *options]
            if node == self.me:
                result: Any = self.scan_primary(conn.db, node_cursor, options)
            else:
                result = await self.call(node, request, conn.db)
            if isinstance(result, LinkFailure):
                raise CommandError(self.cluster_down(node, f"not answering ({result.reason})"))
            if isinstance(result, CommandError):
                raise result
            next_cursor, keys = int(result[0]), result[1]
            if next_cursor:
                return [b"%d" % (next_cursor << SCAN_NODE_BITS | index), keys]
            index += 1
            if index < len(nodes):
                return [b"%d" % index, keys]
            return [b"0", keys]
        return [b"0", []]

    # -- what each node answers for (DC.COUNT, DC.KEYS, DC.SCAN) ---------------------------------

    def count_primary(self, db: int) -> int:
        engine = self.cluster.node.databases[db]
        cache_key = (db, self.cluster.node.mutations.seq, self.cluster.ring_epoch,
                     frozenset(self.down))
        cached = self._count_cache.get(db)
        if cached is not None and cached[0] == cache_key:
            return cached[1]
        is_primary = self.is_primary
        count = sum(1 for key in engine.keys(b"*") if is_primary(key))
        self._count_cache[db] = (cache_key, count)
        return count

    def keys_primary(self, db: int, pattern: bytes) -> list[bytes]:
        is_primary = self.is_primary
        return [key for key in self.cluster.node.databases[db].keys(pattern) if is_primary(key)]

    def scan_primary(self, db: int, cursor: int, options: list[bytes]) -> Any:
        scan = self._original[b"scan"].handler
        try:
            next_cursor, keys = scan(_Conn(self.cluster.node.databases[db], db,
                                           self.cluster.node),
                                     [b"SCAN", b"%d" % cursor, *options])
        except CommandError as exc:
            return exc
        is_primary = self.is_primary
        return [next_cursor, [key for key in keys if is_primary(key)]]

