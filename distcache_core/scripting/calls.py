"""``redis.call`` from a script: the checks Redis makes (``scriptCall`` in ``src/script.c``),
then the command's own handler, through the node's command table like any client's command.

A script's commands run on a :class:`ScriptClient`, Redis's fake Lua client: the caller's
identity and database, RESP2 replies (``redis.setresp`` changes how they reach the script, not
what handlers see), and no socket.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..command_table import Command
from ..errors import CommandError

UNKNOWN: Final = "ERR Unknown Redis command called from script"
ARITY: Final = "ERR Wrong number of args calling Redis command from script"
NOSCRIPT: Final = "ERR This Redis command is not allowed from script"
READ_ONLY: Final = "ERR Write commands are not allowed from read-only scripts."



class ScriptClient:
    """The connection a script's commands run on: the caller's, seen through a script.

    Handlers read ``engine``, ``node``, ``server`` and the client's identity as usual; the
    attributes a handler may change (the selected database, the RESP version) are the
    script's own, so SELECT inside a script leaves the caller's database alone, as in Redis 7.
    Anything else is read from the caller.
    """

    def __init__(self, caller: Any) -> None:
        self._caller = caller
        self.engine = caller.engine
        self.node = caller.node
        self.server = caller.server
        self.client_id = caller.client_id
        self.client_name = caller.client_name
        self.authenticated = True
        self.resp_version = 2
        if hasattr(caller, "db"):
            self.db = caller.db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._caller, name)

    def close_after_reply(self) -> None:
        """QUIT is refused in scripts; nothing a script runs may close its caller."""

    def set_resp_version(self, version: int) -> None:
        self.resp_version = version


class Invocation:
    """One running script: its client, its flags and what it has done so far."""

    def __init__(self, caller: Any, sha: str, *, read_only: bool) -> None:
        self.client = ScriptClient(caller)
        self.caller_resp: int = getattr(caller, "resp_version", 2)
        self.sha = sha
        self.read_only = read_only
        #: A write command ran: SCRIPT KILL must refuse (UNKILLABLE), as in Redis.
        self.wrote = False
        self.kill_requested = False


def lookup(commands: Mapping[str, Command], name: bytes) -> Command | None:
    return commands.get(name.decode("latin-1").lower())


def subcommand_flags(command: Command, argv: Sequence[bytes]) -> frozenset[str]:
    """The flags of the subcommand ``argv`` names, for a container (CLIENT, CONFIG, SCRIPT):
    Redis flags ``noscript`` and ``allow_busy`` per subcommand."""
    if command.subcommands and len(argv) > 1:
        name = argv[1].decode("latin-1").lower()
        for subcommand in command.subcommands:
            if subcommand.name == name:
                return subcommand.flags
    return frozenset()


def check(command: Command | None, argv: tuple[bytes, ...], invocation: Invocation) -> Command:
    """The command to run for ``argv``, or the error Redis gives a script for it."""
    if command is None:
        raise CommandError(UNKNOWN)
    if not command.min_args <= len(argv) <= command.max_args:
        raise CommandError(ARITY)
    if "noscript" in command.flags or "noscript" in subcommand_flags(command, argv):
        raise CommandError(NOSCRIPT)
    if command.is_write:
        if invocation.read_only:
            raise CommandError(READ_ONLY)
        refusal = _write_refusal(invocation.client)
        if refusal is not None:
            raise CommandError(refusal)
    if inspect.iscoroutinefunction(command.handler):
        raise CommandError(_asynchronous(command))
    return command


def _write_refusal(client: Any) -> str | None:
    """Why writes are refused now (a persistence file cannot be written: ``-MISCONF``), as
    Redis's ``scriptVerifyWriteCommandAllow`` refuses a script's writes; None when they run."""
    persistence = getattr(getattr(client, "node", None), "persistence", None)
    status = getattr(persistence, "status", None)
    return getattr(status, "write_error", None)


def execute(command: Command, argv: tuple[bytes, ...], invocation: Invocation) -> Any:
    """Run a checked command for the script; its reply value."""
    if command.is_write:
        invocation.wrote = True  # before it runs, as Redis marks the script dirty
    reply = command.handler(invocation.client, list(argv))
    if inspect.isawaitable(reply):
        # A handler that answers later (a forwarded command) cannot be part of an atomic
        # script; refuse it rather than block the script on the event loop it holds.
        close = getattr(reply, "close", None) or getattr(reply, "cancel", None)
        if close is not None:
            close()
        raise CommandError(_asynchronous(command))
    return reply


def _asynchronous(command: Command) -> str:
    return (f"ERR '{command.name}' cannot be called from a script: its reply is asynchronous "
            "(it waits on another node or on the disk)")
