"""The slow log: the latest commands that took longer than a threshold (Redis's SLOWLOG).

Entries are kept as Redis keeps them (``slowlog.c``): at most 32 arguments, the last one
replaced by ``... (N more arguments)``, and each argument cut at 128 bytes with
``... (N more bytes)``. Commands that carry secrets are never logged (AUTH, HELLO) or have the
secret redacted (CONFIG SET requirepass), so the log is safe to show on the dashboard.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import attrs

MAX_ARGS = 32
MAX_ARG_BYTES = 128
#: Commands whose arguments may hold a password: not logged at all (Redis flags them
#: ``no-slowlog`` or redacts them).
SKIPPED = frozenset({b"auth", b"hello"})
#: CONFIG SET parameters whose value is redacted.
SECRET_PARAMETERS = frozenset({b"requirepass", b"masterauth"})


@attrs.frozen
class SlowLogEntry:
    id: int
    #: Unix time (seconds) when the command finished.
    timestamp: int
    duration_usec: int
    argv: tuple[bytes, ...]
    client_addr: str
    client_name: bytes

    def as_reply(self) -> list[object]:
        """The entry as SLOWLOG GET replies it."""
        return [self.id, self.timestamp, self.duration_usec, list(self.argv),
                self.client_addr.encode(), self.client_name]


def shorten(argv: Sequence[bytes]) -> tuple[bytes, ...]:
    """The argument vector as Redis stores it in a slow log entry."""
    count = min(len(argv), MAX_ARGS)
    out = []
    for i in range(count):
        if count == MAX_ARGS and i == MAX_ARGS - 1 and len(argv) > MAX_ARGS:
            out.append(b"... (%d more arguments)" % (len(argv) - MAX_ARGS + 1))
            break
        arg = argv[i]
        if len(arg) > MAX_ARG_BYTES:
            arg = arg[:MAX_ARG_BYTES] + b"... (%d more bytes)" % (len(arg) - MAX_ARG_BYTES)
        out.append(arg)
    return tuple(out)


def redact(argv: Sequence[bytes]) -> Sequence[bytes] | None:
    """None when the command must not be logged, else argv with secrets replaced."""
    name = argv[0].lower() if argv else b""
    if name in SKIPPED:
        return None
    if name == b"config" and len(argv) > 3 and argv[1].lower() == b"set":
        redacted = list(argv)
        for i in range(2, len(argv) - 1, 2):
            if argv[i].lower() in SECRET_PARAMETERS:
                redacted[i + 1] = b"(redacted)"
        return redacted
    return argv


class SlowLog:
    """The newest entries first, at most ``max_len`` of them."""

    def __init__(self, log_slower_than_us: int = 10000, max_len: int = 128) -> None:
        self.entries: deque[SlowLogEntry] = deque()
        self.next_id = 0
        self.max_len = max_len
        self.log_slower_than_us = log_slower_than_us

    @property
    def log_slower_than_us(self) -> int:
        """Microseconds; negative disables the log, 0 logs every command."""
        return self._log_slower_than_us

    @log_slower_than_us.setter
    def log_slower_than_us(self, value: int) -> None:
        self._log_slower_than_us = value
        #: The same threshold in seconds, compared on the request path (inf: disabled).
        self.threshold_seconds = value / 1e6 if value >= 0 else float("inf")

    def set_max_len(self, value: int) -> None:
        self.max_len = value
        while len(self.entries) > value:
            self.entries.pop()

    def add(self, argv: Sequence[bytes], duration_seconds: float, client_addr: str,
            client_name: bytes | None) -> None:
        safe = redact(argv)
        if safe is None or self.max_len <= 0:
            return
        self.entries.appendleft(SlowLogEntry(
            id=self.next_id, timestamp=int(time.time()),
            duration_usec=int(duration_seconds * 1e6), argv=shorten(safe),
            client_addr=client_addr, client_name=client_name or b""))
        self.next_id += 1
        while len(self.entries) > self.max_len:
            self.entries.pop()

    def get(self, count: int = 10) -> list[SlowLogEntry]:
        """The newest ``count`` entries (all when negative)."""
        entries = list(self.entries)
        return entries if count < 0 else entries[:count]

    def reset(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)
