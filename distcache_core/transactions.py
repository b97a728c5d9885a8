"""MULTI/EXEC: a client's queued commands, the gate that queues them, and EXEC.

MULTI gives the connection a :class:`Transaction` (``conn.transaction``) and routes its
requests through :func:`multi_gate` (a per-connection gate of the request path, see
:meth:`~distcache_core.server.RespServer.gate_for`; clients outside MULTI pay nothing). The gate
answers ``+QUEUED`` and keeps the command, after the checks Redis makes first (unknown command,
arity, authentication: done by :func:`~distcache_core.dispatch._slow`, which flags the
transaction when one fails, as Redis's ``flagTransaction``); EXEC, DISCARD, MULTI, WATCH, QUIT
and RESET run at once. EXEC then runs the queued commands one after the other, synchronously,
with nothing of any other client in between, and answers with the array of their replies.

What runs when EXEC aborts, as Redis 7.0 (``src/multi.c``):

- a command was refused while queueing (unknown, wrong arity, not allowed in MULTI, over the
  queue limit): ``-EXECABORT Transaction discarded because of previous errors.``;
- a WATCHed key changed (:mod:`distcache_core.watch`): a null array (``*-1``, RESP3 ``_``).

A command that fails *while EXEC runs* (INCR of a non-integer) is only that command's reply.

Async handlers (a forwarded command, a script past its time limit) inside EXEC start eagerly,
like every async handler (:func:`~distcache_core.dispatch.defer`): their local effect applies in
order, the commands after them run at once, and only EXEC's reply waits until theirs are ready.
So nothing of another client runs between the transaction's commands on this node, but a
command that waits on another node is not isolated from what that node runs meanwhile (the
cluster decides how transactions spanning nodes behave: it sees ``Transaction.commands`` and
``Transaction.keys()`` before EXEC runs).

Limits: a transaction's queued commands count against ``node.transaction_max_bytes`` (their
arguments plus a fixed overhead per command and argument). The command that would pass it is
refused (``-ERR ...``), the queue is freed and EXEC aborts: where Redis relies on its client
query-buffer and memory limits to close such a client, a node keeps the connection and fails
the transaction, so a client that queues forever holds at most that many bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final

from . import dispatch, monitor
from .errors import CommandError
from .replies import NULL_ARRAY, RawReply

EXECABORT: Final = "EXECABORT Transaction discarded because of previous errors."
QUEUED_LINE: Final = b"+QUEUED\r\n"
NOT_IN_MULTI: Final = "ERR Command not allowed inside a transaction"
MONITOR_IN_EXEC: Final = "ERR MONITOR isn't allowed for DENY BLOCKING client"
#: Commands that run at once inside MULTI instead of being queued (Redis's processCommand).
RUN_AT_ONCE: Final = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
#: What one queued command costs besides its arguments' bytes (the list, the bytes objects).
COMMAND_OVERHEAD_BYTES: Final = 64
ARGUMENT_OVERHEAD_BYTES: Final = 40


class Transaction:
    """The commands a client has queued since MULTI (``conn.transaction``).

    :ivar commands: ``(Command, argv)`` in the order they will run.
    :ivar refused: a command was refused while queueing: EXEC aborts (EXECABORT).
    :ivar queued_bytes: what the queue holds, against ``max_bytes``.
    """

    __slots__ = ("commands", "refused", "queued_bytes", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.commands: list[tuple[Any, list[bytes]]] = []
        self.refused = False
        self.queued_bytes = 0
        self.max_bytes = max_bytes

    def keys(self) -> list[bytes]:
        """Every key the queued commands name (by their key positions), each once, in order
        of first appearance. Commands after a queued SELECT act on another database."""
        seen: dict[bytes, None] = {}
        for command, argv in self.commands:
            for position in command.key_positions(len(argv)):
                seen.setdefault(argv[position])
        return list(seen)

    def queue(self, command: Any, argv: list[bytes]) -> None:
        """Keep ``argv`` for EXEC; raises ``CommandError`` when it would pass the limit."""
        if self.refused:
            return  # EXEC aborts anyway: keep nothing more (as Redis with DIRTY_EXEC)
        size = COMMAND_OVERHEAD_BYTES + sum(len(arg) + ARGUMENT_OVERHEAD_BYTES for arg in argv)
        if self.queued_bytes + size > self.max_bytes:
            self.discard_commands()
            raise CommandError(
                f"ERR MULTI queue too large: it would pass node.transaction_max_bytes "
                f"({self.max_bytes} bytes); the transaction is discarded at EXEC")
        self.queued_bytes += size
        self.commands.append((command, argv))

    def refuse(self) -> None:
        """A command was refused while queueing: EXEC will abort."""
        self.refused = True
        self.discard_commands()

    def discard_commands(self) -> None:
        self.refused = True
        self.commands = []
        self.queued_bytes = 0


def multi_gate(conn: Any, command: Any, argv: list[bytes]) -> Any:
    """The gate of a client inside MULTI: queue the command (``+QUEUED``) or run it now."""
    if command.name in RUN_AT_ONCE:
        return dispatch.call_handler(conn, command, argv)
    transaction = conn.transaction
    refusal = subcommand_error(command, argv) or (
        NOT_IN_MULTI if "no_multi" in command.flags else None)
    if refusal is not None:
        transaction.refuse()
        return dispatch.error_reply(conn, refusal)
    try:
        transaction.queue(command, argv)
    except CommandError as exc:
        return dispatch.error_reply(conn, exc.message)
    return QUEUED_LINE


def subcommand_error(command: Any, argv: list[bytes]) -> str | None:
    """Redis checks a container's subcommand (CLIENT ID, CONFIG GET) before queueing it, as it
    checks a command: an unknown one or a wrong argument count is refused at once (and aborts
    EXEC), where outside MULTI the container's handler answers the same errors."""
    if not command.subcommands:
        return None
    wanted = argv[1].lower()
    for subcommand in command.subcommands:
        if subcommand.name.encode() == wanted:
            if subcommand.min_args <= len(argv) <= subcommand.max_args:
                return None
            return (f"ERR wrong number of arguments for '{command.name}|{subcommand.name}' "
                    f"command")
    name = argv[1].decode("utf-8", "replace")[:128]
    return f"ERR unknown subcommand '{name}'. Try {command.name.upper()} HELP."


