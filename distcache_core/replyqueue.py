"""Replies that must wait: keeps one client's replies in request order.

Empty (and free) while every reply is ready at once. It fills when a reply is a future (an async
handler) or when a batch that wrote must wait for the durability barrier; from then on every
reply of that client joins the queue behind them, and leaves as soon as everything in front of
it is ready. Entries are ready ``bytes``, futures of reply bytes, and barrier *gates*: a gate
holds back everything behind it until the persistence plugins say the writes are durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("distcache.replies")

#: A barrier that failed (a full disk): the replies it held become this error, so no client is
#: told a write is safe when it is not.
BARRIER_FAILED = (b"-MISCONF Errors writing to the persistence log or snapshot. Writes are "
                  b"refused until it succeeds again; see the node log.\r\n")


#: What a reply still being computed counts against a client's high-water mark, in bytes.
HELD_REPLY_COST = 64


class ReplyFuture(asyncio.Future):  # type: ignore[type-arg]
    """A reply that is not ready yet and resolves to its final bytes, already encoded for the
    client (a forwarded command: the owner's reply as it wrote it). A handler may return one;
    dispatch queues it as it is, with no task to await it and no encoding.

    The queue does not register a callback on it (a pipelined client's forwarded replies
    arrive together, and a callback each would flush the queue once per reply): whoever
    resolves it calls :func:`resolve_reply`, which flushes the client's queue once per loop
    turn.

    One future may stand for several consecutive replies (``batch`` is then set): the
    cluster's peer links put a client's forwarded commands that leave in one write in one
    batch (:class:`~distcache_core.cluster.peer.ForwardBatch`), and hand its future back for
    each command it takes while that future is the newest entry of the client's queue. The
    future resolves to all their replies, joined. :meth:`ReplyQueue.add_future` keeps such a
    future once; when the client's replies produced meanwhile (dispatch's bytes not queued
    yet) come between, it asks the batch to give up the command it took last, which then
    gets its own future (``batch.split()``)."""

    __slots__ = ("batch",)
    #: The :class:`~distcache_core.cluster.peer.ForwardBatch` it answers for; unset otherwise.
    batch: Any


def resolve_reply(conn: Any, future: ReplyFuture, data: bytes) -> None:
    """Give ``future`` (queued for client ``conn``) its reply bytes."""
    if not future.done():
        future.set_result(data)
        conn.replies.flush_soon()


#: Queues with replies resolved inside a :func:`replies_arriving` batch, flushed at its end.
_touched: list[ReplyQueue] = []
_batches = 0


def replies_arriving() -> None:
    """A peer's batch of replies is about to resolve :class:`ReplyFuture` s: the queues they
    complete are flushed once, by :func:`replies_arrived`, instead of a loop turn later."""
    global _batches
    _batches += 1


def replies_arrived() -> None:
    global _batches
    _batches -= 1
    if _batches == 0 and _touched:
        queues = _touched[:]
        _touched.clear()
        for queue in queues:
            queue._flush_now()


class DurabilityBarrier(asyncio.Future):  # type: ignore[type-arg]
    """The durability barrier of one loop turn (``Node.durability_barrier``): a future that
    also lists the reply queues it holds back. When it completes, :meth:`release` flushes them
    all in one go: no done-callback per connection, each of which the loop would schedule as
    a call of its own."""

    __slots__ = ("queues",)
    queues: list[ReplyQueue]

    def release(self) -> None:
        """Flush every queue gated on this barrier (it is done)."""
        queues, self.queues = self.queues, []
        for queue in queues:
            try:
                queue.flush()
            except Exception:  # one broken connection must not hold back the others
                log.exception("flushing the replies held by the durability barrier failed")


class _Gate:
    """Holds the next ``count`` entries (one batch's replies) until ``future`` is done."""

    __slots__ = ("future", "count")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.count = 0


class ReplyQueue:
    """The held replies of one connection. ``write`` sends bytes to the client."""

    __slots__ = ("entries", "_write", "_on_change", "held_bytes", "_failing", "_flush_soon")

    def __init__(self, write: Callable[[bytes], None], on_change: Callable[[], None]) -> None:
        self.entries: deque[Any] = deque()
        self._write = write
        #: Called after entries leave, so the connection can resume reading.
        self._on_change = on_change
        #: Bytes of ready replies waiting behind something not ready (for back-pressure).
        self.held_bytes = 0
        #: Entries still to be replaced by the error of a failed barrier.
        self._failing = 0
        #: A flush is scheduled for the end of this loop turn (see :meth:`flush_soon`).
        self._flush_soon = False

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
        entries = self.entries
        if type(future) is not ReplyFuture:  # see ReplyFuture: its resolver flushes
            entries.append(future)
            future.add_done_callback(self._ready)
            return
        if entries:
            # A batch handed back for one more command (see ReplyFuture). Right behind it:
            # nothing came between, it answers for that command too. Behind the bytes just
            # queued in front of it: the command goes after those, in a batch of its own.
            if entries[-1] is future:
                return
            if len(entries) > 1 and entries[-2] is future:
                future = future.batch.split()
        entries.append(future)

    def flush_soon(self) -> None:
        """Flush once this loop turn's other callbacks have run (one write for all the
        replies that became ready meanwhile)."""
        if not self._flush_soon:
            self._flush_soon = True
            if _batches:
                _touched.append(self)
            else:
                asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        if self._flush_soon:
            self._flush_soon = False
            self.flush()

    def gate(self, start: int, barrier: asyncio.Future[Any]) -> None:
        """Hold everything added since ``mark()`` returned ``start`` until ``barrier`` is done."""
        gate = _Gate(barrier)
        gate.count = len(self.entries) - start
        self.entries.insert(start, gate)
        if barrier.done():
            self.flush()
        elif type(barrier) is DurabilityBarrier:
            queues = barrier.queues
            if not queues or queues[-1] is not self:
                queues.append(self)
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
                if failing:
                    batch = getattr(head, "batch", None)  # one error for each of its replies
                    out.append(BARRIER_FAILED * (batch.count if batch is not None else 1))
                elif type(head) is ReplyFuture and not head.cancelled():
                    out.append(head.result())
                else:
                    out.append(_result(head))
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
