"""Busy mode: while a script runs past ``node.lua_time_limit_ms``, clients get ``-BUSY`` for
every command that Redis does not flag ``allow_busy`` (AUTH, HELLO, QUIT, RESET, MULTI,
DISCARD, WATCH, UNWATCH, SCRIPT KILL), and SHUTDOWN only with NOSAVE.

It is a node gate of the request path (``RespServer.set_node_gate``): set when the script
passes the limit, removed when it ends, so requests pay nothing while no script is busy, and
the checks Redis makes before the busy one (unknown command, arity, authentication) still come
first.
"""

from __future__ import annotations

from typing import Any, Final

from .. import transactions
from ..command_table import Command
from ..dispatch import error_reply, proceed
from .calls import subcommand_flags

BUSY: Final = ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
               "SHUTDOWN NOSAVE.")
GATE_NAME: Final = "busy-script"


def allowed_while_busy(command: Command, argv: list[bytes]) -> bool:
    if command.name == "shutdown":
        # SHUTDOWN is allow_busy, but only SHUTDOWN NOSAVE goes through (shutdownCommand).
        return any(arg.lower() == b"nosave" for arg in argv[1:])
    return "allow_busy" in command.flags or "allow_busy" in subcommand_flags(command, argv)


def busy_gate(conn: Any, command: Command, argv: list[bytes]) -> Any:
    """The gate every request passes while a script is busy. A refusal is Redis's
    ``rejectCommand``: counted as a rejected call and an error (``errorstat_BUSY``), and
    inside MULTI it flags the transaction, so its EXEC aborts; a refused EXEC discards it
    (``-EXECABORT ... because of: BUSY ...``). The check comes before queueing: a client in
    MULTI gets -BUSY, not +QUEUED."""
    if allowed_while_busy(command, argv):
        return proceed(conn, command, argv)
    if command.name == "shutdown":
        # SHUTDOWN runs (it is allow-busy) and fails: a failed call, not a rejected one.
        command.stats.calls += 1
        command.stats.failed += 1
        return error_reply(conn, BUSY)
    command.stats.rejected += 1
    return error_reply(conn, transactions.refused(conn, command, BUSY))


class BusyGate:
    """Turns busy mode on and off for one node's RESP server."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self.active = False

    def enter(self) -> None:
        if not self.active:
            self.active = True
            self._server.set_node_gate(GATE_NAME, busy_gate)

    def leave(self) -> None:
        if self.active:
            self.active = False
            self._server.set_node_gate(GATE_NAME, None)
