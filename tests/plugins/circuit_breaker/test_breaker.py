"""The circuit breaker's rules, step by step on a fake clock."""

from __future__ import annotations

import pytest

from distcache_core.testing import FakeClock
from distcache_plugins.circuit_breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    CircuitBreakerPolicy,
    Transition,
)

TIMEOUT_MS = 5000


def make(threshold: int = 5) -> tuple[CircuitBreaker, FakeClock, list[Transition]]:
    clock = FakeClock()
    seen: list[Transition] = []
    breaker = CircuitBreaker("node-2", failure_threshold=threshold, reset_timeout_ms=TIMEOUT_MS,
                             clock_ms=clock, wall_clock_ms=lambda: 1_700_000_000_000 + clock(),
                             listener=seen.append)
    return breaker, clock, seen


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        assert breaker.allow()
        breaker.on_failure()
    assert breaker.state == OPEN


def test_closed_allows_and_a_success_resets_the_failure_count():
    breaker, _, seen = make(threshold=3)
    for _ in range(5):
        breaker.on_failure()
        breaker.on_failure()
        breaker.on_success()
    assert breaker.state == CLOSED and breaker.allow() and seen == []
    assert breaker.stats().consecutive_failures == 0


def test_threshold_consecutive_failures_or_timeouts_open_it():
    breaker, clock, seen = make(threshold=3)
    breaker.on_failure()
    breaker.on_failure(timeout=True)
    assert breaker.state == CLOSED and breaker.stats().consecutive_failures == 2
    clock.advance(10)
    breaker.on_failure(timeout=True)
    assert breaker.state == OPEN
    assert seen == [Transition(peer="node-2", old=CLOSED, new=OPEN, at_ms=clock(),
                               at_unix_ms=1_700_000_000_000 + clock(), reason="failures")]
    stats = breaker.stats()
    assert (stats.failures, stats.timeouts, stats.entered[OPEN]) == (3, 2, 1)


def test_open_fails_fast_until_the_reset_timeout():
    breaker, clock, _ = make()
    open_breaker(breaker)
    for _ in range(100):
        assert not breaker.allow()
    clock.advance(TIMEOUT_MS - 1)
    assert not breaker.allow() and breaker.state == OPEN
    assert breaker.retry_in_ms() == 1
    assert breaker.stats().rejected == 101


def test_half_open_lets_exactly_one_probe_through_and_its_success_closes():
    breaker, clock, seen = make()
    open_breaker(breaker)
    opened_at = clock()
    clock.advance(TIMEOUT_MS + 1234)
    assert breaker.allow()  # the probe
    assert breaker.state == HALF_OPEN
    assert not any(breaker.allow() for _ in range(50))
    breaker.on_success()
    assert breaker.state == CLOSED and breaker.allow()
    assert [(t.old, t.new, t.reason) for t in seen] == [
        (CLOSED, OPEN, "failures"), (OPEN, HALF_OPEN, "timeout"),
        (HALF_OPEN, CLOSED, "probe_succeeded")]
    # Half-open began when it became due, not when it was noticed.
    assert seen[1].at_ms == opened_at + TIMEOUT_MS
    stats = breaker.stats()
    assert stats.entered == {CLOSED: 1, OPEN: 1, HALF_OPEN: 1}
    assert (stats.probes, stats.rejected) == (1, 50)


def test_a_failed_probe_opens_it_for_another_full_timeout():
    breaker, clock, seen = make()
    open_breaker(breaker)
    clock.advance(TIMEOUT_MS)
    assert breaker.allow()
    clock.advance(700)
    breaker.on_failure(timeout=True)
    assert breaker.state == OPEN and seen[-1].reason == "probe_failed"
    assert seen[-1].at_ms == clock()
    clock.advance(TIMEOUT_MS - 1)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_the_state_turns_half_open_by_time_alone():
    breaker, clock, seen = make()
    open_breaker(breaker)
    clock.advance(TIMEOUT_MS)
    assert breaker.state == HALF_OPEN
    stats = breaker.stats()
    assert stats.last_change_ms == clock() and stats.since_change_ms == 0
    clock.advance(3000)
    assert breaker.stats().since_change_ms == 3000
    assert breaker.stats().last_change_unix_ms == 1_700_000_000_000 + clock() - 3000
    assert len(seen) == 2  # recorded once, however often it is read


def test_results_that_cannot_decide_are_ignored():
    breaker, clock, _ = make()
    open_breaker(breaker)
    breaker.on_success()  # a late reply to a call allowed before it opened
    assert breaker.state == OPEN
    clock.advance(TIMEOUT_MS)
    breaker.on_success()  # half-open, but no probe is out
    breaker.on_failure()
    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # the probe is still to come
    breaker.on_success()
    assert breaker.state == CLOSED


def test_a_lost_probe_is_given_up_after_the_reset_timeout():
    breaker, clock, _ = make()
    open_breaker(breaker)
    clock.advance(TIMEOUT_MS)
    assert breaker.allow()
    clock.advance(TIMEOUT_MS - 1)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()  # the first probe never reported: a second one goes
    assert not breaker.allow()
    assert breaker.stats().probes == 2


def test_trip_and_reset():
    breaker, clock, seen = make()
    breaker.trip()
    assert breaker.state == OPEN and not breaker.allow()
    clock.advance(TIMEOUT_MS // 2)
    breaker.trip()  # restarts the wait, no new transition
    clock.advance(TIMEOUT_MS // 2 + 1)
    assert breaker.state == OPEN
    breaker.reset()
    assert breaker.state == CLOSED and breaker.allow()
    assert [(t.new, t.reason) for t in seen] == [(OPEN, "tripped"), (CLOSED, "reset")]


def test_bad_parameters():
    with pytest.raises(ValueError):
        CircuitBreaker("p", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreakerPolicy(reset_timeout_ms=0)


def test_policy_keeps_one_breaker_per_peer_and_reports_them_all():
    clock = FakeClock()
    seen: list[Transition] = []
    policy = CircuitBreakerPolicy(failure_threshold=2, reset_timeout_ms=100, clock_ms=clock)
    policy.set_listener(seen.append)
    a = policy.for_peer("a")
    assert policy.for_peer("a") is a and policy.for_peer("b") is not a
    a.on_failure()
    a.on_failure()
    assert policy.states() == {"a": OPEN, "b": CLOSED}
    assert [(t.peer, t.new) for t in seen] == [("a", OPEN)]
    assert policy.stats()["a"].failures == 2 and policy.peers() == ["a", "b"]
    policy.forget("a")
    assert policy.peers() == ["b"] and policy.for_peer("a").state == CLOSED
    policy.set_listener(None)
    policy.for_peer("b").trip()
    assert len(seen) == 1
