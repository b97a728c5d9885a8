"""Group commit: the loop appends encoded records to a buffer; one thread writes and syncs.

Per write the loop pays for encoding the record into a ``bytearray`` (``record``). Once per
loop turn that wrote, the node asks for the barrier: the buffer is handed whole to the writer
thread as one ``write`` (and, with ``always``, one ``fdatasync``), and every client of that
turn waits on the same disk operation (Redis does the same in ``beforeSleep``). While one
flush is in the thread, later turns' records gather in the buffer and go together in the next
one, so under load a flush carries more records the slower the disk is. The thread releases
the GIL for the syscalls; reads keep being served meanwhile.

``everysec`` and ``no`` hand the buffer over the same way but nobody waits for it; ``tick``
syncs once a second (``everysec``). A failed write or sync leaves the records at the front of
the buffer to retry once a second (``tick``), cuts the file back to its size before the write
(no record is written twice) and turns writes into ``-MISCONF`` through the status, refused
before they run; the next successful write lifts it.

With ``always``, the barriers of the failed records keep waiting for that retry: their writes
are applied in memory and cannot be taken back (the mutation stream carries no previous state,
and other clients may have read them), so an error reply would tell a client "not done" about
a write that a later retry makes durable, and an OK would be a lie until then. Held, their
replies leave as OK once the records are on disk; if the node stops first, their connections
close without a reply, as in a crash, and the writes are gone after the restart, which no
client was told otherwise. (Redis exits here, for the same reason: ``flushAppendOnlyFile``,
"Can't recover from AOF write error when the AOF fsync policy is 'always'"; a cache should keep
serving reads.) Records made after the failure was known come from expiry and eviction (writes
are refused by then): their barriers do not wait, so a read that expires a key is not held.

Every disk operation of the WAL (writes, syncs, rolls, rewrites, deletions) runs on the one
thread, in the order it was asked for.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from distcache_core.errors import PersistenceWriteError
from distcache_core.mutations import Mutation
from distcache_core.persistence import aof_write_error

from .format import append_fields, append_mutation
from .format import pack_frame as _pack_frame
from .format import pack_seq_and_header as _pack_seq_and_header
from .segments import ActiveSegment
from .thread import WriterThread

T = TypeVar("T")

_crc32 = zlib.crc32

ALWAYS, EVERYSEC, NO = "always", "everysec", "no"


def describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.strerror or os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class GroupCommitWriter:
    """The buffer, the flush in flight and its waiters, and the writer thread."""

    def __init__(self, segment: ActiveSegment, policy: str,
                 report_error: Callable[[str | None], None]) -> None:
        self.segment = segment
        self.policy = policy
        self._sync_each = policy == ALWAYS
        self._report_error = report_error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = WriterThread("distcache-wal")
        self._buffer = bytearray()
        self._buffer_seq = 0
        self._buffer_records = 0
        self._turn_flush_scheduled = False
        self._inflight: asyncio.Future[None] | None = None
        #: Barriers of the flush in flight, and of the records still in the buffer.
        self._inflight_waiters: list[asyncio.Future[None]] = []
        self._pending_waiters: list[asyncio.Future[None]] = []
        self._sync_inflight = False
        self._unsynced_bytes = 0
        self.error: str | None = None
        self._error_kind = ""
        #: ``always``: the last sequence number a barrier covered, and the last one recorded
        #: before the current write error (later records are not clients' writes).
        self._judged_seq = 0
        self._error_seq = 0
        #: Counters for INFO.
        self.records = 0
        self.flushes = 0
        self.fsyncs = 0
        self.records_synced = 0
        self.bytes_written = 0
        self._records_unsynced = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread.start(loop)

    # --- loop side ----------------------------------------------------------------------------

    def record(self, mutation: Mutation) -> None:
        append_mutation(self._buffer, mutation)
        self._buffer_seq = mutation.seq
        self._buffer_records += 1
        if not self._turn_flush_scheduled and not self._sync_each:
            # everysec / no: nobody waits, so no barrier asks for the flush; the records of
            # this loop turn reach the OS at the end of it, as Redis writes in beforeSleep.
            # (Handing them over every ~10 ms instead saved no measurable CPU at -c 50.)
            self._turn_flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._end_of_turn)

    def record_fields(self, seq: int, op: int, db: int, key: bytes, value: bytes | None,
                      expire_at_ms: int | None, cause: int) -> None:
        """:meth:`record` from the change's fields (the mutation stream's fast form): the
        same bytes, with the record's framing inlined, so a write costs this one call."""
        if value is None:
            append_fields(self._buffer, seq, op, db, key, value, expire_at_ms, cause)
        else:
            if expire_at_ms is None:
                record = _pack_seq_and_header(seq, 1, op, 1, cause << 4 | 2, db, 0, 0, 0,
                                              len(key)) + key + value
            else:
                record = _pack_seq_and_header(seq, 1, op, 1, cause << 4 | 3, db, 0,
                                              expire_at_ms, 0, len(key)) + key + value
            buffer = self._buffer
            buffer += _pack_frame(len(record) - 8, _crc32(record))
            buffer += record
        self._buffer_seq = seq
        self._buffer_records += 1
        if not self._turn_flush_scheduled and not self._sync_each:
            self._turn_flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._turn_flush_scheduled = False
        if self._buffer and self._inflight is None:
            self._flush()

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    @property
    def sync_in_flight(self) -> bool:
        return self._sync_inflight

    def barrier(self) -> Awaitable[None] | None:
        if not self._sync_each:
            if self._buffer and self._inflight is None:
                self._flush()
            return None
        loop = self._loop
        assert loop is not None
        judged, self._judged_seq = self._judged_seq, self._buffer_seq
        failed = self.error is not None
        if failed and judged >= self._error_seq:
            return None  # nothing recorded since the failure needs to be waited for
        if not self._buffer:
            if self._inflight is None:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            self._inflight_waiters.append(waiter)
            return waiter
        waiter = loop.create_future()
        self._pending_waiters.append(waiter)
        if self._inflight is None and not failed:  # after a failure, tick() retries
            self._flush()
        return waiter

    def tick(self) -> None:
        """Once a second: write what no barrier wrote (expirations between requests), retry
        after a failure, and with ``everysec`` sync."""
        if not self._thread.running:
            return
        if self._buffer and self._inflight is None:
            self._flush()
        if self.policy == EVERYSEC and self._unsynced_bytes and not self._sync_inflight:
            self._sync_inflight = True
            records = self._records_unsynced
            self._unsynced_bytes = self._records_unsynced = 0
            self._thread.call(self.segment.sync, (), functools.partial(self._synced, records))

    def _flush(self) -> None:
        data, self._buffer = self._buffer, bytearray()
        records, self._buffer_records = self._buffer_records, 0
        waiters, self._pending_waiters = self._pending_waiters, []
        self._inflight_waiters = waiters
        assert self._loop is not None
        self._inflight = self._loop.create_future()  # done once _flushed ran (for close)
        self._thread.call(self.segment.append, (data, self._sync_each, self._buffer_seq),
                          functools.partial(self._flushed, data, records, waiters))

    def _flushed(self, data: bytearray, records: int, waiters: list[asyncio.Future[None]],
                 result: None, exc: BaseException | None) -> None:
        inflight, self._inflight = self._inflight, None
        try:
            self._after_flush(data, records, waiters, exc)
        finally:
            if inflight is not None:
                inflight.set_result(None)

    def _after_flush(self, data: bytearray, records: int, waiters: list[asyncio.Future[None]],
                     exc: BaseException | None) -> None:
        if exc is not None:
            self._buffer[0:0] = data  # retried first, before anything recorded since
            self._buffer_records += records
            if self.error is None:
                self._error_seq = self._buffer_seq
            self._failed(exc, "write")
            # Held for the retry, in order (see the module docstring).
            self._pending_waiters = [*waiters, *self._pending_waiters]
            return
        self.flushes += 1
        self.records += records
        self.bytes_written += len(data)
        if self._sync_each:
            self.fsyncs += 1
            self.records_synced += records
        else:
            self._unsynced_bytes += len(data)
            self._records_unsynced += records
        self._recovered("write")
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._buffer and (self._pending_waiters or not self._sync_each):
            self._flush()

    def _synced(self, records: int, result: None, exc: BaseException | None) -> None:
        self._sync_inflight = False
        if exc is not None:
            self._unsynced_bytes = max(self._unsynced_bytes, 1)  # sync again next tick
            self._records_unsynced += records
            if self.error is None:
                self._error_seq = self._buffer_seq
            self._failed(exc, "sync")
            return
        self.fsyncs += 1
        self.records_synced += records
        self._recovered("sync")

    def _failed(self, exc: BaseException, kind: str) -> None:
        reason = describe_os_error(exc)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            reason = os.strerror(errno.ENOSPC)
        self.error = aof_write_error(reason)
        self._error_kind = kind
        self._report_error(self.error)

    def _recovered(self, kind: str) -> None:
        """A write or sync worked: that lifts an error of the same kind (a sync that works
        says nothing about records still waiting to be written)."""
        if self.error is not None and self._error_kind == kind:
            self.error = None
            self._report_error(None)

    # --- the thread ---------------------------------------------------------------------------

    def run_in_thread(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return self._thread.submit(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the writer thread, after everything asked for before it."""
        result: T = await self.run_in_thread(fn, *args)
        return result

    async def close(self) -> None:
        """Write out the buffer, sync, close the segment and stop the thread. Barriers still
        held after a failed write are released (their clients are gone by now): with an
        exception if this last write fails too, which is then raised."""
        if not self._thread.running:
            return
        if self._inflight is not None:
            await asyncio.wait([self._inflight])
        waiters, self._pending_waiters = self._pending_waiters, []
        try:
            if self._buffer:
                data, self._buffer = self._buffer, bytearray()
                self.records += self._buffer_records
                self._buffer_records = 0
                await self.run(self.segment.append, data, True, self._buffer_seq)
            await self.run(self.segment.close)
        except BaseException as exc:
            error = PersistenceWriteError(aof_write_error(describe_os_error(exc)))
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
                    waiter.exception()  # retrieved: nobody is left to read it
            raise
        finally:
            self._thread.stop()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
