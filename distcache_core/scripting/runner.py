"""Running a script so that the node can still answer while it runs too long.

A script runs on a worker thread, never on the event loop: the loop thread hands it over and
waits for it, blocked, for up to ``node.lua_time_limit_ms``. Until then nothing else runs
on the loop (other clients wait, as with Redis), and the script's ``redis.call`` commands run
directly on the worker thread: the loop thread is parked, so the engine has one user at a time
and a small EVAL pays two thread switches, not two per command.

Past the limit the EVAL handler stops waiting and returns a future, so the loop serves again:
the node enters busy mode (:mod:`.busy`: every other command gets ``-BUSY``, SCRIPT KILL and
SHUTDOWN NOSAVE still work) and the script's commands are handed to the loop thread one by one
and waited for. The script still runs alone: everything else is refused until it ends.

One lock (``_mode``) makes the switch safe: the worker holds it while it runs a command
directly, and the loop thread takes it to switch to hand-off, so the switch never happens in
the middle of a command.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import CommandError
from .calls import Invocation
from .lua import LuaSandbox

log = logging.getLogger("distcache.scripting")

_INTERNAL = "ERR internal error while running the script (see node log)"
_STOPPING = "ERR the node is shutting down"
#: The reply of a script whose writes could not be made durable (as barrier-held replies get).
_NOT_DURABLE = ("MISCONF Errors writing to the persistence log or snapshot. Writes are refused "
                "until it succeeds again; see the node log.")


class _Job:
    __slots__ = ("invocation", "function", "keys", "args", "finished", "lock", "done", "reply",
                 "error", "future")

    def __init__(self, invocation: Invocation, function: Any, keys: list[bytes],
                 args: list[bytes]) -> None:
        self.invocation = invocation
        self.function = function
        self.keys = keys
        self.args = args
        #: Released by the worker when the script has ended (the loop thread waits on it).
        self.finished = threading.Lock()
        self.finished.acquire()
        #: Guards ``done`` and ``future`` between the worker and the loop thread.
        self.lock = threading.Lock()
        self.done = False
        self.reply: Any = None
        self.error: CommandError | None = None
        self.future: asyncio.Future[Any] | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.reply


def _resolve(future: asyncio.Future[Any], job: _Job,
             barrier: asyncio.Future[Any] | None = None) -> None:
    if future.done():
        return
    if barrier is not None and (barrier.cancelled() or barrier.exception() is not None):
        future.set_exception(CommandError(_NOT_DURABLE))
    elif job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.reply)


class _HandOff:
    """One command the worker asks the loop thread to run, and its result."""

    __slots__ = ("run", "done", "reply", "error")

    def __init__(self, run: Callable[[], Any]) -> None:
        self.run = run
        self.done = threading.Lock()
        self.done.acquire()
        self.reply: Any = None
        self.error: BaseException | None = None


class ScriptRunner:
    """The worker thread of one node's scripts, and the state of the script running."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sandbox: LuaSandbox, *,
                 on_busy: Callable[[], None], on_idle: Callable[[], None],
                 durability_barrier: Callable[[], Any] | None = None) -> None:
        self._loop = loop
        self._sandbox = sandbox
        self._on_busy = on_busy
        self._on_idle = on_idle
        #: Returns an awaitable done once the writes so far are durable (or None).
        self._durability_barrier = durability_barrier
        self._wake = threading.Lock()
        self._wake.acquire()
        self._job: _Job | None = None
        self._stopping = False
        self._mode = threading.Lock()
        self._hand_off = False
        #: The script running now (None between scripts).
        self.running: Invocation | None = None
        #: True while a script runs past the time limit (other clients get -BUSY).
        self.busy = False
        sandbox.interrupted = self._interrupted
        self._thread = threading.Thread(target=self._work, name="distcache-lua", daemon=True)
        self._thread.start()

    # -- loop thread ---------------------------------------------------------------------------

    def run(self, invocation: Invocation, function: Any, keys: list[bytes], args: list[bytes],
            time_limit_ms: int, execute: Callable[[tuple[bytes, ...]], Any]) -> Any:
        """Run a compiled script for a handler on the loop thread: its reply value (or
        ``CommandError``) when it ends within ``time_limit_ms`` (0: no limit), else a future
        of it, after switching the node to busy mode."""
        job = _Job(invocation, function, keys, args)
        self._execute = execute
        self.running = invocation
        # asyncio's debug mode checks that loop methods run on the loop thread: there every
        # command goes through the loop thread from the start.
        self._hand_off = self._loop.get_debug()
        self._job = job
        self._wake.release()
        if job.finished.acquire(timeout=time_limit_ms / 1000 if time_limit_ms > 0 else -1):
            self.running = None
            return job.outcome()
        with self._mode:
            self._hand_off = True
        with job.lock:
            if job.done:
                self.running = None
                return job.outcome()
            future: asyncio.Future[Any] = self._loop.create_future()
            job.future = future
        log.warning("script %s is still running after %d ms: other clients get -BUSY until "
                    "it ends or SCRIPT KILL stops it", invocation.sha, time_limit_ms)
        self.busy = True
        self._on_busy()
        return future

    def kill(self) -> None:
        """SCRIPT KILL: the running script raises at its next hook."""
        if self.running is not None:
            self.running.kill_requested = True

    def stop(self) -> None:
        """The node is stopping: kill whatever runs (even a script that wrote) and let the
        worker thread end."""
        if self.running is not None:
            self.running.kill_requested = True
        self._stopping = True
        job = self._job
        if job is None or job.done:
            self._job = None
            try:
                self._wake.release()
            except RuntimeError:  # stopped already
                pass

    def _finish(self, job: _Job) -> None:
        """On the loop thread, once a script that went past the limit has ended."""
        self.running = None
        self.busy = False
        self._on_idle()
        future = job.future
        if future is None or future.done():
            return
        # Past the limit the script's writes ran on the loop outside any request batch, so no
        # batch's durability barrier covers them: its reply waits for one of its own.
        barrier = (self._durability_barrier() if job.invocation.wrote
                   and self._durability_barrier is not None else None)
        if barrier is None:
            _resolve(future, job)
        else:
            asyncio.ensure_future(barrier).add_done_callback(
                lambda done: _resolve(future, job, done))

    def _run_handed_off(self, hand_off: _HandOff) -> None:
        try:
            hand_off.reply = hand_off.run()
        except BaseException as exc:  # re-raised on the worker thread
            hand_off.error = exc
        hand_off.done.release()

    # -- worker thread ---------------------------------------------------------------------------

    def call(self, argv: tuple[bytes, ...]) -> Any:
        """``redis.call``: run a command for the script (on the worker thread)."""
        with self._mode:
            if not self._hand_off:
                return self._execute(argv)
        hand_off = _HandOff(lambda: self._execute(argv))
        try:
            self._loop.call_soon_threadsafe(self._run_handed_off, hand_off)
        except RuntimeError:  # the loop is closed
            raise CommandError(_STOPPING) from None
        while not hand_off.done.acquire(timeout=0.5):
            if self._stopping:  # the loop may never run it now
                raise CommandError(_STOPPING)
        if hand_off.error is not None:
            raise hand_off.error
        return hand_off.reply

    def _interrupted(self) -> bool:
        running = self.running
        return running is not None and running.kill_requested

    def _work(self) -> None:
        # Handlers that the worker runs while the loop thread is parked may ask for the
        # running loop (to schedule a flush, say): it is the node's loop.
        asyncio.events._set_running_loop(self._loop)
        while True:
            self._wake.acquire()
            job = self._job
            if job is None or self._stopping:
                return
            try:
                job.reply = self._sandbox.run(job.function, job.invocation.sha, job.keys,
                                              job.args, job.invocation.caller_resp)
            except CommandError as exc:
                job.error = exc
            except BaseException:
                log.exception("script %s failed", job.invocation.sha)
                job.error = CommandError(_INTERNAL)
            with job.lock:
                job.done = True
                future = job.future
            job.finished.release()
            if future is not None:
                try:
                    self._loop.call_soon_threadsafe(self._finish, job)
                except RuntimeError:  # the loop is closed: the node has stopped
                    return
            if self._stopping:
                return
