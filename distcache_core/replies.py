"""Reply values a command handler may return, and how each is encoded.

=================  ==========================  ===========================
handler returns    RESP2                       RESP3 (after HELLO 3)
=================  ==========================  ===========================
``bytes``          bulk string ``$``           bulk string
``None``           null bulk ``$-1``           null ``_``
``int``            integer ``:``               integer
``bool``           integer ``:1``/``:0``       boolean ``#t``/``#f``
``str``            simple string ``+``         simple string
``float``          bulk string                 double ``,``
``list``/tuple     array ``*``                 array
``dict``           flat array of pairs         map ``%``
``SetReply``       array ``*``                 set ``~``
``VerbatimReply``  bulk string                 verbatim string ``=`` (``txt:``)
``NULL_ARRAY``     ``*-1``                     null ``_``
``ErrorReply``     error ``-`` (in arrays)     error
``NO_REPLY``       nothing                     nothing
``RawReply``       its bytes, as they are      its bytes, as they are
=================  ==========================  ===========================

A ``str`` is a simple string everywhere except as a ``dict`` key, where it is a bulk string as
Redis sends every map key (HELLO, CONFIG GET, COMMAND DOCS).

Top-level errors are raised as :class:`~distcache_core.errors.CommandError` instead.
"""

from __future__ import annotations

from typing import Final


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY: Final = _NullArray()


class ErrorReply(str):
    """An error line inside an array reply (for example in EXEC-like multi-replies)."""


class SetReply(tuple):  # type: ignore[type-arg]
    """An ordered set: RESP3's ``~`` (command flags, ACL categories), an array in RESP2.

    A tuple, not a ``set``, so the reply's order is fixed and replies compare byte for byte.
    """

    __slots__ = ()


class VerbatimReply(bytes):
    """Text Redis sends as a verbatim string in RESP3 (INFO, CLIENT LIST, CLIENT INFO); a
    bulk string in RESP2."""

    __slots__ = ()


class RawReply(bytes):
    """A reply already encoded for this connection, written as it is (EXEC: the array of
    the queued commands' replies, each encoded when it ran)."""

    __slots__ = ()


OK: Final = "OK"


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


#: Nothing at all is written (SHUTDOWN closes the connection without a reply, as Redis does).
NO_REPLY: Final = _NoReply()
