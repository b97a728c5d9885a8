"""Overlapping the loop's encoding with a thread's disk writes, with bounded memory.

A snapshot writer encodes a slice on the loop, hands it to its writer thread and goes on to
the next slice without waiting for the disk, up to ``max_pending`` slices in flight. Waiting
for each write instead would let writes pile up in the image's overlay while the loop sits
idle (the overlay drains only as fast as slices go out), and it halves throughput.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

#: Slices in flight: a few MB at most, enough to keep the thread busy.
DEFAULT_MAX_PENDING = 4


class WritePipeline:
    """``await pipeline.submit(fn, *args)`` returns at once unless ``max_pending`` jobs are
    in flight; ``await pipeline.drain()`` waits for all. The first failure is raised by the
    next call. ``run_in_thread(fn, *args)`` must return an asyncio future and run jobs in
    order (one writer thread)."""

    def __init__(self, run_in_thread: Callable[..., asyncio.Future[Any]],
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._run = run_in_thread
        self._max_pending = max_pending
        self._pending: deque[asyncio.Future[Any]] = deque()

    async def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while self._pending and (self._pending[0].done()
                                 or len(self._pending) >= self._max_pending):
            await self._pending.popleft()
        self._pending.append(self._run(fn, *args))

    async def drain(self) -> None:
        while self._pending:
            await self._pending.popleft()

    async def cancel(self) -> None:
        """After a failure: wait out what is in flight, ignoring its errors."""
        while self._pending:
            job = self._pending.popleft()
            try:
                await job
            except Exception:
                pass
