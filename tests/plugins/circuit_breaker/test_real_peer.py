"""The breaker guarding real calls, the way the router wraps each peer call: a real node that
goes away and comes back on the same port, and a hung peer (a socket that accepts and never
answers), with the real monotonic clock."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from distcache_plugins.circuit_breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreakerPolicy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_try_client(port: int, timeout: float) -> redis.Redis:
    """redis-py without its own retries: each call is one attempt, as a router's is."""
    return redis.Redis(port=port, socket_timeout=timeout, socket_connect_timeout=2,
                       retry=Retry(NoBackoff(), 0))


class Rejected(Exception):
    """The breaker refused the call: the router answers without waiting on the peer."""


def guarded(breaker: Any, call: Callable[[], Any]) -> Any:
    if not breaker.allow():
        raise Rejected
    try:
        result = call()
    except redis.TimeoutError:
        breaker.on_failure(timeout=True)
        raise
    except redis.ConnectionError:
        breaker.on_failure()
        raise
    breaker.on_success()
    return result


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_peer_that_goes_away_opens_the_breaker_and_a_probe_closes_it(make_node):
    port = free_port()
    node = make_node(f"node.port={port}")
    policy = CircuitBreakerPolicy(failure_threshold=5, reset_timeout_ms=300)
    breaker = policy.for_peer("node-2")
    client = one_try_client(port, timeout=2)
    calls = 0

    def ping() -> Any:
        nonlocal calls
        calls += 1
        return client.ping()

    assert guarded(breaker, ping) and breaker.state == CLOSED
    node.stop()
    client.connection_pool.disconnect()
    for _ in range(5):
        with pytest.raises(redis.ConnectionError):
            guarded(breaker, ping)
    assert breaker.state == OPEN
    before = calls
    for _ in range(100):
        with pytest.raises(Rejected):
            guarded(breaker, ping)
    assert calls == before  # an open breaker never touched the network

    make_node(f"node.port={port}")  # the peer is back on its address
    wait_until(lambda: breaker.state == HALF_OPEN)
    assert guarded(breaker, ping)  # the probe
    assert breaker.state == CLOSED
    stats = breaker.stats()
    assert stats.entered == {CLOSED: 1, OPEN: 1, HALF_OPEN: 1} and stats.rejected >= 100


def test_a_hung_peer_times_out_then_fails_fast():
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)  # the kernel completes connections; nobody ever reads or answers
        port = hung.getsockname()[1]
        breaker = CircuitBreakerPolicy(failure_threshold=3, reset_timeout_ms=60_000
                                       ).for_peer("hung")
        client = one_try_client(port, timeout=0.2)
        for _ in range(3):
            with pytest.raises(redis.TimeoutError):
                guarded(breaker, client.ping)
        assert breaker.state == OPEN and breaker.stats().timeouts == 3
        started = time.monotonic()
        for _ in range(200):
            with pytest.raises(Rejected):
                guarded(breaker, client.ping)
        # 200 calls that each waited out the 0.2 s timeout would take 40 s.
        assert time.monotonic() - started < 2
        client.close()
