"""A consistent image of the keyspace, read in slices while the node keeps serving writes.

How it stays exact without stopping writes or copying the keyspace (measured: copying a
1M-key dict takes ~0.9 s, listing its keys 17 ms idle and 35-135 ms beside a write load, so
the engine walks its table in place): a *fuzzy scan plus a redo overlay*. The
image subscribes to the mutation stream, then walks every database with ``items()`` a slice
at a time (about a millisecond, then the loop serves requests). A key changed during the walk
is read with whatever value it has when the walk reaches it, so the walk alone is not a point
in time; but every change made since the walk began is also captured, in order, and handed to
the writer after the walk (the *overlay*). Loading the walk then applying the overlay gives
exactly the keyspace as of the last captured change, ``image.seq``:

* for each key, the walk read the state left by some prefix of the captured changes;
* SET and DEL overwrite a key whatever it held, and EXPIRE/PERSIST only set the expiry of a
  key that exists, so replaying the whole overlay on top of a state that already contains a
  prefix of it ends in the same state as replaying it on the state before (FLUSHDB and
  FLUSHALL are SET/DEL of every key at once);
* SWAPDB is the one change that is not idempotent: the image is then abandoned
  (:class:`ImageAborted`) and the caller starts a new one later. So is a walk the engine
  cannot continue (:class:`~distcache_core.contracts.KeyspaceChanged`: its table was rebuilt).

The cyclic garbage collector is off while an image is read. The walk holds each slice's
tuples across a loop turn, so the collector promotes them, and once enough have been promoted
it runs a full collection, which visits every entry of the engine's dicts: measured 170-250 ms
a collection with 1M keys, several per snapshot, each a stall of the loop. Nothing the walk
allocates forms a cycle (reference counting frees it), and the collector's previous state is
restored at the end.

Capturing stops in the turn the overlay begins, which fixes ``seq``: nothing after it is in
the image, nothing up to it is missing. Memory: the overlay holds the
mutations made during the walk (references to their keys and values), nothing per key of the
keyspace.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

from ..contracts import KeyspaceChanged, StorageEngine
from ..mutations import Mutation, MutationStream, Op

#: Time one slice of the walk may take before the loop serves requests again. The writer's
#: own work on the slice (encoding it) comes on top, about as much again.
DEFAULT_SLICE_SECONDS = 0.001
#: Keys read between clock checks.
_CHECK_EVERY = 128
#: Overlay mutations handed out per chunk: about a millisecond of a writer's work.
OVERLAY_CHUNK = 512


def indexed_databases(databases: Any) -> list[tuple[int, StorageEngine]]:
    """(index, engine) of every database that may hold keys: the node's
    :class:`~distcache_core.databases.Databases` lists only those opened so far (the others
    are empty); a plain sequence lists them all."""
    opened = getattr(databases, "opened", None)
    if opened is not None:
        return list(opened())
    return list(enumerate(databases))


class ImageAborted(Exception):
    """The keyspace changed in a way the overlay cannot express (SWAPDB) or the walk cannot
    follow (a table rebuilt): start again."""


#: One slice of the walk: a database index and (key, value, expire_at_ms) items.
BaseChunk = tuple[int, list[tuple[bytes, bytes, int | None]]]


class KeyspaceImage:
    """Use as ``async with KeyspaceImage(databases, stream) as image:`` then iterate
    ``image.entries()`` and ``image.overlay()`` to the end; ``image.seq`` is then the
    image's sequence number. Leaving the block early stops capturing.

    :param databases: engines by database index (the node's ``Databases`` or a list).
    :param stream: the node's mutation stream (the image subscribes for its duration).
    """

    def __init__(self, databases: Any, stream: MutationStream, *,
                 slice_seconds: float = DEFAULT_SLICE_SECONDS) -> None:
        self._databases = indexed_databases(databases)
        self._stream = stream
        self._slice_seconds = slice_seconds
        self._captured: list[Mutation] = []
        self._subscribed = False
        self._aborted = False
        self._gc_was_enabled = False
        #: The stream's seq when the walk began.
        self.start_seq = 0
        #: The image's sequence number, known once the overlay is drained.
        self.seq: int | None = None
        #: Counters for INFO and the benchmarks.
        self.keys_total = sum(len(engine) for _, engine in self._databases)
        self.keys_walked = 0
        self.overlay_count = 0
        self.peak_overlay = 0

    async def __aenter__(self) -> KeyspaceImage:
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self.start_seq = self._stream.seq
        self._stream.subscribe(self._capture)
        self._subscribed = True
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._stop_capturing()
        # Before the collector comes back: an abandoned image's captured mutations would be
        # the first young collection's work (18 ms measured, beside a 1M-key snapshot).
        self._captured = []
        if self._gc_was_enabled:
            gc.enable()

    def _capture(self, mutation: Mutation) -> None:
        # On the write path of every command while a snapshot runs: keep it to an append.
        if mutation.op is Op.SWAPDB:
            self._aborted = True
        self._captured.append(mutation)

    def _stop_capturing(self) -> None:
        if self._subscribed:
            self._stream.unsubscribe(self._capture)
            self._subscribed = False

    def _check(self) -> None:
        if self._aborted:
            raise ImageAborted("SWAPDB during the snapshot")
        if len(self._captured) > self.peak_overlay:
            self.peak_overlay = len(self._captured)

    async def entries(self) -> AsyncIterator[BaseChunk]:
        """The walk: chunks of live keys, database by database, one slice each; the loop runs
        between chunks."""
        perf_counter = time.perf_counter
        for db, engine in self._databases:
            items = engine.items()
            exhausted = False
            while not exhausted:
                self._check()
                chunk: list[tuple[bytes, bytes, int | None]] = []
                append = chunk.append
                deadline = perf_counter() + self._slice_seconds
                count = 0
                exhausted = True
                try:
                    for item in items:
                        append(item)
                        count += 1
                        if count % _CHECK_EVERY == 0 and perf_counter() >= deadline:
                            exhausted = False
                            break
                except KeyspaceChanged as exc:
                    raise ImageAborted(f"database {db}: {exc}") from None
                self.keys_walked += count
                if chunk:
                    yield db, chunk
                await asyncio.sleep(0)

    async def overlay(self) -> AsyncIterator[list[Mutation]]:
        """The changes captured since the walk began, in order, in chunks. Capturing stops
        when the overlay begins: that turn sets :attr:`seq`, and the chunks carry everything
        up to it. (Draining until the backlog is small before stopping never ends when the
        writer consumes chunks more slowly than clients write: the LMDB writer under a steady
        write load grew the backlog by gigabytes in CI.)"""
        self._check()
        self._stop_capturing()
        self.seq = self._stream.seq
        captured, self._captured = self._captured, []
        self.peak_overlay = max(self.peak_overlay, len(captured))
        while captured:
            # Each chunk is let go once written: freeing them all at the end stalled the loop
            # 5-11 ms (~100k mutations captured during a 1M-key snapshot under writes).
            chunk = captured[:OVERLAY_CHUNK]
            del captured[:OVERLAY_CHUNK]
            self.overlay_count += len(chunk)
            yield chunk
            del chunk
            await asyncio.sleep(0)