def refused(conn: Any, command: Any, message: str) -> str:
    """A request failed the checks made before any gate (unknown command, arity,
    authentication): the error to send. Inside MULTI the transaction is flagged, so EXEC
    aborts; a refused EXEC itself discards the transaction (and the watched keys) and says
    why, as Redis's ``execCommandAbort``, even outside MULTI."""
    if command is not None and command.name == "exec":
        end(conn)
        reason = message[4:] if message.startswith("ERR ") else message
        return f"EXECABORT Transaction discarded because of: {reason}"
    if conn.transaction is not None:
        conn.transaction.refuse()
    return message


def gate_provider(conn: Any) -> Any:
    """For ``RespServer.conn_gate_providers``: the MULTI gate while ``conn`` is in MULTI."""
    return multi_gate if conn.transaction is not None else None


def begin(conn: Any) -> None:
    """MULTI: from now on ``conn``'s commands are queued."""
    conn.transaction = Transaction(conn.node.config.node.transaction_max_bytes)
    conn.update_gate()


def end(conn: Any) -> Transaction | None:
    """Leave MULTI (EXEC, DISCARD, RESET) and stop watching; the transaction left."""
    transaction = conn.transaction
    conn.transaction = None
    conn.update_gate()
    conn.server.watches.unwatch(conn)
    return transaction


def execute(conn: Any) -> Any:
    """EXEC: the replies of the queued commands as one array, a null array when a watched
    key changed, or EXECABORT; a coroutine of the array when some reply is not ready."""
    dirty = conn.server.watches.is_dirty(conn)
    transaction = end(conn)
    assert transaction is not None
    if transaction.refused:
        raise CommandError(EXECABORT)
    if dirty:
        return NULL_ARRAY
    parts: list[Any] = [b"*%d\r\n" % len(transaction.commands)]
    waiting = False
    monitors = conn.server.monitors
    for command, argv in transaction.commands:
        reply: bytes | asyncio.Future[bytes]
        if command.name == "monitor":
            # A client waiting for EXEC's reply cannot turn into a monitor halfway (Redis).
            reply = dispatch.error_reply(conn, MONITOR_IN_EXEC)
        else:
            reply = dispatch.call_handler(conn, command, argv)
            if monitors and monitor.shown(command, argv):
                monitors.feed(conn, argv)
        waiting = waiting or type(reply) is not bytes
        parts.append(reply)
    if not waiting:
        return RawReply(b"".join(parts))
    return _when_ready(parts)


def _when_ready(parts: list[Any]) -> Coroutine[Any, Any, RawReply]:
    async def gather() -> RawReply:
        return RawReply(b"".join([part if type(part) is bytes else await part
                                  for part in parts]))
    return gather()
