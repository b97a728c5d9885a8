"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD EXISTS FLUSH KILL HELP), with Redis
7.0's replies and error lines (``src/eval.c``).

Each node has one :class:`Scripting`: its Lua sandbox, the script cache (by SHA1 of the body,
shared by EVAL and EVALSHA as in Redis) and the runner. It is made on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from typing import Any, Final

import attrs

from ..builtin.arguments import parse_int
from ..errors import CommandError
from ..replies import OK
from .busy import BusyGate
from .calls import Invocation, check, execute, lookup
from .lua import LuaSandbox
from .runner import ScriptRunner

NOSCRIPT: Final = "NOSCRIPT No matching script. Please use EVAL."
NOTBUSY: Final = "NOTBUSY No scripts in execution right now."
UNKILLABLE: Final = ("UNKILLABLE Sorry the script already executed write commands against the "
                     "dataset. You can either wait the script termination or kill the server "
                     "in a hard way using the SHUTDOWN NOSAVE command.")
DEFAULT_TIME_LIMIT_MS: Final = 5000
SHEBANG_FLAGS: Final = frozenset({"no-writes", "allow-oom", "allow-stale", "no-cluster",
                                  "allow-cross-slot-keys"})

SCRIPT_HELP: Final = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]
@attrs.frozen
class Script:
    function: Any
    #: ``#!lua flags=no-writes``: the script may not write.
    no_writes: bool = False


