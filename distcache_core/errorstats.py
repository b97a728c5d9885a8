"""Error replies counted by code as Redis counts them: INFO's ``errorstats`` section
(``errorstat_ERR:count=3``), next to ``total_error_replies``.

The count is taken where an error reply is encoded (``dispatch.error_reply``), so every error a
client receives counts once, whichever path produced it (an unknown command, a wrong arity,
NOAUTH, a handler's ``CommandError``, a protocol error). Success replies never come here: the
request path pays nothing for it.
"""

from __future__ import annotations

__all__ = ["ErrorStats", "error_code"]

#: Redis tracks at most this many distinct error codes (``ERROR_STATS_NUMBER``); past it, new
#: codes still count in ``total_error_replies`` but get no line of their own.
MAX_ERROR_CODES = 128
#: Redis looks for the code's end (the first space) within this many characters.
_CODE_SEARCH_CHARS = 32


def error_code(message: str) -> str:
    """The code Redis files an error line under: its first word when a space ends it within
    32 characters (``WRONGTYPE``, ``NOAUTH``), else ``ERR`` (``afterErrorReply``)."""
    space = message.find(" ", 0, _CODE_SEARCH_CHARS)
    return message[:space] if space > 0 else "ERR"


class ErrorStats:
    """The error counters of one node (one instance, owned by the server)."""

    __slots__ = ("by_code", "total")

    def __init__(self) -> None:
        #: Every error reply counted (the server's ``total_error_replies`` counts the same).
        self.total = 0
        self.by_code: dict[str, int] = {}

    def count(self, message: str) -> None:
        """Count one error reply; ``message`` is the line without ``-`` (``ERR syntax
        error``)."""
        self.total += 1
        code = error_code(message)
        by_code = self.by_code
        if code in by_code:
            by_code[code] += 1
        elif len(by_code) < MAX_ERROR_CODES:
            by_code[code] = 1

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.total = 0
        self.by_code.clear()

    def info_fields(self) -> list[tuple[str, str]]:
        """The ``errorstats`` section's fields, in Redis's order (codes sorted bytewise, as
        its radix tree walks them)."""
        return [(f"errorstat_{code}", f"count={self.by_code[code]}")
                for code in sorted(self.by_code, key=lambda c: c.encode("utf-8",
                                                                        "surrogateescape"))]
