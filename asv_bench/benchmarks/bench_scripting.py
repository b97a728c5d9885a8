"""Lua scripting, in process: what a small EVAL costs besides its round trip.

``time_sandbox_*`` run a compiled script in the Lua sandbox on the calling thread (the Lua
call, the KEYS/ARGV tables, the reply conversion, and for the second one a ``redis.call``
through the command table into the engine). ``time_runner_*`` add what a script costs on a
node: the hand-over to the script thread and back (two thread switches), which is what lets
the node answer ``-BUSY`` to others while a script runs past its time limit. The difference
between the two is the price of that design.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distcache_core.command_table import CommandTable
from distcache_core.plugins import Registry, load_plugins
from distcache_core.scripting.calls import Invocation, check, execute, lookup
from distcache_core.scripting.lua import LuaSandbox
from distcache_core.scripting.runner import ScriptRunner
from distcache_plugins.lru_ttl import LruTtlEngine


class _Client:
    """The attributes a command handler reads from its connection."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.node = None
        self.server = None
        self.client_id = 1
        self.client_name = None
        self.resp_version = 2


class Scripting:
    def setup(self) -> None:
        registry = Registry.collect(load_plugins(autoload=False).pm)
        table = CommandTable(r.obj for r in registry.commands.values())
        engine = LruTtlEngine()
        engine.set(b"k", b"v" * 32)
        self.invocation = Invocation(_Client(engine), "bench", read_only=False)
        commands = table.commands

        def run_command(argv: tuple[bytes, ...]) -> Any:
            command = check(lookup(commands, argv[0]), argv, self.invocation)
            return execute(command, argv, self.invocation)

        self.run_command = run_command
        self.sandbox = LuaSandbox()
        self.sandbox.call = run_command
        self.return_one = self.sandbox.compile(b"return 1")
        self.one_get = self.sandbox.compile(b"return redis.call('GET', KEYS[1])")
        self.loop = asyncio.new_event_loop()
        self.runner: ScriptRunner | None = None

    def teardown(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.loop.close()

    def time_sandbox_return_one(self) -> None:
        self.sandbox.run(self.return_one, "bench", [], [])

    def time_sandbox_one_redis_call(self) -> None:
        self.sandbox.run(self.one_get, "bench", [b"k"], [])

    def _on_runner(self, function: Any, keys: list[bytes]) -> Any:
        async def run() -> Any:
            if self.runner is None:
                self.runner = ScriptRunner(self.loop, self.sandbox, on_busy=_nothing,
                                           on_idle=_nothing)
                self.sandbox.call = self.runner.call
            return self.runner.run(self.invocation, function, keys, [], 5000, self.run_command)
        return self.loop.run_until_complete(run())

    def time_runner_return_one(self) -> None:
        self._on_runner(self.return_one, [])

    def time_runner_one_redis_call(self) -> None:
        self._on_runner(self.one_get, [b"k"])


def _nothing() -> None:
    pass
