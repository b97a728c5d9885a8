"""The keys of a request as the router sees them: by the command's key positions, or, for a
command whose keys move with its arguments (EVAL's numkeys, a plugin's own), by its
``find_keys``."""

from __future__ import annotations

from collections.abc import Callable

from ..command_table import Command

KeysOf = Callable[[list[bytes]], list[bytes]]


def movable_keys(command: Command) -> KeysOf | None:
    """How to find the keys of a command whose keys move with its arguments: its
    ``find_keys``, when it declares no key positions or says ``movablekeys``; None for every
    other command (SET's ``find_keys`` only tells the flags of its fixed key)."""
    find_keys = command.find_keys
    if find_keys is None or (command.first_key and "movablekeys" not in command.flags):
        return None

    def keys_of(argv: list[bytes]) -> list[bytes]:
        return [argv[position] for position, _ in find_keys(argv)]

    return keys_of


def request_keys(command: Command, argv: list[bytes]) -> list[bytes]:
    """The keys ``argv`` names; none when its arguments cannot be read (the command reports
    them itself)."""
    keys_of = movable_keys(command)
    if keys_of is None:
        return [argv[position] for position in command.key_positions(len(argv))]
    try:
        return keys_of(argv)
    except (ValueError, IndexError):
        return []
