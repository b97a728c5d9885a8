"""Replies that must wait: keeps one client's replies in request order.

Empty (and free) while every reply is ready at once. It fills when a reply is a future (an async
handler) or when a batch that wrote must wait for the durability barrier; from then on every
reply of that client joins the queue behind them, and leaves as soon as everything in front of
it is ready. Entries are ready ``bytes``, futures of reply bytes, and barrier *gates*: a gate
holds back everything behind it until the persistence plugins say the writes are durable.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

#: A barrier that failed (a full disk): the replies it held become this error, so no client is
#: told a write is safe when it is not.
BARRIER_FAILED = (b"-MISCONF Errors writing to the persistence log or snapshot. Writes are "
                  b"refused until it succeeds again; see the node log.\r\n")


class ReplyFuture(asyncio.Future):  # type: ignore[type-arg]
    """A reply that is not ready yet and resolves to its final bytes, already encoded for the
    client (a forwarded command: the owner's reply as it wrote it). An async handler may
    return one; dispatch queues it as it is, with no task to await it and no encoding."""

    __slots__ = ()


class _Gate:
    """Holds the next ``count`` entries (one batch's replies) until ``future`` is done."""

    __slots__ = ("future", "count")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.count = 0


class ReplyQueue:
    """The held replies of one connection. ``write`` sends bytes to the client."""

    __slots__ = ("entries", "_write", "_on_change", "held_bytes", "_failing")

    def __init__(self, write: Callable[[bytes], None], on_change: Callable[[], None]) -> None:
        self.entries: deque[Any] = deque()
        self._write = write
        #: Called after entries leave, so the connection can resume reading.
        self._on_change = on_change
        #: Bytes of ready replies waiting behind something not ready (for back-pressure).
        self.held_bytes = 0
        #: Entries still to be replaced by the error of a failed barrier.
        self._failing = 0

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def mark(self) -> int:
        """Where the next batch starts (for :meth:`gate`)."""
        return len(self.entries)

    def add_bytes(self, data: bytes) -> None:
        if data:
            self.entries.append(data)
            self.held_bytes += len(data)

    def add_future(self, future: asyncio.Future[bytes]) -> None:
        self.entries.append(future)
        future.add_done_callback(self._ready)

    def gate(self, start: int, barrier: asyncio.Future[Any]) -> None:
        """Hold everything added since ``mark()`` returned ``start`` until ``barrier`` is done."""
        gate = _Gate(barrier)
        gate.count = len(self.entries) - start
        self.entries.insert(start, gate)
        if barrier.done():
            self.flush()
        else:
            barrier.add_done_callback(self._ready)

    def _ready(self, _future: asyncio.Future[Any]) -> None:
        self.flush()

    def flush(self) -> None:
        """Write every entry from the front that is ready, in order."""
        entries = self.entries
        out: list[bytes] = []
        failing = self._failing
        while entries:
            head = entries[0]
            if type(head) is bytes:
                entries.popleft()
                self.held_bytes -= len(head)
                out.append(BARRIER_FAILED if failing else head)
            elif type(head) is _Gate:
                if not head.future.done():
                    break
                entries.popleft()
                if head.future.cancelled() or head.future.exception() is not None:
                    # Every reply the gate held, ready or not, is replaced by the error.
                    failing = max(failing, head.count)
                continue
            else:
                if not head.done():
                    break
                entries.popleft()
                out.append(BARRIER_FAILED if failing else _result(head))
            if failing:
                failing -= 1
        self._failing = failing
        if out:
            self._write(b"".join(out))
            self._on_change()

    def clear(self) -> None:
        self.entries.clear()
        self.held_bytes = 0


def _result(future: asyncio.Future[bytes]) -> bytes:
    if future.cancelled():
        return b"-ERR the command was cancelled\r\n"
    exc = future.exception()
    if exc is not None:  # dispatch's task encodes errors itself; this is a bug elsewhere
        return b"-ERR internal error while running the command (see node log)\r\n"
    return future.result()
