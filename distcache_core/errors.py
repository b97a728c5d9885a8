"""The exception hierarchy.

A bad request becomes a Redis-style error reply (``CommandError``), a bad configuration names the
key path, the value and what was expected (``ConfigError``); only the CLI turns an error into an
exit code.
"""

from __future__ import annotations


class DistcacheError(Exception):
    """Base class of every error DistCache raises on purpose."""


class ConfigError(DistcacheError):
    """A configuration file, environment variable or flag has a bad key, type or value."""


class PluginError(DistcacheError):
    """A plugin failed to import, or two plugins registered the same name."""


class ProtocolError(DistcacheError):
    """The client broke RESP framing; the reply is sent and the connection is closed.

    The message is the text after ``-ERR Protocol error: `` as Redis words it.
    """


class CommandError(DistcacheError):
    """A command failed; the message is the whole Redis error line without the leading ``-``.

    The first word is the error code clients switch on (``ERR``, ``WRONGTYPE``, ``NOAUTH``...).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Error lines as the Redis command reference words them, shared by commands and engines.
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
SYNTAX = "ERR syntax error"
NO_SUCH_KEY = "ERR no such key"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


class NotIntegerError(CommandError):
    """The stored value or an argument is not a 64-bit integer."""

    def __init__(self) -> None:
        super().__init__(NOT_INTEGER)


class OverflowCommandError(CommandError):
    """An increment would leave the signed 64-bit range."""

    def __init__(self) -> None:
        super().__init__(OVERFLOW)


class PersistenceError(DistcacheError):
    """Persistence cannot go on: the data dir is unusable or locked, or the files on disk
    cannot be recovered without the operator. The node refuses to start with this message."""


class CorruptLogError(PersistenceError):
    """A log is damaged before its tail: replaying past the damage could apply later writes
    without the earlier ones, so recovery stops and names the file, the offset and the repair
    command."""

    def __init__(self, path: str, offset: int, reason: str, repair_hint: str) -> None:
        super().__init__(f"{path}: corrupt record at offset {offset}: {reason}; the node will "
                         f"not start. Inspect it with `{repair_hint}`; `{repair_hint} --repair` "
                         "keeps the records before it (a backup is kept)")
        self.path = path
        self.offset = offset
        self.reason = reason


class CorruptSnapshotError(PersistenceError):
    """A snapshot fails its checksum or structure; recovery reports it and uses an older one."""


class PersistenceWriteError(DistcacheError):
    """Writing or syncing a persistence file failed (ENOSPC, EIO). ``str()`` is the error line
    that write commands get while it lasts, in Redis's ``-MISCONF`` wording."""
