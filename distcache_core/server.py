"""The RESP server: state shared by every client connection of one node.

The request path is: bytes -> :class:`~distcache_core.protocol.RequestParser` ->
:func:`~distcache_core.dispatch.dispatch` (command table lookup, handler, encoder) -> reply
bytes, in :class:`~distcache_core.connection.ClientConnection`. Nothing there goes through
pluggy. This module holds what the connections share: the command table, limits, counters,
the set of live connections, who may connect (maxclients, protected mode), and the gates that
route requests off the fast path (MULTI, loading, a long script).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import transactions
from .command_table import CommandTable
from .connection import MAX_CLIENTS_REPLY, ClientConnection
from .dispatch import unknown_command_error
from .errorstats import ErrorStats
from .monitor import Monitors
from .mutations import MutationStream
from .protocol import ProtocolLimits
from .watch import WatchRegistry

if TYPE_CHECKING:
    from .contracts import StorageEngine

__all__ = ["ClientConnection", "RespServer", "ServerStats", "unknown_command_error"]

log = logging.getLogger("distcache.server")

#: Redis's protected-mode refusal (networking.c), with DistCache's own remedies.
DENIED_REPLY = (
    b"-DENIED DistCache is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from "
    b"the loopback interface. If you want to connect from external computers to DistCache you "
    b"may adopt one of the following solutions: 1) Set a password with node.requirepass "
    b"(or DISTCACHE_PASSWORD) and restart the node. 2) Disable protected mode by setting "
    b"node.protected_mode = false, however MAKE SURE the node is not publicly accessible from "
    b"internet if you do so. 3) Listen on 127.0.0.1 only (node.host). NOTE: You only need to "
    b"do one of the above things in order for the node to start accepting connections from "
    b"the outside.\r\n")

#: Protocol errors are logged at most this often at INFO level; the rest are counted (INFO
#: ``total_protocol_errors``) and logged at DEBUG, so a fuzzer cannot fill the disk.
PROTOCOL_ERROR_LOG_INTERVAL_SECONDS = 10.0


class ServerStats:
    """Counters INFO reports. The per-request ones (bytes, error replies) are kept on each
    connection, where bumping them is one attribute add, and folded in here when it closes;
    :meth:`RespServer.totals` adds the live connections' share. Commands processed are the sum
    of the commands' own call counters (``node.metrics``), filled in by ``totals``."""

    __slots__ = ("connections_received", "commands_processed", "rejected_connections",
                 "net_input_bytes", "net_output_bytes", "protocol_errors", "error_replies")

    def __init__(self) -> None:
        self.connections_received = 0
        self.commands_processed = 0
        self.rejected_connections = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.protocol_errors = 0
        self.error_replies = 0

    def absorb(self, conn: ClientConnection) -> None:
        self.net_input_bytes += conn.net_input_bytes
        self.net_output_bytes += conn.net_output_bytes
        self.error_replies += conn.error_replies
        conn.net_input_bytes = conn.net_output_bytes = 0
        conn.error_replies = 0


#: A gate: decides what happens to a request that may not take the fast path.
Gate = Callable[[ClientConnection, Any, list[bytes]], Any]


