"""The WAL's one writer thread: jobs run in the order they were asked for, and each outcome
is handed back to the event loop with one ``call_soon_threadsafe``.

Why not ``loop.run_in_executor`` on a one-worker ``ThreadPoolExecutor``: a round trip through it
(a ``concurrent.futures.Future`` with its lock and condition, a work item, the executor's
thread-count check, then ``wrap_future`` chaining the outcome onto an asyncio future whose
callbacks run a loop turn later) cost 34-45 us of CPU and 82-106 us of wall time here, against
12-14 us and 24-44 us for a ``SimpleQueue`` and one ``call_soon_threadsafe`` (a no-op job under
uvloop). With ``fsync = always`` there is one round trip per group commit, and the thread holds
the GIL for all of that Python while the loop wants it: SET -c 50 on this machine's disk went
from 34-36 to 29-30 us of node CPU per write (see the commit that introduced this module).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

#: ``on_done(result, error)``: called on the loop with the job's return value, or with the
#: exception it raised (``error`` is then not None).
DoneCallback = Callable[[Any, "BaseException | None"], None]


class WriterThread:
    """Start with :meth:`start` (once the loop runs), stop with :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], DoneCallback] | None]
        self._jobs = SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], on_done: DoneCallback) -> None:
        """Run ``fn(*args)`` on the thread after every job before it; then ``on_done`` on
        the loop."""
        self._jobs.put((fn, args, on_done))

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """:meth:`call` with the outcome on an asyncio future."""
        assert self._loop is not None
        future = self._loop.create_future()
        self.call(fn, args, _settle(future))
        return future

    def stop(self) -> None:
        """Run what is queued, then end the thread and wait for it."""
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join()
        self._thread = None

    def _main(self) -> None:
        assert self._loop is not None
        call_soon_threadsafe = self._loop.call_soon_threadsafe
        get = self._jobs.get
        while True:
            job = get()
            if job is None:
                return
            fn, args, on_done = job
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # handed to the loop, which decides
                result, error = None, exc
            try:
                call_soon_threadsafe(on_done, result, error)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                pass


def _settle(future: asyncio.Future[Any]) -> DoneCallback:
    def settle(result: Any, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    return settle
