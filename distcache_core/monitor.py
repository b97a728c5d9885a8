"""MONITOR: every command the node runs, streamed to the clients that asked, as Redis 7.0 does.

Each line is ``+<unix seconds>.<microseconds> [<db> <client address>] "arg" "arg" ...``, fed
after the command ran (so SELECT shows its new database), with arguments quoted as Redis's
``sdscatrepr`` does and AUTH/HELLO passwords shown as ``"(redacted)"``. Not shown, as in Redis:
commands refused before they ran (unknown, wrong arity, NOAUTH), admin commands (CONFIG,
DEBUG, SHUTDOWN...), and commands queued by MULTI, which appear when EXEC runs them, followed
by EXEC itself.

Cost: nothing while no client monitors. The first MONITOR adds a per-connection gate
(``RespServer.conn_gate_providers``) that every connection's requests then pass, and the last
monitor leaving removes it. While a node gate is up (loading, a busy script), requests pass that
gate instead and are not shown.

A monitor that does not read its stream is closed once ``MONITOR_BACKLOG_LIMIT_BYTES`` wait
unsent (Redis closes clients past their output-buffer limit), so it cannot grow the node.
A monitoring client may still send PING, QUIT and RESET (which ends monitoring); commands that
read or write the keyspace are refused as Redis refuses them (``Replica can't interact with
the keyspace``: Redis treats monitors as replicas).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from . import dispatch, transactions
from .errors import CommandError

log = logging.getLogger("distcache.monitor")

#: Unsent bytes a monitor may fall behind by before it is closed.
MONITOR_BACKLOG_LIMIT_BYTES: Final = 64 * 1024 * 1024
KEYSPACE_REFUSED: Final = "ERR Replica can't interact with the keyspace"
#: Commands whose arguments after the name are passwords.
_REDACT_ALL = frozenset({b"auth"})
_PRINTABLE = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}
_ESCAPES = {ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r",
            ord("\t"): b"\\t", 0x07: b"\\a", 0x08: b"\\b"}


def quote(arg: bytes) -> bytes:
    """``"arg"`` as Redis's ``sdscatrepr`` writes it."""
    if all(byte in _PRINTABLE for byte in arg):
        return b'"' + arg + b'"'
    out = bytearray(b'"')
    for byte in arg:
        if byte in _PRINTABLE:
            out.append(byte)
        else:
            out += _ESCAPES.get(byte) or b"\\x%02x" % byte
    out += b'"'
    return bytes(out)


def redacted(argv: Sequence[bytes]) -> list[bytes]:
    """The arguments as a monitor sees them: AUTH's and HELLO ... AUTH's credentials hidden."""
    name = argv[0].lower()
    if name in _REDACT_ALL:
        return [argv[0]] + [b"(redacted)"] * (len(argv) - 1)
    if name == b"hello":
        shown = list(argv)
        for index in range(2, len(shown) - 2):
            if shown[index].lower() == b"auth":
                shown[index + 1] = shown[index + 2] = b"(redacted)"
        return shown
    return list(argv)


def shown(command: Any, argv: Sequence[bytes]) -> bool:
    """Whether monitors see the command: not admin ones (CONFIG SET, DEBUG), a container's
    admin subcommands included (Redis hides them as too dangerous to show)."""
    if "admin" in command.flags:
        return False
    if command.subcommands and len(argv) > 1:
        wanted = argv[1].lower()
        for subcommand in command.subcommands:
            if subcommand.name.encode() == wanted:
                return "admin" not in subcommand.flags
    return True


def format_line(db: int, address: str, argv: Sequence[bytes], now_ns: int) -> bytes:
    seconds, micros = divmod(now_ns // 1000, 1_000_000)
    args = b" ".join(quote(arg) for arg in redacted(argv))
    return b"+%d.%06d [%d %s] %s\r\n" % (seconds, micros, db, address.encode(), args)


class Monitors:
    """The monitoring clients of one node (``server.monitors``); false while there are none."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._clients: set[Any] = set()
        server.conn_gate_providers.insert(0, self._provider)

    def __bool__(self) -> bool:
        return bool(self._clients)

    def __contains__(self, conn: Any) -> bool:
        return conn in self._clients

    def add(self, conn: Any) -> None:
        first = not self._clients
        self._clients.add(conn)
        if first:
            self._regate()

    def discard(self, conn: Any) -> None:
        if conn in self._clients:
            self._clients.discard(conn)
            if not self._clients:
                self._regate()

    def feed(self, conn: Any, argv: Sequence[bytes], skip: Any = None) -> bytes:
        """Show one command that ``conn`` ran to every monitor but ``skip``; the line."""
        line = format_line(conn.db, conn.peer, argv, time.time_ns())
        for monitor in list(self._clients):
            if monitor is skip:
                continue
            transport = monitor.transport
            if monitor.closed or transport is None:
                self._clients.discard(monitor)
                continue
            if transport.get_write_buffer_size() > MONITOR_BACKLOG_LIMIT_BYTES:
                log.warning("closing monitor id=%d: %d bytes unsent", monitor.client_id,
                            transport.get_write_buffer_size())
                self._clients.discard(monitor)
                monitor.close()
                continue
            if monitor.replies:
                monitor.replies.add_bytes(line)  # behind its own replies still held
                monitor.replies.flush()
            else:
                monitor._write_now(line)
        if not self._clients:
            self._regate()
        return line

    # -- the gate --------------------------------------------------------------------------------

    def _provider(self, conn: Any) -> Any:
        return self._gate if self._clients else None

    def _gate(self, conn: Any, command: Any, argv: list[bytes]) -> Any:
        if conn in self._clients and (command.flags & _KEYSPACE_FLAGS):
            raise CommandError(KEYSPACE_REFUSED)
        queued = conn.transaction is not None and command.name not in transactions.RUN_AT_ONCE
        reply = dispatch.proceed(conn, command, argv)
        if queued or not self._clients or not shown(command, argv):
            return reply
        if conn in self._clients and type(reply) is bytes:
            # A monitor's own command: its reply first, then its line, as Redis writes them.
            return reply + self.feed(conn, argv, skip=conn)
        self.feed(conn, argv)
        return reply

    def _regate(self) -> None:
        for conn in self._server.connections.values():
            conn.update_gate()


_KEYSPACE_FLAGS: Final = frozenset({"write", "readonly", "may_replicate"})
