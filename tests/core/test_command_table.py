"""Command metadata: flags, ACL categories as Redis derives them, subcommands and their
dispatch with Redis's errors."""

from __future__ import annotations

import pytest

from distcache_core import CommandError
from distcache_core.command_table import Command, Subcommand, categories_for, subcommand_handler


def handler(conn, argv):
    return argv


def test_categories_follow_redis_rules() -> None:
    assert categories_for(frozenset({"readonly", "fast"}), frozenset(), "string") == (
        "read", "string", "fast")
    assert categories_for(frozenset({"write"}), frozenset(), "generic") == (
        "keyspace", "write", "slow")
    assert categories_for(frozenset({"admin"}), frozenset(), "server") == (
        "admin", "slow", "dangerous")
    # Explicit categories replace the group's; the flags still add theirs.
    assert categories_for(frozenset({"readonly"}), frozenset({"keyspace", "dangerous"}),
                          "generic") == ("keyspace", "read", "slow", "dangerous")


def test_unknown_flags_and_categories_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown flags"):
        Command(name="x", handler=handler, arity=1, flags={"speedy"})
    with pytest.raises(ValueError, match="unknown ACL categories"):
        Command(name="x", handler=handler, arity=1, acl_categories={"misc"})
    with pytest.raises(ValueError, match="arity counts the container"):
        Subcommand(name="x", arity=1)


def test_bare_subcommand_names_still_work() -> None:
    command = Command(name="script", handler=handler, arity=-2, subcommands=("load", "FLUSH"))
    assert [s.name for s in command.subcommands] == ["load", "flush"]
    assert command.subcommands[0].arity == -2


def test_subcommand_handler_checks_name_and_arity() -> None:
    subs = (Subcommand(name="id", arity=2, handler=lambda conn, argv: 7),
            Subcommand(name="kill", arity=-3, handler=lambda conn, argv: len(argv)),
            Subcommand(name="documented-only"))
    run = subcommand_handler("client", subs)
    assert run(None, [b"CLIENT", b"ID"]) == 7
    assert run(None, [b"client", b"Kill", b"a", b"b"]) == 4
    with pytest.raises(CommandError) as info:
        run(None, [b"CLIENT", b"ID", b"x"])
    assert info.value.message == "ERR wrong number of arguments for 'client|id' command"
    with pytest.raises(CommandError) as info:
        run(None, [b"CLIENT", b"nope"])
    assert info.value.message == "ERR unknown subcommand 'nope'. Try CLIENT HELP."
    with pytest.raises(CommandError):  # a subcommand without a handler is not dispatched
        run(None, [b"CLIENT", b"documented-only"])
