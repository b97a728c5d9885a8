"""MULTI/EXEC and WATCH in a cluster (see :mod:`distcache_core.transactions` for one node).

At EXEC the router looks at the keys of the queued commands (``Transaction.keys()``):

- all on this node (or no keys): EXEC runs here, atomically, as on a single node;
- all on one other node: the block goes there as MULTI, the commands, EXEC, back to back on
  one pooled link, and runs atomically on that owner; its EXEC reply is the client's;
- on several nodes: each owner gets a MULTI/EXEC block of its commands (this node runs its own
  at once), in parallel, and the replies are put back in the order the client queued them:
  atomic on each node, **not** across nodes (README, Cluster section). A node that does not
  answer makes each of its commands' replies a ``-CLUSTERDOWN`` error.

WATCH of keys that do not share an owner gets ``-CROSSSLOT``, as does a transaction with
WATCHed keys that runs on another node: a watch is kept by the node the client talks to, so
it only sees changes that reach that node.

A transaction that changes database (SELECT, SWAPDB...) inside the block runs command by
command, each on its owner, as queued.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import transactions
from ..dispatch import call_handler
from ..errors import CommandError
from ..protocol import encode_error
from ..replies import NULL_ARRAY, RawReply
from .keys import request_keys
from .peer import LinkFailure
from .resp import ReplySplitter, encode_argv, encode_command

CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
#: Commands that change what the rest of a block acts on: such a block runs command by command.
CONTEXT_COMMANDS = frozenset({"select", "swapdb", "move", "flushall", "flushdb", "reset"})


def _ignore(arg: Any, result: Any) -> None:
    pass


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


class ClusterTransactions:
    """The EXEC and WATCH handlers the router installs while the cluster has peers."""

    def __init__(self, router: Any) -> None:
        self.router = router

    def watch(self, local: Any) -> Any:
        owner_of = self.router.strategy.owner

        def routed(conn: Any, argv: list[bytes]) -> Any:
            owners = {owner_of(key) for key in argv[1:]}
            if len(owners) > 1:
                raise CommandError(CROSSSLOT)
            return local(conn, argv)

        return routed

    def exec(self, local: Any, mode: str) -> Any:
        router = self.router

        def routed(conn: Any, argv: list[bytes]) -> Any:
            transaction = getattr(conn, "transaction", None)
            if transaction is None or transaction.refused or not transaction.commands \
                    or any(c.name in CONTEXT_COMMANDS for c, _ in transaction.commands):
                return local(conn, argv)
            owner_of = router.strategy.owner
            by_node: dict[str, list[int]] = {}
            for index, (command, args) in enumerate(transaction.commands):
                keys = request_keys(command, args)
                owners = {owner_of(key) for key in keys} or {router.me}
                node = owners.pop() if len(owners) == 1 else router.me
                by_node.setdefault(node, []).append(index)
            if list(by_node) == [router.me] and router.handoff is None:
                return local(conn, argv)
            if conn.server.watches.watching(conn):
                transactions.end(conn)
                others = ", ".join(sorted(n for n in by_node if n != router.me))
                raise CommandError(f"{CROSSSLOT} (a watched transaction runs on the node that "
                                   f"owns its keys: {others})")
            dirty = conn.server.watches.is_dirty(conn)
            transactions.end(conn)
            if dirty:
                return NULL_ARRAY
            return self._spread(conn, transaction.commands, by_node, mode)

        return routed

    def _spread(self, conn: Any, commands: list[tuple[Any, list[bytes]]],
                by_node: dict[str, list[int]], mode: str) -> Any:
        router = self.router
        replies: list[Any] = [None] * len(commands)
        waits: list[tuple[str, list[int], asyncio.Future[Any]]] = []
        for node, indexes in by_node.items():
            if node == router.me:
                for index in indexes:  # here, at once: nothing else runs in between
                    command, args = commands[index]
                    replies[index] = call_handler(conn, command, args)
                continue
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            client = router.pool.clients.get(node)
            if client is None or node in router.down or not self._send_block(
                    client, conn, [commands[i][1] for i in indexes], future, mode):
                future.set_result(LinkFailure("down" if node in router.down else
                                              "breaker open", sent=False))
            waits.append((node, indexes, future))
        return self._assemble(replies, waits)

    @staticmethod
    def _send_block(client: Any, conn: Any, blocks: list[list[bytes]],
                    future: asyncio.Future[Any], mode: str) -> bool:
        """MULTI, the commands, EXEC back to back on one link (nothing of another client can
        come between them there); ``future`` gets EXEC's raw reply."""
        db, resp = conn.db, conn.resp_version
        if not client.send(mode, encode_command(b"MULTI"), _ignore, None, db=db,
                           resp_version=resp):
            return False
        for args in blocks:
            client.send(mode, encode_argv(args), _ignore, None, db=db, resp_version=resp)
        client.send(mode, encode_command(b"EXEC"), _resolve, future, db=db, resp_version=resp)
        return True

    async def _assemble(self, replies: list[Any], waits: list[tuple[str, list[int], Any]]
                        ) -> RawReply:
        for node, indexes, future in waits:
            result = await future
            parts = _exec_parts(result, len(indexes))
            if parts is None:
                reason = result.reason if isinstance(result, LinkFailure) else \
                    bytes(result[:200]).decode("utf-8", "replace").strip()
                error = encode_error(self.router.cluster_down(node, f"not answering ({reason})")
                                     if isinstance(result, LinkFailure) else
                                     f"ERR the block for {node} failed: {reason}")
                parts = [error] * len(indexes)
            for index, part in zip(indexes, parts, strict=True):
                replies[index] = part
        out = [b"*%d\r\n" % len(replies)]
        for reply in replies:
            out.append(await reply if isinstance(reply, asyncio.Future) else reply)
        return RawReply(b"".join(out))


def _exec_parts(result: Any, count: int) -> list[bytes] | None:
    """The elements of an EXEC reply (``*count`` then the replies), raw; None otherwise."""
    if not isinstance(result, bytes) or not result.startswith(b"*"):
        return None
    header_end = result.find(b"\r\n")
    if int(result[1:header_end]) != count:
        return None
    parts = ReplySplitter().feed(result[header_end + 2:])
    return parts if len(parts) == count else None
