"""The RESP server: one ``asyncio.Protocol`` per client connection.

The request path is: bytes -> :class:`RequestParser` -> :class:`CommandTable` lookup ->
handler (a plain method call into the engine) -> reply bytes. Every reply produced from one
read leaves in one ``transport.write``. Nothing here goes through pluggy.

Back-pressure: replies are produced until the unsent bytes pass the high-water mark; the rest
of the parsed commands wait, reading stops, and processing resumes when the transport has
drained (``resume_writing``) or on the next loop turn. A client that pipelines megabytes of
GETs and never reads therefore costs at most about one high-water mark of memory, and never
blocks other clients for longer than one batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from .command_table import CommandTable
from .errors import NOAUTH, CommandError
from .protocol import ProtocolLimits, RequestParser, encode_error, encode_resp2, encode_resp3
from .protocol.encoder import BULK_HEADERS as _BULK_HEADERS
from .replies import OK

if TYPE_CHECKING:
    from .contracts import StorageEngine

log = logging.getLogger("distcache.server")
_monotonic = time.monotonic

MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"
_OK_LINE = b"+OK\r\n"


def unknown_command_error(argv: list[bytes]) -> CommandError:
    """Redis's wording: ``ERR unknown command 'foo', with args beginning with: 'a' 'b' ``."""
    name = argv[0].decode("utf-8", "replace")[:128]
    args = "".join(f"'{a.decode('utf-8', 'replace')[:128]}' " for a in argv[1:])
    return CommandError(f"ERR unknown command '{name}', with args beginning with: {args}")


class ServerStats:
    """Counters INFO reports. The per-request ones (commands, bytes) are kept on each
    connection, where bumping them is one attribute add, and folded in here when it closes;
    :meth:`RespServer.totals` adds the live connections' share."""

    __slots__ = ("connections_received", "commands_processed", "rejected_connections",
                 "net_input_bytes", "net_output_bytes", "protocol_errors")

    def __init__(self) -> None:
        self.connections_received = 0
        self.commands_processed = 0
        self.rejected_connections = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.protocol_errors = 0

    def absorb(self, conn: ClientConnection) -> None:
        self.commands_processed += conn.commands_processed
        self.net_input_bytes += conn.net_input_bytes
        self.net_output_bytes += conn.net_output_bytes
        conn.commands_processed = conn.net_input_bytes = conn.net_output_bytes = 0


class RespServer:
    """State shared by every connection of one node: the command table, the engine, limits
    and the set of live connections."""

    def __init__(self, *, node: Any, engine: StorageEngine, commands: CommandTable,
                 limits: ProtocolLimits, requirepass: str = "", maxclients: int = 10000,
                 idle_timeout_seconds: int = 0,
                 reply_buffer_high_water_bytes: int = 1024 * 1024) -> None:
        self.node = node
        self.engine = engine
        self.commands = commands
        self.limits = limits
        self.requirepass = requirepass
        self.maxclients = maxclients
        self.idle_timeout_seconds = idle_timeout_seconds
        self.high_water = reply_buffer_high_water_bytes
        self.stats = ServerStats()
        self.connections: dict[int, ClientConnection] = {}
        self._next_client_id = 0
        #: Refreshed by :meth:`cron`; ages in CLIENT LIST are whole seconds anyway.
        self.now = time.monotonic()

    def totals(self) -> ServerStats:
        """The counters including live connections' share (for INFO and metrics)."""
        total = ServerStats()
        for name in ServerStats.__slots__:
            setattr(total, name, getattr(self.stats, name))
        for conn in self.connections.values():
            total.commands_processed += conn.commands_processed
            total.net_input_bytes += conn.net_input_bytes
            total.net_output_bytes += conn.net_output_bytes
        return total

    def reset_stats(self) -> None:
        self.stats = ServerStats()
        for conn in self.connections.values():
            conn.commands_processed = conn.net_input_bytes = conn.net_output_bytes = 0

    def protocol_factory(self) -> ClientConnection:
        return ClientConnection(self)

    def next_client_id(self) -> int:
        self._next_client_id += 1
        return self._next_client_id

    def cron(self) -> None:
        """Once a second: refresh the coarse clock and close idle clients."""
        self.now = now = time.monotonic()
        timeout = self.idle_timeout_seconds
        if timeout:
            for conn in list(self.connections.values()):
                if now - conn.last_interaction > timeout and not conn.writing_paused:
                    log.info("closing client id=%d idle for %ds", conn.client_id, timeout)
                    conn.close()

    def close_all(self) -> None:
        for conn in list(self.connections.values()):
            conn.close()