def sha1hex(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()


def parse_shebang(body: bytes) -> tuple[bytes, frozenset[str]]:
    """``evalExtractShebangFlags``: the body to compile (the ``#!`` line turned into a comment,
    so line numbers stay) and the flags, or Redis's error for a bad shebang."""
    if not body.startswith(b"#!"):
        return body, frozenset()
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = body[:end].decode("utf-8", "surrogateescape").split()
    if not parts:
        raise CommandError("ERR Invalid engine in script shebang")
    if parts[0].lower() != "#!lua":
        raise CommandError(f"ERR Unexpected engine in script shebang: {parts[0]}")
    flags: set[str] = set()
    for part in parts[1:]:
        if part[:6].lower() != "flags=":
            raise CommandError(f"ERR Unknown lua shebang option: {part}")
        for flag in part[6:].split(","):
            if not flag:
                continue
            if flag not in SHEBANG_FLAGS:
                raise CommandError(f"ERR Unexpected flag in script shebang: {flag}")
            flags.add(flag)
    return b"--" + body[2:], frozenset(flags)


class Scripting:
    """One node's scripts: the sandbox, the cache and the runner."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.commands = server.commands.commands  # by name
        self.sandbox = self._new_sandbox()
        self.scripts: dict[str, Script] = {}
        self.busy_gate = BusyGate(server)
        self._runner: ScriptRunner | None = None

    def _new_sandbox(self) -> LuaSandbox:
        sandbox = LuaSandbox()
        sandbox.acl_known = lambda name: lookup(self.commands, name) is not None
        return sandbox

    @property
    def runner_if_started(self) -> ScriptRunner | None:
        return self._runner

    @property
    def runner(self) -> ScriptRunner:
        if self._runner is None:
            self._runner = ScriptRunner(asyncio.get_running_loop(), self.sandbox,
                                        on_busy=self.busy_gate.enter,
                                        on_idle=self.busy_gate.leave,
                                        durability_barrier=self._durability_barrier)
            self.sandbox.call = self._runner.call
        return self._runner

    def _durability_barrier(self) -> Any:
        server = self.server
        if not getattr(server, "barrier_enabled", False):
            return None
        return server.node.durability_barrier()

    def load(self, body: bytes) -> str:
        """Compile and cache a script; its SHA1."""
        sha = sha1hex(body)
        if sha not in self.scripts:
            source, flags = parse_shebang(body)
            self.scripts[sha] = Script(self.sandbox.compile(source), "no-writes" in flags)
        return sha

    def flush(self) -> None:
        """SCRIPT FLUSH: forget every script and start from a fresh Lua state, as Redis does."""
        self.scripts.clear()
        self.sandbox = self._new_sandbox()
        if self._runner is not None:
            self._runner.stop()
            self._runner = None

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
            self._runner = None

    def evaluate(self, conn: Any, sha: str, argv: list[bytes], numkeys: int,
                 read_only: bool) -> Any:
        script = self.scripts[sha]
        invocation = Invocation(conn, sha, read_only=read_only or script.no_writes)
        commands = self.commands

        def run_command(call_argv: tuple[bytes, ...]) -> Any:
            command = check(lookup(commands, call_argv[0]), call_argv, invocation)
            return execute(command, call_argv, invocation)

        return self.runner.run(invocation, script.function, argv[3:3 + numkeys],
                               argv[3 + numkeys:], _time_limit_ms(conn), run_command)


_STATES: weakref.WeakKeyDictionary[Any, Scripting] = weakref.WeakKeyDictionary()


def scripting_of(server: Any) -> Scripting:
    """The scripting state of the node that ``server`` (its RESP server) belongs to."""
    state = _STATES.get(server)
    if state is None:
        state = _STATES[server] = Scripting(server)
    return state


def stop_scripting(server: Any) -> None:
    state = _STATES.pop(server, None)
    if state is not None:
        state.stop()


def _time_limit_ms(conn: Any) -> int:
    try:
        return int(conn.node.config.node.lua_time_limit_ms)
    except AttributeError:
        return DEFAULT_TIME_LIMIT_MS


def _numkeys(argv: list[bytes]) -> int:
    numkeys = parse_int(argv[2])
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return numkeys


# --- handlers ---------------------------------------------------------------------------------


def _eval(conn: Any, argv: list[bytes], read_only: bool) -> Any:
    numkeys = _numkeys(argv)
    state = scripting_of(conn.server)
    sha = state.load(argv[1])
    return state.evaluate(conn, sha, argv, numkeys, read_only)


def _evalsha(conn: Any, argv: list[bytes], read_only: bool) -> Any:
    if len(argv[1]) != 40:
        raise CommandError(NOSCRIPT)
    numkeys = _numkeys(argv)
    state = scripting_of(conn.server)
    sha = argv[1].decode("latin-1").lower()
    if sha not in state.scripts:
        raise CommandError(NOSCRIPT)
    return state.evaluate(conn, sha, argv, numkeys, read_only)


def eval_(conn: Any, argv: list[bytes]) -> Any:
    return _eval(conn, argv, read_only=False)


def eval_ro(conn: Any, argv: list[bytes]) -> Any:
    return _eval(conn, argv, read_only=True)


def evalsha(conn: Any, argv: list[bytes]) -> Any:
    return _evalsha(conn, argv, read_only=False)


def evalsha_ro(conn: Any, argv: list[bytes]) -> Any:
    return _evalsha(conn, argv, read_only=True)


def script_load(conn: Any, argv: list[bytes]) -> bytes:
    return scripting_of(conn.server).load(argv[2]).encode()


def script_exists(conn: Any, argv: list[bytes]) -> list[int]:
    scripts = scripting_of(conn.server).scripts
    return [int(sha.decode("latin-1").lower() in scripts) for sha in argv[2:]]


def script_flush(conn: Any, argv: list[bytes]) -> str:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    scripting_of(conn.server).flush()
    return OK


def script_kill(conn: Any, argv: list[bytes]) -> str:
    runner = scripting_of(conn.server).runner_if_started
    running = runner.running if runner is not None else None
    if runner is None or running is None:
        raise CommandError(NOTBUSY)
    if running.wrote:
        raise CommandError(UNKILLABLE)
    runner.kill()
    return OK


def script_debug(conn: Any, argv: list[bytes]) -> Any:
    mode = argv[2].lower()
    if mode == b"no":
        return OK  # debugging is always off
    if mode in (b"yes", b"sync"):
        raise CommandError("ERR SCRIPT DEBUG YES/SYNC is not supported: DistCache has no Lua "
                           "debugger")
    raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")


def script_help(conn: Any, argv: list[bytes]) -> list[str]:
    return SCRIPT_HELP
