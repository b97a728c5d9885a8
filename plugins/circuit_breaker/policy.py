"""The ``circuit_breaker`` fault policy: one :class:`CircuitBreaker` per peer, made on demand."""

from __future__ import annotations

from .breaker import (
    BreakerStats,
    CircuitBreaker,
    Clock,
    Transition,
    TransitionListener,
    monotonic_ms,
    unix_ms,
)
from .settings import CircuitBreakerSettings


class CircuitBreakerPolicy:
    """The :class:`~distcache_core.contracts.FaultPolicy`: hands out each peer's breaker.

    The router asks ``for_peer(node_id)`` once per peer (or per call: it is a dict lookup) and
    calls the breaker's ``allow`` / ``on_success`` / ``on_failure`` around every peer call.
    Transitions of every breaker go to one listener (``set_listener``), for logs and
    ``CLUSTER NODES``; ``stats()`` is what metrics sinks read.
    """

    def __init__(self, *, failure_threshold: int = 5, reset_timeout_ms: float = 5000,
                 clock_ms: Clock = monotonic_ms, wall_clock_ms: Clock = unix_ms,
                 listener: TransitionListener | None = None) -> None:
        if failure_threshold < 1 or reset_timeout_ms <= 0:
            raise ValueError("failure_threshold and reset_timeout_ms must be positive")
        self.failure_threshold = failure_threshold
        self.reset_timeout_ms = reset_timeout_ms
        self._clock = clock_ms
        self._wall_clock = wall_clock_ms
        self._listener = listener
        self._breakers: dict[str, CircuitBreaker] = {}

    @classmethod
    def from_settings(cls, settings: CircuitBreakerSettings | None) -> CircuitBreakerPolicy:
        """The factory registered as ``circuit_breaker``."""
        settings = settings or CircuitBreakerSettings()
        return cls(failure_threshold=settings.failure_threshold,
                   reset_timeout_ms=settings.reset_timeout_ms)

    def for_peer(self, node_id: str) -> CircuitBreaker:
        """The breaker of ``node_id``, created closed on first ask; the same object after."""
        breaker = self._breakers.get(node_id)
        if breaker is None:
            breaker = self._breakers[node_id] = CircuitBreaker(
                node_id, failure_threshold=self.failure_threshold,
                reset_timeout_ms=self.reset_timeout_ms, clock_ms=self._clock,
                wall_clock_ms=self._wall_clock, listener=self._notify)
        return breaker

    def forget(self, node_id: str) -> None:
        """Drop a peer's breaker (the peer left the cluster); asking again starts closed."""
        self._breakers.pop(node_id, None)

    def peers(self) -> list[str]:
        """Peers that have a breaker, sorted."""
        return sorted(self._breakers)

    def states(self) -> dict[str, str]:
        """peer -> current state, for ``CLUSTER NODES`` and the dashboard."""
        return {peer: self._breakers[peer].state for peer in self.peers()}

    def stats(self) -> dict[str, BreakerStats]:
        """peer -> counters, for INFO and the metrics sinks."""
        return {peer: self._breakers[peer].stats() for peer in self.peers()}

    def set_listener(self, listener: TransitionListener | None) -> None:
        """Where every breaker reports its transitions (None: nowhere)."""
        self._listener = listener

    def _notify(self, transition: Transition) -> None:
        listener = self._listener
        if listener is not None:
            listener(transition)
