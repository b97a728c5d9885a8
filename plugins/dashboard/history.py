"""The page's charts: one point a second over the last minutes, kept by the node so a page
opened later still shows where the figures came from."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .stats import totals


class History:
    """Points of throughput, latency percentiles, hit ratio, memory, keys and clients.

    Each point's rates and percentiles are over the interval since the previous one: the
    latency percentiles come from the difference of two copies of the node's histogram.
    """

    def __init__(self, node: Any, keep_seconds: int, interval_seconds: float) -> None:
        self.node = node
        self.interval_seconds = interval_seconds
        self.points: deque[dict[str, Any]] = deque(maxlen=max(2, int(keep_seconds /
                                                                   interval_seconds)))
        self._previous: dict[str, Any] | None = None
        self._previous_latency: Any = None
        self._previous_time = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        current = totals(self.node)
        latency = self.node.metrics.latency()
        previous = self._previous
        if previous is not None and now > self._previous_time:
            elapsed = now - self._previous_time
            # CONFIG RESETSTAT makes counters go backwards: that interval counts from zero.
            commands = current["commands_processed"] - previous["commands_processed"]
            if commands < 0:
                commands = current["commands_processed"]
            hits = current["hits"] - previous["hits"]
            misses = current["misses"] - previous["misses"]
            interval = latency.since(self._previous_latency)
            if interval.total < 0:
                interval = latency
            values = interval.percentiles_usec((50.0, 99.0))
            self.points.append({
                "t": round(time.time(), 3),
                "ops_per_sec": round(commands / elapsed, 1),
                "p50_usec": round(values[50.0], 3) if interval.total else None,
                "p99_usec": round(values[99.0], 3) if interval.total else None,
                "hit_ratio": round(hits / (hits + misses), 4) if hits + misses > 0 else None,
                "used_memory_bytes": current["used_memory_bytes"],
                "keys": current["keys"],
                "connected_clients": current["connected_clients"],
            })
        self._previous = current
        self._previous_latency = latency
        self._previous_time = now

    def as_json(self) -> dict[str, Any]:
        return {"interval_seconds": self.interval_seconds, "points": list(self.points)}