class ClientConnection(asyncio.Protocol):
    """One client. It is also the context command handlers receive (see
    :class:`~distcache_core.contracts.CommandContext`)."""

    # -- per connection ------------------------------------------------------------------------
    transport: asyncio.Transport | None
    peer: str
    client_id: int
    client_name: bytes | None
    lib_name: bytes
    lib_ver: bytes
    authenticated: bool
    resp_version: int
    created_at: float
    last_interaction: float
    # -- flow control --------------------------------------------------------------------------
    writing_paused: bool
    reading_paused: bool

    def __init__(self, server: RespServer) -> None:
        self.server = server
        self.node = server.node
        self.engine = server.engine
        self.transport = None
        self.parser = RequestParser(server.limits)
        self.peer = ""
        self.local = ""
        self.client_id = 0
        self.client_name = None
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = not server.requirepass
        self.parser.authenticated = self.authenticated
        self.resp_version = 2
        self.encode = encode_resp2
        self.created_at = self.last_interaction = server.now
        self.writing_paused = False
        self.reading_paused = False
        self._pending: deque[list[bytes]] = deque()
        self._close_after_reply = False
        self._closed = False
        self._eof = False
        self._lookup = server.commands.lookup
        # The exact-spelling dict lookup, bound once: the common case costs one C call.
        self._command_get = server.commands.by_name.get
        self._transport_write: Any = None
        self.commands_processed = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0

    # -- asyncio.Protocol interface ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        server = self.server
        if len(server.connections) >= server.maxclients:
            server.stats.rejected_connections += 1
            transport.write(MAX_CLIENTS_REPLY)
            transport.close()
            self._closed = True
            return
        server.stats.connections_received += 1
        self._transport_write = transport.write
        self.client_id = server.next_client_id()
        server.connections[self.client_id] = self
        transport.set_write_buffer_limits(high=server.high_water)
        self.peer = _format_address(transport.get_extra_info("peername"))
        self.local = _format_address(transport.get_extra_info("sockname"))

    def data_received(self, data: bytes) -> None:
        self.net_input_bytes += len(data)
        self.last_interaction = _monotonic()
        commands = self.parser.feed(data)
        if self._pending:
            self._pending.extend(commands)
            self._pause_reading()
            return
        if len(commands) == 1:
            # One request a read (clients that wait for each reply): no batching needed.
            reply = self._execute(commands[0])
            self.commands_processed += 1
            self.net_output_bytes += len(reply)
            self._transport_write(reply)
            if self._close_after_reply or self.parser.error is not None:
                self._after_batch()
            return
        self._run(commands)

    def eof_received(self) -> bool | None:
        # Half-closed by the client (`nc -q`, `printf ... | nc`): replies already produced are
        # flushed by close(); nothing more can arrive. Pending commands still run first.
        self._eof = True
        if not self._pending:
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._pending.clear()
        if self.server.connections.pop(self.client_id, None) is not None:
            self.server.stats.absorb(self)

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self._pending:
            self._drain_pending()
        elif not self._closed:
            self._resume_reading()

    # -- request path --------------------------------------------------------------------------

    def _run(self, commands: list[list[bytes]] | deque[list[bytes]]) -> None:
        """Execute ``commands`` and write their replies in one write; stop early at the
        high-water mark and leave the rest pending."""
        execute = self._execute
        command_get = self._command_get
        high_water = self.server.high_water
        out: list[bytes] = []
        append = out.append
        size = 0
        done = 0
        for argv in commands:
            # _execute inlined for the common case (known command, arity fits, client
            # authenticated): ~0.1 us a command in a pipeline.
            command = command_get(argv[0])
            if (command is not None and command.min_args <= len(argv) <= command.max_args
                    and self.authenticated):
                try:
                    reply = command.handler(self, argv)
                    if type(reply) is bytes:
                        # A bulk reply (GET) goes out as header, value and CRLF parts of the
                        # one final join: no encoder call, no copy (-11% instructions a GET).
                        length = len(reply)
                        append(_BULK_HEADERS[length] if length < 1024
                               else b"$%d\r\n" % length)
                        append(reply)
                        size += length
                        encoded = b"\r\n"
                    elif reply is OK:  # SET, MSET...: the literal "OK" is interned
                        encoded = _OK_LINE
                    else:
                        encoded = self.encode(reply)
                except CommandError as exc:
                    encoded = encode_error(exc.message)
                except Exception:
                    encoded = _internal_error(argv)
            else:
                encoded = execute(argv)
            append(encoded)
            done += 1
            if self._close_after_reply:
                break
            size += len(encoded)
            if size > high_water:
                break
        self.commands_processed += done
        if done < len(commands) and not self._close_after_reply:
            if isinstance(commands, deque):
                for _ in range(done):
                    commands.popleft()
            else:
                self._pending.extend(commands[done:])
            self._pause_reading()
        elif isinstance(commands, deque):
            commands.clear()
        self._write(out)
        self._after_batch()

    def _after_batch(self) -> None:
        if self._close_after_reply:
            self.close()
        elif self._pending:
            if not self.writing_paused:
                # Let other clients run before this one's next batch.
                asyncio.get_running_loop().call_soon(self._drain_pending)
        elif self.parser.error is not None:
            self._protocol_error(self.parser.error)

    def _drain_pending(self) -> None:
        if self._closed or self.writing_paused or not self._pending:
            return
        self._run(self._pending)
        if not self._pending and not self._closed:
            if self._eof:
                self.close()
            elif not self.writing_paused:
                self._resume_reading()

    def _execute(self, argv: list[bytes]) -> bytes:
        command = self._command_get(argv[0])
        if command is None:
            command = self._lookup(argv[0])
        try:
            if command is None:
                raise unknown_command_error(argv)
            if not command.min_args <= len(argv) <= command.max_args:
                raise CommandError(
                    f"ERR wrong number of arguments for '{command.name}' command")
            if not self.authenticated and "noauth" not in command.flags:
                raise CommandError(NOAUTH)
            reply = command.handler(self, argv)
            # The two commonest replies skip the encoder's two calls (-1,600 instructions a GET).
            if type(reply) is bytes and len(reply) < 1024:
                return _BULK_HEADERS[len(reply)] + reply + b"\r\n"
            if reply is OK:
                return _OK_LINE
            # Looked up after the handler ran: HELLO switches the encoder for its own reply.
            return self.encode(reply)
        except CommandError as exc:
            return encode_error(exc.message)
        except Exception:
            return _internal_error(argv)

    def _write(self, out: list[bytes]) -> None:
        if not out or self._closed:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        self.net_output_bytes += len(data)
        self._transport_write(data)

    def _protocol_error(self, message: str) -> None:
        self.server.stats.protocol_errors += 1
        log.info("protocol error from %s: %s", self.peer, message)
        self._write([encode_error(f"ERR Protocol error: {message}")])
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

    def close_after_reply(self) -> None:
        self._close_after_reply = True

    def set_resp_version(self, version: int) -> None:
        self.resp_version = version
        self.encode = encode_resp3 if version == 3 else encode_resp2

    def set_authenticated(self, value: bool) -> None:
        self.authenticated = value
        self.parser.authenticated = value

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._closed = True

    def describe(self) -> str:
        """One CLIENT LIST line, with the fields Redis clients and tools read."""
        now = self.server.now
        name = (self.client_name or b"").decode("utf-8", "replace")
        return (
            f"id={self.client_id} addr={self.peer} laddr={self.local} fd=-1 name={name} "
            f"age={int(now - self.created_at)} idle={int(now - self.last_interaction)} "
            f"flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 "
            f"multi-mem=0 rbs=0 rbp=0 obl=0 oll={len(self._pending)} omem=0 tot-mem=0 "
            f"events=r cmd=NULL user=default redir=-1 resp={self.resp_version} "
            f"lib-name={self.lib_name.decode('utf-8', 'replace')} "
            f"lib-ver={self.lib_ver.decode('utf-8', 'replace')}"
        )


def _internal_error(argv: list[bytes]) -> bytes:
    # A handler bug must not take the node or this client down: log it, answer, go on.
    log.exception("command %r failed", argv[0][:64])
    return encode_error("ERR internal error while running the command (see node log)")


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address or "")
