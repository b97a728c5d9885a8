"""What the request path calls to record commands: :class:`NodeMetrics`, one per node.

Every bytecode on the request path shows (callgrind, CPython 3.11): a lone GET is ~18,700
instructions, a pipelined one ~10,400; ``stats.calls += 1`` costs ~330, a clock read ~460, a
float compare ~300, and binning a duration into a log-linear histogram in Python ~1,300. The
issue's budget is 5% of each case. So:

* **Calls are exact**: dispatch does ``command.stats.calls += 1`` just before the handler runs
  (it replaces the connection's own command counter: ``total_commands_processed`` is the sum).
* **The slow log is exact**: the connection reads the clock once after each read's requests
  ran (one request, or a pipelined batch) and compares the elapsed time with :attr:`limit`::

      if _monotonic() - started >= metrics.limit:
          metrics.sampled_read(conn, requests, count, started)

  ``limit`` is the slow log threshold, so a normal read stops there.
* **Time is sampled**: while a sample is due, ``limit`` is -1 and the next read, whatever it
  took, goes to :meth:`sampled_read`, which credits its time to its commands (all of it to a
  lone command, an equal share to each of a pipelined batch) and re-arms a timer that makes
  the next sample due :data:`SAMPLE_INTERVAL_SECONDS` later. A read starting after the timer
  fired is chosen whatever its length, so the sample is not biased towards slow reads. A quiet
  node (fewer reads than one an interval) has every read timed; a busy one about a thousand a
  second, which costs a few million instructions a second.

Refused and failed calls bump ``stats.rejected`` / ``stats.failed`` where dispatch encodes
their error reply (errorstats are the server's :class:`~distcache_core.errorstats.ErrorStats`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from .commands import CommandStats
from .histogram import LatencyHistogram
from .slowlog import SlowLog

_monotonic = time.monotonic

#: A new time sample is due this long after the last one (at most ~1000 sampled reads/s).
SAMPLE_INTERVAL_SECONDS = 0.001
#: ``limit`` while a sample is due: every read's elapsed time is above it.
SAMPLE_DUE = -1.0
#: Percentiles INFO latencystats reports (Redis's ``latency-tracking-info-percentiles``).
INFO_PERCENTILES = (50.0, 99.0, 99.9)


class NodeMetrics:
    """Per-command stats (held by the commands) and the slow log of one node.

    :param commands: the node's commands (each with its own ``stats``).
    """

    def __init__(self, commands: Iterable[Any], *, slowlog_log_slower_than_us: int = 10000,
                 slowlog_max_len: int = 128) -> None:
        self._commands: dict[bytes, Any] = {c.name.encode(): c for c in commands}
        #: command name -> its stats (the same objects as ``Command.stats``).
        self.commands: dict[str, CommandStats] = {
            c.name: c.stats for c in self._commands.values()}
        self.slowlog = SlowLog(slowlog_log_slower_than_us, slowlog_max_len)
        #: Seconds: a read that took at least this long goes to :meth:`sampled_read`.
        self.limit = SAMPLE_DUE
        self._timer: asyncio.TimerHandle | None = None

    # -- request path (see the module docstring) ----------------------------------------------

    def sampled_read(self, conn: Any, requests: Iterable[list[bytes]], count: int,
                     started: float) -> None:
        """A read that was slow or due for a time sample: the first ``count`` of ``requests``
        ran for client ``conn`` since ``started`` (a ``time.monotonic()`` reading)."""
        elapsed = _monotonic() - started
        if count <= 0:
            return
        requests = list(islice(requests, count))
        if self.limit == SAMPLE_DUE:
            self._sample(requests, elapsed)
            self.limit = self.slowlog.threshold_seconds
            self._arm()
        if elapsed >= self.slowlog.threshold_seconds:
            self._log_slow(conn, requests, elapsed)

    def _sample(self, requests: Sequence[list[bytes]], elapsed: float) -> None:
        share = elapsed / len(requests)
        commands = self._commands
        for argv in requests:
            command = commands.get(argv[0].lower())
            if command is not None and command.min_args <= len(argv) <= command.max_args:
                command.stats.pending.append(share)

    def _arm(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven without a loop (bench/count_instructions.py): no more samples
        self._timer = loop.call_later(SAMPLE_INTERVAL_SECONDS, self._sample_due)

    def _sample_due(self) -> None:
        self._timer = None
        self.limit = SAMPLE_DUE

    def _log_slow(self, conn: Any, requests: Sequence[list[bytes]], elapsed: float) -> None:
        if not requests:
            return
        if len(requests) == 1:
            argv: Sequence[bytes] = requests[0]
        else:
            # Pipelined commands are timed together. Name the one most likely to be slow (not
            # flagged ``fast``, then the highest mean time so far) and how many ran with it.
            def slowness(argv: list[bytes]) -> tuple[bool, float]:
                command = self._commands.get(argv[0].lower())
                if command is None:
                    return False, 0.0
                return "fast" not in command.flags, command.stats.usec_per_call

            argv = [*max(requests, key=slowness),
                    b"... (%d more pipelined commands timed with it)" % (len(requests) - 1)]
        self.slowlog.add(argv, elapsed, getattr(conn, "peer", ""),
                         getattr(conn, "client_name", None))

    # -- configuration -------------------------------------------------------------------------

    def set_slowlog_threshold(self, log_slower_than_us: int) -> None:
        self.slowlog.log_slower_than_us = log_slower_than_us
        if self.limit != SAMPLE_DUE:
            self.limit = self.slowlog.threshold_seconds

    # -- readers -------------------------------------------------------------------------------

    def fold(self) -> None:
        """Fold every command's pending durations into its counters (cheap when idle)."""
        for stats in self.commands.values():
            if stats.pending:
                stats.fold()

    def reset(self) -> None:
        """CONFIG RESETSTAT: counters and histograms; the slow log stays, as in Redis."""
        for stats in self.commands.values():
            stats.reset()

    def touched(self) -> list[CommandStats]:
        """Commands with anything to report, by name, folded."""
        self.fold()
        return [s for _, s in sorted(self.commands.items()) if s.touched]

    def total_calls(self) -> int:
        return sum(s.calls for s in self.commands.values())

    def latency(self) -> LatencyHistogram:
        """All commands' sampled latencies in one histogram."""
        self.fold()
        merged = LatencyHistogram()
        for stats in self.commands.values():
            if stats.histogram.total:
                merged.merge(stats.histogram)
        return merged

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
