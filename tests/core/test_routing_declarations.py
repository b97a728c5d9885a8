"""Issue 6, section 3: every built-in command declares where it runs in a cluster, and its key
positions match what Redis 7.0's COMMAND reports (tests/data/redis_command_keys.json, taken
from a real redis-server 7.0.15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distcache_core import Command
from distcache_core.command_table import ROUTE_ALL, ROUTE_KEYS, ROUTE_LOCAL
from distcache_core.plugins import Registry, load_plugins

REDIS = json.loads((Path(__file__).parent.parent / "data" / "redis_command_keys.json")
                   .read_text())["commands"]


def builtin_commands() -> dict[str, Command]:
    registry = Registry.collect(load_plugins(()).pm)
    return {name: reg.obj for name, reg in registry.commands.items()
            if reg.plugin.startswith("distcache_core")}


COMMANDS = builtin_commands()


@pytest.mark.parametrize("name", sorted(set(COMMANDS) & set(REDIS)))
def test_key_positions_match_redis(name):
    command, redis = COMMANDS[name], REDIS[name]
    assert (command.first_key, command.last_key, command.key_step) == \
        (redis["first_key"], redis["last_key"], redis["key_step"])
    assert command.arity == redis["arity"]


def test_every_builtin_command_declares_its_route():
    expected = {
        # whole keyspace: every node, each key counted once
        "dbsize": (ROUTE_ALL, "sum_primary"), "keys": (ROUTE_ALL, "keys_union"),
        "scan": (ROUTE_ALL, "scan"), "randomkey": (ROUTE_ALL, "random"),
        "flushall": (ROUTE_ALL, "all_ok"), "flushdb": (ROUTE_ALL, "all_ok"),
        # multi-key: split by owner and merged
        "mget": (ROUTE_KEYS, "concat"), "mset": (ROUTE_KEYS, "all_ok"),
        "del": (ROUTE_KEYS, "sum"), "unlink": (ROUTE_KEYS, "sum"),
        "exists": (ROUTE_KEYS, "sum"), "touch": (ROUTE_KEYS, "sum"),
        # keys that must share an owner
        "rename": (ROUTE_KEYS, "same_owner"), "renamenx": (ROUTE_KEYS, "same_owner"),
        "copy": (ROUTE_KEYS, "same_owner"), "msetnx": (ROUTE_KEYS, "same_owner"),
        # node-local
        "ping": (ROUTE_LOCAL, ""), "info": (ROUTE_LOCAL, ""), "client": (ROUTE_LOCAL, ""),
        "get": (ROUTE_KEYS, ""), "set": (ROUTE_KEYS, ""),
    }
    for name, (route, merge) in expected.items():
        assert (COMMANDS[name].route, COMMANDS[name].merge) == (route, merge), name
    for name, command in COMMANDS.items():
        multi_key = command.first_key and (command.last_key != command.first_key)
        if command.route == ROUTE_KEYS and multi_key:
            assert command.merge, f"{name}: a multi-key command must say how a split merges"


def test_a_command_that_declares_only_keys_routes_by_them():
    def handler(conn, argv):
        return None

    assert Command(name="x", handler=handler, arity=2, first_key=1, last_key=1,
                   key_step=1).route == ROUTE_KEYS
    assert Command(name="y", handler=handler, arity=1).route == ROUTE_LOCAL
    with pytest.raises(ValueError, match="merge 'sum' does not apply to route 'local'"):
        Command(name="z", handler=handler, arity=1, merge="sum")
