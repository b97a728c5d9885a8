"""The ``circuit_breaker`` fault policy, as the router calls it around every peer call.

One call is ``BATCH`` (10,000) guarded calls: ``allow()`` then ``on_success()`` on a closed
breaker (the common case, paid by every forwarded request), ``allow()`` refused by an open one
(a dead peer's fast failure), and ``for_peer`` plus ``allow`` (a router that looks the breaker
up per call instead of keeping it).
"""

from __future__ import annotations

from distcache_plugins.circuit_breaker import OPEN, CircuitBreakerPolicy

BATCH = 10_000


class BreakerCalls:
    def __init__(self) -> None:
        self.policy = CircuitBreakerPolicy()
        self.closed = self.policy.for_peer("alive")
        # Open for an hour: it stays open for the whole run.
        self.open = CircuitBreakerPolicy(reset_timeout_ms=3_600_000).for_peer("dead")
        self.open.trip()
        assert self.open.state == OPEN

    def time_closed_allow_and_success(self) -> None:
        allow, on_success = self.closed.allow, self.closed.on_success
        for _ in range(BATCH):
            if allow():
                on_success()

    def time_open_rejects(self) -> None:
        allow = self.open.allow
        for _ in range(BATCH):
            allow()

    def time_lookup_then_allow(self) -> None:
        for_peer = self.policy.for_peer
        for _ in range(BATCH):
            for_peer("alive").allow()