class RespServer:
    """State shared by every connection of one node: the command table, the engine, limits
    and the set of live connections."""

    def __init__(self, *, node: Any, engine: StorageEngine, commands: CommandTable,
                 limits: ProtocolLimits, requirepass: str = "", maxclients: int = 10000,
                 idle_timeout_seconds: int = 0,
                 reply_buffer_high_water_bytes: int = 1024 * 1024,
                 mutations: MutationStream | None = None,
                 protected_mode: bool = True) -> None:
        self.node = node
        self.engine = engine
        self.commands = commands
        self.limits = limits
        self.requirepass = requirepass
        self.maxclients = maxclients
        self.idle_timeout_seconds = idle_timeout_seconds
        self.high_water = reply_buffer_high_water_bytes
        self.protected_mode = protected_mode
        self.mutations = mutations if mutations is not None else MutationStream()
        #: True when a persistence plugin supplies a durability barrier: a batch that wrote
        #: then waits for it before its replies leave.
        self.barrier_enabled = False
        self.shutting_down = False
        self.stats = ServerStats()
        #: Error replies by code (INFO errorstats), counted by ``dispatch.error_reply``.
        self.error_stats = ErrorStats()
        self.connections: dict[int, ClientConnection] = {}
        #: Gates that apply to every connection (loading, a long script), by name, in order;
        #: see :meth:`set_node_gate`. A connection's own gate (MULTI) comes from
        #: ``conn_gate_providers``.
        self._node_gates: dict[str, Gate] = {}
        #: Per connection gate providers: ``provider(conn)`` returns a gate or None. MULTI's
        #: is built in (:mod:`~distcache_core.transactions`).
        self.conn_gate_providers: list[Callable[[ClientConnection], Gate | None]] = [
            transactions.gate_provider]
        #: WATCH: who watches which key (a subscriber on the mutation stream while any is).
        self.watches = WatchRegistry(self.mutations)
        #: MONITOR: the clients shown every command (a gate while there is one).
        self.monitors = Monitors(self)
        self._next_client_id = 0
        self._last_protocol_error_log = 0.0
        self._unlogged_protocol_errors = 0
        #: Refreshed by :meth:`cron`; ages in CLIENT LIST are whole seconds anyway.
        self.now = time.monotonic()

    # -- counters ------------------------------------------------------------------------------

    def totals(self) -> ServerStats:
        """The counters including live connections' share (for INFO and metrics)."""
        total = ServerStats()
        for name in ServerStats.__slots__:
            setattr(total, name, getattr(self.stats, name))
        total.commands_processed = self.node.metrics.total_calls()
        for conn in self.connections.values():
            total.net_input_bytes += conn.net_input_bytes
            total.net_output_bytes += conn.net_output_bytes
            total.error_replies += conn.error_replies
        return total

    def reset_stats(self) -> None:
        self.stats = ServerStats()
        self.error_stats.reset()
        for conn in self.connections.values():
            conn.net_input_bytes = conn.net_output_bytes = 0
            conn.error_replies = 0

    def note_protocol_error(self, peer: str, message: str) -> None:
        self.stats.protocol_errors += 1
        now = time.monotonic()
        if now - self._last_protocol_error_log >= PROTOCOL_ERROR_LOG_INTERVAL_SECONDS:
            suppressed = self._unlogged_protocol_errors
            self._last_protocol_error_log = now
            self._unlogged_protocol_errors = 0
            log.info("protocol error from %s: %s%s", peer, message,
                     f" ({suppressed} more since the last one logged)" if suppressed else "")
        else:
            self._unlogged_protocol_errors += 1
            log.debug("protocol error from %s: %s", peer, message)

    # -- connections ---------------------------------------------------------------------------

    def protocol_factory(self) -> ClientConnection:
        return ClientConnection(self)

    def next_client_id(self) -> int:
        self._next_client_id += 1
        return self._next_client_id

    def refusal_for(self, transport: asyncio.BaseTransport) -> bytes | None:
        """The reply that refuses a new connection, or None to accept it."""
        if self.shutting_down:
            return b"-ERR the node is shutting down\r\n"
        if len(self.connections) >= self.maxclients:
            self.stats.rejected_connections += 1
            return MAX_CLIENTS_REPLY
        if self.protected_mode and not self.requirepass:
            peer = transport.get_extra_info("peername")
            if not _is_loopback(peer):
                self.stats.rejected_connections += 1
                return DENIED_REPLY
        return None

    def connection_closed(self, conn: ClientConnection) -> None:
        """Forget what tracks the connection (WATCH, MONITOR)."""
        self.watches.unwatch(conn)
        self.monitors.discard(conn)

    # -- gates ---------------------------------------------------------------------------------

    def gate_for(self, conn: ClientConnection) -> Gate | None:
        """The gate ``conn``'s requests must pass, or None for the fast path. A node gate
        (loading, a busy script) comes before the connection's own (MULTI), as Redis checks
        those states before it queues a command."""
        for node_gate in self._node_gates.values():
            return node_gate
        for provider in self.conn_gate_providers:
            gate = provider(conn)
            if gate is not None:
                return gate
        return None

    def set_node_gate(self, name: str, gate: Gate | None) -> None:
        """Route every connection's requests through ``gate`` (None removes it): the node is
        loading, a script runs too long. Costs nothing per request while no gate is set.

        A node gate refuses what it must (raising ``CommandError``, which also aborts the
        client's MULTI) and hands what it lets through to ``dispatch.proceed``, which queues
        it for a client in MULTI or runs it."""
        if gate is None:
            self._node_gates.pop(name, None)
        else:
            self._node_gates[name] = gate
        for conn in self.connections.values():
            conn.update_gate()

    # -- periodic and shutdown -----------------------------------------------------------------

    def cron(self) -> None:
        """Once a second: refresh the coarse clock and close idle clients."""
        self.now = now = time.monotonic()
        timeout = self.idle_timeout_seconds
        if timeout:
            for conn in list(self.connections.values()):
                if now - conn.last_interaction > timeout and not conn.writing_paused:
                    log.info("closing client id=%d idle for %ds", conn.client_id, timeout)
                    conn.close()

    async def shut_down(self, deadline_seconds: float = 2.0) -> None:
        """Stop taking requests; let every client get the replies of what it already sent
        and a clean close (FIN, not a reset), waiting at most ``deadline_seconds``."""
        self.shutting_down = True
        for conn in list(self.connections.values()):
            conn.shut_down()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_seconds
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self.close_all()

    def close_all(self) -> None:
        for conn in list(self.connections.values()):
            conn.close()


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # a Unix socket
    try:
        ip = ipaddress.ip_address(address[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
