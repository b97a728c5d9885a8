"""One client connection: an ``asyncio.Protocol`` that feeds the parser, runs each request
through :func:`~distcache_core.dispatch.dispatch` and writes the replies.

Every reply produced from one read leaves in one ``transport.write``. Replies that are not
ready at once (async handlers, writes waiting for the durability barrier) go through the
connection's :class:`~distcache_core.replyqueue.ReplyQueue`, which keeps request order.

Back-pressure: replies are produced until the unsent bytes pass the high-water mark; the rest
of the parsed commands wait, reading stops, and processing resumes when the transport has
drained (``resume_writing``) or on the next loop turn. Replies held in the queue count too, as
does the number of replies still being computed. A client that pipelines megabytes of GETs and
never reads therefore costs at most about one high-water mark of memory, and never blocks other
clients for longer than one batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from .dispatch import dispatch, dispatch_one, error_reply
from .protocol import RequestParser, encode_resp2, encode_resp3
from .protocol.parser import DRAINED
from .replyqueue import HELD_REPLY_COST, ReplyQueue

if TYPE_CHECKING:
    from .server import RespServer

log = logging.getLogger("distcache.server")
_monotonic = time.monotonic

MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"
#: Replies still being computed (futures) that a client may have before it stops being read.
MAX_OUTSTANDING_REPLIES = 1024


class ClientConnection(asyncio.Protocol):
    """One client. It is also the context command handlers receive (see
    :class:`~distcache_core.contracts.CommandContext`)."""

    # Slots: with more than 30 attributes an instance dict loses key sharing and every
    # attribute load on the request path gets slower (+1k instructions a GET, measured).
    # ``__dict__`` stays, so a plugin may still hang its own state on a connection.
    __slots__ = (
        "server", "node", "engine", "db", "transport", "parser", "peer", "local", "client_id",
        "client_name", "lib_name", "lib_ver", "authenticated", "resp_version", "encode",
        "created_at", "last_interaction", "writing_paused", "reading_paused", "_pending",
        "replies", "_held",  "_barrier_enabled", "close_requested", "_closed", "_eof",
        "_draining", "gated", "gate", "command_lookup", "command_get", "_mutations",
        "_transport_write", "metrics", "net_input_bytes", "net_output_bytes",
        "error_replies", "transaction", "__dict__",
    )

    transport: asyncio.Transport | None

    def __init__(self, server: RespServer) -> None:
        self.server = server
        self.node = server.node
        self.engine = server.engine
        #: The logical database this client has selected (SELECT).
        self.db = 0
        self.transport = None
        self.parser = RequestParser(server.limits)
        self.peer = ""
        self.local = ""
        self.client_id = 0
        self.client_name: bytes | None = None
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = not server.requirepass
        self.parser.authenticated = self.authenticated
        self.resp_version = 2
        self.encode = encode_resp2
        self.created_at = self.last_interaction = server.now
        self.writing_paused = False
        self.reading_paused = False
        #: Parsed requests not yet run (back-pressure).
        self._pending: deque[list[bytes]] = deque()
        self.replies = ReplyQueue(self._write_now, self._after_replies_left)
        #: The queue's deque itself: its truth and length are C calls on the request path.
        self._held = self.replies.entries
        #: Copied from the server when the connection is made (barriers register at start).
        self._barrier_enabled = server.barrier_enabled
        self.close_requested = False
        self._closed = False
        self._eof = False
        self._draining = False
        #: True while requests need more than the fast path (not authenticated, MULTI,
        #: loading, a long script): dispatch then checks authentication and calls
        #: ``gate(conn, command, argv)`` when ``gate`` is set. See :meth:`update_gate`.
        self.gated = False
        self.gate: Any = None
        #: The client's MULTI state (:class:`~distcache_core.transactions.Transaction`:
        #: the queued commands and their keys), None outside MULTI.
        self.transaction: Any = None
        self.command_lookup = server.commands.lookup
        # The exact-spelling dict lookup, bound once: the common case costs one C call.
        self.command_get = server.commands.by_name.get
        self._mutations = server.mutations
        self._transport_write: Any = None
        #: The node's metrics: each read ends with a clock read and a compare against
        #: ``metrics.limit`` (see :mod:`distcache_core.metrics.recorder`). Commands count
        #: their own calls (``total_commands_processed`` is their sum).
        self.metrics = server.node.metrics
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.error_replies = 0
        self.update_gate()

    # -- asyncio.Protocol interface ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        server = self.server
        self.peer = _format_address(transport.get_extra_info("peername"))
        self.local = _format_address(transport.get_extra_info("sockname"))
        refusal = server.refusal_for(transport)
        if refusal is not None:
            transport.write(refusal)
            transport.close()
            self._closed = True
            return
        server.stats.connections_received += 1
        self._transport_write = transport.write
        self.client_id = server.next_client_id()
        server.connections[self.client_id] = self
        # Read again now that it is registered: uvloop calls connection_made a loop turn
        # after building the protocol, and a barrier source or node gate that arrived in
        # between (recovery ending, a write error) updated only registered connections.
        self._barrier_enabled = server.barrier_enabled
        self.update_gate()
        transport.set_write_buffer_limits(high=server.high_water)

    def data_received(self, data: bytes) -> None:
        self.net_input_bytes += len(data)
        self.last_interaction = _monotonic()
        commands = self.parser.feed(data)  # a shutting-down node's parser drops every request
        if self._pending:
            self._pending.extend(commands)
            self._pause_reading()
            return
        if len(commands) == 1 and not self._held and not self._barrier_enabled:
            # One request a read (clients that wait for each reply): no batching needed.
            reply = dispatch_one(self, commands[0])
            if type(reply) is bytes:
                self.net_output_bytes += len(reply)
                self._transport_write(reply)
                started = self.last_interaction
                if _monotonic() - started >= self.metrics.limit:  # slow, or a time sample due
                    self.metrics.sampled_read(self, commands, 1, started)
                if self.close_requested or not self.parser.settled:
                    self._after_batch()  # a no-op for an unauthenticated client's clean read
                return
            self.replies.add_future(cast("asyncio.Future[bytes]", reply))
            started = self.last_interaction
            if _monotonic() - started >= self.metrics.limit:
                self.metrics.sampled_read(self, commands, 1, started)
            self._after_batch()
            return
        self._run(commands, self.last_interaction)

    def eof_received(self) -> bool | None:
        # Half-closed by the client (`nc -q`, `printf ... | nc`): replies already produced are
        # flushed by close(); nothing more can arrive. Pending commands still run first.
        self._eof = True
        if not self._pending and not self._held:
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._pending.clear()
        self.replies.clear()
        if self.server.connections.pop(self.client_id, None) is not None:
            self.server.stats.absorb(self)
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self._pending:
            self._drain_pending()
        elif not self._closed and not self._over_limits():
            self._resume_reading()

    # -- request path --------------------------------------------------------------------------

    def _run(self, commands: list[list[bytes]] | deque[list[bytes]], started: float) -> None:
        """Run ``commands`` in order and send their replies in one write; stop early at the
        high-water mark and leave the rest pending. ``started``: when the read began
        (``time.monotonic()``), for the metrics."""
        if self._draining:
            return  # shutting down: the requests were dropped (DRAINED); nothing to do
        replies = self.replies
        barrier_enabled = self._barrier_enabled
        if barrier_enabled:
            seq_before = self._mutations.seq
            start = replies.mark()
        out: list[bytes] = []
        done = dispatch(self, commands, out)
        if _monotonic() - started >= self.metrics.limit:  # slow, or a time sample due
            self.metrics.sampled_read(self, commands, done, started)
        pending = self._pending
        if done < len(commands) and not self.close_requested:
            if isinstance(commands, deque):  # it is _pending
                for _ in range(done):
                    pending.popleft()
            else:
                pending.extend(commands[done:])
            self._pause_reading()
        elif commands is pending:
            pending.clear()
        if barrier_enabled and self._mutations.seq != seq_before:
            # The batch wrote: its replies leave once the writes are durable. Every batch of
            # this loop turn, from any client, shares the one barrier (group commit).
            replies.add_bytes(b"".join(out))
            replies.gate(start, self.server.node.durability_barrier())
        elif self._held:
            replies.add_bytes(b"".join(out))
            replies.flush()
        elif out and not self._closed:  # _write, inline: two calls fewer a batch
            data = b"".join(out)
            self.net_output_bytes += len(data)
            self._transport_write(data)
        # What _after_batch looks at, in one test for the common batch (nothing left over,
        # nothing held, the parser settled: no error, no wait, authenticated).
        if self.close_requested or pending or self._held or not self.parser.settled:
            self._after_batch()

    def hold(self, out: list[bytes], future: asyncio.Future[bytes]) -> int:
        """A reply is not ready: the replies before it (in ``out``) and then it join the reply
        queue, behind whatever it already holds; every later reply queues behind it. Returns
        its cost against the high-water mark: past ``MAX_OUTSTANDING_REPLIES`` the batch
        stops and the client is not read until replies leave."""
        if out:
            self.replies.add_bytes(b"".join(out))
            out.clear()
        elif self._held and self._held[-1] is future:
            return HELD_REPLY_COST  # one more command of the forwarded batch queued last
        self.replies.add_future(future)
        if len(self._held) > MAX_OUTSTANDING_REPLIES:
            return self.server.high_water + 1
        return HELD_REPLY_COST

    def _after_batch(self) -> None:
        if self.close_requested and not self._held:
            self.close()
        elif self._pending:
            if not self.writing_paused and not self._over_limits():
                # Let other clients run before this one's next batch.
                asyncio.get_running_loop().call_soon(self._drain_pending)
        elif self.parser.waiting and not self._closed:
            # The parser stopped before a request that only an authenticated client may send
            # (AUTH came first in the same read): parse it again now that AUTH has run.
            self._run(self.parser.feed(b""), _monotonic())
        elif self.parser.error is not None and not self._held:
            self._protocol_error(self.parser.error)
        elif self._over_limits():
            self._pause_reading()

    def _over_limits(self) -> bool:
        held = self._held
        return bool(held) and (len(held) > MAX_OUTSTANDING_REPLIES
                               or self.replies.held_bytes > self.server.high_water)

    def _after_replies_left(self) -> None:
        """Called by the reply queue after it wrote: the client may be read again."""
        if self._closed:
            return
        if not self._held:
            if self._draining:
                self._half_close()
                return
            if self.close_requested:
                self.close()
                return
            if self.parser.error is not None:
                self._protocol_error(self.parser.error)
                return
            if self._eof and not self._pending:
                self.close()
                return
        if self._pending:
            if not self.writing_paused and not self._over_limits():
                asyncio.get_running_loop().call_soon(self._drain_pending)
        elif not self.writing_paused and not self._over_limits():
            self._resume_reading()

    def _drain_pending(self) -> None:
        if self._closed or self.writing_paused or not self._pending or self._over_limits():
            return
        self._run(self._pending, _monotonic())
        if not self._pending and not self._closed:
            if self._eof and not self._held:
                self.close()
            elif not self.writing_paused and not self._over_limits():
                self._resume_reading()

    def _write(self, out: list[bytes]) -> None:
        if not out or self._closed:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        if self._closed or not data:
            return
        self.net_output_bytes += len(data)
        self._transport_write(data)

    def _protocol_error(self, message: str) -> None:
        self.server.note_protocol_error(self.peer, message)
        self._write_now(error_reply(self, f"ERR Protocol error: {message}"))
        self.close()

    # -- flow control helpers ------------------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self._closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self._closed:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- context API for handlers --------------------------------------------------------------

    def update_gate(self) -> None:
        """Re-evaluate whether requests need the server's gate (called when MULTI starts or
        ends, when the node starts or stops loading, ...)."""
        gate = self.server.gate_for(self)
        self.gate = gate
        # Authentication is one more reason, folded in: the fast path checks one attribute.
        self.gated = gate is not None or not self.authenticated

    def close_after_reply(self) -> None:
        self.close_requested = True

    def set_resp_version(self, version: int) -> None:
        self.resp_version = version
        self.encode = encode_resp3 if version == 3 else encode_resp2

    def set_authenticated(self, value: bool) -> None:
        self.authenticated = value
        self.parser.authenticated = value
        self.update_gate()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._closed = True

    def shut_down(self) -> None:
        """Graceful close at node shutdown: stop taking requests, let the replies of those
        already read leave, then close.

        Closing a socket whose receive buffer still holds data makes the kernel send a reset,
        which loses the replies in flight: so the node half-closes (FIN after the last reply)
        and keeps reading, dropping whatever the client still sends, until the client closes
        or the node's shutdown deadline passes."""
        if self._closed or self.transport is None:
            return
        self._draining = True
        # From now on what the client sends is read and dropped, not run: the fast path
        # has no draining check of its own.
        self.parser = DRAINED
        self._pending.clear()
        self._resume_reading()
        if not self._held:
            self._half_close()

    def _half_close(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def describe(self) -> str:
        """One CLIENT LIST line, with the fields Redis clients and tools read."""
        now = self.server.now
        name = (self.client_name or b"").decode("utf-8", "replace")
        transaction = self.transaction
        # Redis's flags: O monitoring, x in MULTI, d when a watched key changed (EXEC will
        # fail), N none.
        flags = ("O" if self in self.server.monitors else "") + (
            "x" if transaction is not None else "") + (
            "d" if self.server.watches.is_dirty_now(self) else "")
        multi = len(transaction.commands) if transaction is not None else -1
        multi_mem = transaction.queued_bytes if transaction is not None else 0
        return (
            f"id={self.client_id} addr={self.peer} laddr={self.local} fd=-1 name={name} "
            f"age={int(now - self.created_at)} idle={int(now - self.last_interaction)} "
            f"flags={flags or 'N'} db={self.db} sub=0 psub=0 ssub=0 multi={multi} qbuf=0 "
            f"qbuf-free=0 argv-mem=0 multi-mem={multi_mem} rbs=0 rbp=0 obl=0 "
            f"oll={len(self._pending)} omem=0 "
            f"tot-mem=0 events=r cmd=NULL user=default redir=-1 resp={self.resp_version} "
            f"lib-name={self.lib_name.decode('utf-8', 'replace')} "
            f"lib-ver={self.lib_ver.decode('utf-8', 'replace')}"
        )


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address or "")
