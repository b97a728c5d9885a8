"""The node's own metrics: per-command counters and latency histograms, error counts and the
slow log. INFO, SLOWLOG and the metrics sinks (the dashboard) read them; the request path
records into them with plain appends (see :mod:`distcache_core.metrics.recorder`)."""

from __future__ import annotations

from .commands import CommandStats
from .histogram import LatencyHistogram
from .recorder import INFO_PERCENTILES, NodeMetrics
from .slowlog import SlowLog, SlowLogEntry

__all__ = ["INFO_PERCENTILES", "CommandStats", "LatencyHistogram", "NodeMetrics", "SlowLog",
           "SlowLogEntry"]
