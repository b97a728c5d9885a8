"""The ``[plugins.circuit_breaker]`` config table."""

from __future__ import annotations

import attrs

from distcache_core.config import positive


@attrs.frozen(kw_only=True)
class CircuitBreakerSettings:
    """When a peer's breaker opens and when it tries the peer again."""

    #: Consecutive failed or timed-out calls to a peer that open its breaker (env
    #: ``CIRCUIT_BREAKER_THRESHOLD``).
    failure_threshold: int = attrs.field(default=5, validator=positive)
    #: Milliseconds an open breaker fails calls fast before it lets one probe call through.
    reset_timeout_ms: int = attrs.field(default=5000, validator=positive)
