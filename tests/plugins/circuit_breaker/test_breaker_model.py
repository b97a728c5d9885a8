"""CircuitBreaker against a model that writes the rules down as times.

The model keeps no state name at all: it keeps when the breaker last opened (``opened_at``),
when the current probe went out (``probe_sent_at``) and the failure count, and *derives* the
state from them and the clock. Random interleavings of calls, results, forced trips and resets
and clock jumps must give the same answers from ``allow()``, the same state, the same counters
and the same recorded transitions.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from distcache_core.testing import FakeClock
from distcache_plugins.circuit_breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    STATES,
    CircuitBreaker,
    Transition,
)


class BreakerModel(RuleBasedStateMachine):
    @initialize(threshold=st.integers(1, 4), timeout_ms=st.integers(1, 40))
    def start(self, threshold: int, timeout_ms: int) -> None:
        self.clock = FakeClock(now_ms=1000)
        self.transitions: list[Transition] = []
        self.breaker = CircuitBreaker("p", failure_threshold=threshold,
                                      reset_timeout_ms=timeout_ms, clock_ms=self.clock,
                                      listener=self.transitions.append)
        self.threshold = threshold
        self.timeout_ms = timeout_ms
        self.opened_at: int | None = None  # None: closed
        self.half_open_recorded = False  # has the open -> half-open change been seen yet
        self.probe_sent_at: int | None = None
        self.failures_in_a_row = 0
        self.entered = dict.fromkeys(STATES, 0)
        self.last_change = 1000
        self.counts = {"successes": 0, "failures": 0, "timeouts": 0, "rejected": 0, "probes": 0}

    # --- the model ----------------------------------------------------------------------------

    def now(self) -> int:
        return self.clock()

    def model_state(self) -> str:
        if self.opened_at is None:
            return CLOSED
        if self.now() < self.opened_at + self.timeout_ms:
            return OPEN
        if not self.half_open_recorded:  # the breaker records it the moment anyone looks
            self.half_open_recorded = True
            self.entered[HALF_OPEN] += 1
            self.last_change = self.opened_at + self.timeout_ms
        return HALF_OPEN

    def probe_out(self) -> bool:
        return (self.probe_sent_at is not None
                and self.now() < self.probe_sent_at + self.timeout_ms)

    def open_now(self) -> None:
        if self.opened_at is None or self.model_state() != OPEN:
            self.entered[OPEN] += 1
            self.last_change = self.now()
        self.opened_at = self.now()
        self.half_open_recorded = False
        self.probe_sent_at = None
        self.failures_in_a_row = 0

    def close_now(self) -> None:
        if self.opened_at is not None:
            self.entered[CLOSED] += 1
            self.last_change = self.now()
        self.opened_at = None
        self.probe_sent_at = None
        self.failures_in_a_row = 0

    # --- rules ----------------------------------------------------------------------------------

    @rule(ms=st.one_of(st.integers(0, 3), st.integers(0, 90)))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def allow(self) -> None:
        state = self.model_state()
        expected = state == CLOSED or (state == HALF_OPEN and not self.probe_out())
        if state == HALF_OPEN and expected:
            self.probe_sent_at = self.now()
            self.counts["probes"] += 1
        if not expected:
            self.counts["rejected"] += 1
        assert self.breaker.allow() is expected

    @rule()
    def success(self) -> None:
        self.counts["successes"] += 1
        state = self.model_state()
        if state == CLOSED:
            self.failures_in_a_row = 0
        elif state == HALF_OPEN and self.probe_sent_at is not None:
            self.close_now()
        self.breaker.on_success()

    @rule(timeout=st.booleans())
    def failure(self, timeout: bool) -> None:
        self.counts["failures"] += 1
        self.counts["timeouts"] += timeout
        state = self.model_state()
        if state == CLOSED:
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= self.threshold:
                self.open_now()
        elif state == HALF_OPEN and self.probe_sent_at is not None:
            self.open_now()
        self.breaker.on_failure(timeout=timeout)

    @rule()
    def trip(self) -> None:
        self.model_state()
        self.open_now()
        self.breaker.trip()

    @rule()
    def reset(self) -> None:
        self.model_state()
        self.close_now()
        self.breaker.reset()

    # --- what must agree after every step -------------------------------------------------------

    @invariant()
    def same_state_and_counters(self) -> None:
        state = self.model_state()
        stats = self.breaker.stats()
        assert stats.state == state == self.breaker.state
        assert stats.entered == self.entered
        assert stats.last_change_ms == self.last_change
        assert stats.consecutive_failures == self.failures_in_a_row
        assert {name: getattr(stats, name) for name in self.counts} == self.counts
        expected_wait = self.opened_at + self.timeout_ms - self.now() if state == OPEN else 0
        assert stats.retry_in_ms == expected_wait

    @invariant()
    def transitions_form_a_chain(self) -> None:
        previous = CLOSED
        for transition in self.transitions:
            assert transition.old == previous != transition.new
            previous = transition.new
        assert previous == self.breaker.state
        assert len(self.transitions) == sum(self.entered.values())


BreakerModel.TestCase.settings = settings(max_examples=300, stateful_step_count=60,
                                          deadline=None)
TestBreakerModel = BreakerModel.TestCase
