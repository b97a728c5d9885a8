"""The default fault policy: a circuit breaker per peer.

Registers the factory ``circuit_breaker`` (``[cluster] fault_policy = "circuit_breaker"``) and
the config table ``[plugins.circuit_breaker]`` (:class:`CircuitBreakerSettings`), whose
``failure_threshold`` the seed's ``CIRCUIT_BREAKER_THRESHOLD`` environment variable still sets.
The states and their rules are in ``breaker.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from distcache_core.hookspecs import hookimpl

from .breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    STATE_CODES,
    STATES,
    BreakerStats,
    CircuitBreaker,
    Transition,
)
from .policy import CircuitBreakerPolicy
from .settings import CircuitBreakerSettings

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "STATES", "STATE_CODES", "BreakerStats",
           "CircuitBreaker", "CircuitBreakerPolicy", "CircuitBreakerSettings", "Transition"]

POLICY_NAME = "circuit_breaker"

if TYPE_CHECKING:  # mypy holds the plugin to its contract
    from distcache_core.contracts import FaultPolicy, PeerGuard

    _policy: FaultPolicy = CircuitBreakerPolicy()
    _guard: PeerGuard = CircuitBreaker("peer")


@hookimpl
def distcache_register_fault_policies(register: Callable[[str, Any], None]) -> None:
    register(POLICY_NAME, CircuitBreakerPolicy.from_settings)


@hookimpl
def distcache_config_sections(register: Callable[..., None]) -> None:
    register(POLICY_NAME, CircuitBreakerSettings,
             env={"CIRCUIT_BREAKER_THRESHOLD": "failure_threshold"})
