"""A circuit breaker per peer: closed -> open -> half-open -> closed (or open again).

- **closed**: every call is allowed. ``failure_threshold`` consecutive failures (errors or
  timeouts, both reported as ``on_failure``) open the breaker; a success resets the count.
- **open**: every call is refused at once (``allow()`` is False) for ``reset_timeout_ms``.
- **half-open**: once that time has passed, the next ``allow()`` is True for exactly one call,
  the probe; every other call is refused while it is out. Its result decides: a success closes
  the breaker, a failure opens it for another ``reset_timeout_ms``. A probe whose result never
  comes back (its caller was cancelled) is given up after ``reset_timeout_ms`` and the next
  ``allow()`` sends a new one, so a lost probe cannot keep the breaker half-open for ever.

Results that arrive while they cannot decide anything are counted and otherwise ignored: a late
reply to a call allowed before the breaker opened, while it is open or half-open without a
probe out. ``allow()`` returns a bool, not a ticket, so while a probe is out the first result
reported is taken as the probe's.

Open becomes half-open by time alone; the change is applied (and recorded, stamped with the
moment it became due) on the next ``allow()``, ``state`` read or ``stats()``. Sans-IO: the time
comes from ``clock_ms`` (monotonic milliseconds), so tests drive it with a fake clock. Every
method runs on the event loop thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)
#: The number a metrics gauge shows for each state (``..._cluster_peer_breaker_state``).
STATE_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

Clock = Callable[[], float]


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


def unix_ms() -> float:
    return time.time() * 1000.0


@attrs.frozen(kw_only=True)
class Transition:
    """One change of a breaker's state, as the listener receives it."""

    peer: str
    old: str
    new: str
    #: When it happened, on the breaker's monotonic clock (ms) and as Unix time (ms).
    at_ms: float
    at_unix_ms: float
    #: What caused it: ``failures``, ``probe_failed``, ``probe_succeeded``, ``timeout``
    #: (open -> half-open), ``tripped`` or ``reset`` (forced by the caller).
    reason: str


TransitionListener = Callable[[Transition], None]


@attrs.frozen(kw_only=True)
class BreakerStats:
    """A breaker's counters, for INFO, ``CLUSTER NODES`` and the metrics sinks."""

    peer: str
    state: str
    #: Failures in a row while closed (reset by a success).
    consecutive_failures: int
    #: How many times the breaker entered each state (``closed`` counts re-closings only).
    entered: dict[str, int]
    #: The last change of state: monotonic ms, Unix ms, and how long ago (ms); the creation
    #: time while the breaker has never changed.
    last_change_ms: float
    last_change_unix_ms: float
    since_change_ms: float
    successes: int
    #: Failures reported, of which ``timeouts`` were reported as timeouts.
    failures: int
    timeouts: int
    #: Calls refused by ``allow()`` (the fast failures).
    rejected: int
    #: Probe calls let through while half-open.
    probes: int
    #: Milliseconds until an open breaker lets a probe through (0 when not open).
    retry_in_ms: float


class CircuitBreaker:
    """The :class:`~distcache_core.contracts.PeerGuard` of one peer.

    :param peer: the peer's node id (named in transitions and stats).
    :param failure_threshold: consecutive failures that open the breaker.
    :param reset_timeout_ms: how long it stays open before the half-open probe.
    :param clock_ms: monotonic milliseconds; the node's clock unless a test passes its own.
    :param wall_clock_ms: Unix milliseconds, only to stamp transitions for people to read.
    :param listener: called with each :class:`Transition`, synchronously (keep it cheap).
    """

    __slots__ = ("peer", "failure_threshold", "reset_timeout_ms", "_clock", "_wall_clock",
                 "listener", "_state", "_consecutive_failures", "_retry_at", "_probe_deadline",
                 "_entered", "_last_change_ms", "_successes", "_failures", "_timeouts",
                 "_rejected", "_probes")

    def __init__(self, peer: str, *, failure_threshold: int = 5, reset_timeout_ms: float = 5000,
                 clock_ms: Clock = monotonic_ms, wall_clock_ms: Clock = unix_ms,
                 listener: TransitionListener | None = None) -> None:
        if failure_threshold < 1 or reset_timeout_ms <= 0:
            raise ValueError("failure_threshold and reset_timeout_ms must be positive")
        self.peer = peer
        self.failure_threshold = failure_threshold
        self.reset_timeout_ms = reset_timeout_ms
        self._clock = clock_ms
        self._wall_clock = wall_clock_ms
        self.listener = listener
        self._state = CLOSED
        self._consecutive_failures = 0
        #: While open: when the probe may go (monotonic ms).
        self._retry_at = 0.0
        #: While half-open: None until the probe goes, then when it is given up as lost.
        self._probe_deadline: float | None = None
        self._entered = dict.fromkeys(STATES, 0)
        self._last_change_ms = clock_ms()
        self._successes = self._failures = self._timeouts = self._rejected = self._probes = 0

    # --- PeerGuard ----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``, as of now."""
        if self._state is OPEN:
            self._open_to_half_open_if_due(self._clock())
        return self._state

    def allow(self) -> bool:
        """May a call go to the peer now? False means fail fast: do not wait on this peer."""
        state = self._state
        if state is CLOSED:
            return True
        now = self._clock()
        if state is OPEN:
            if now < self._retry_at:
                self._rejected += 1
                return False
            self._open_to_half_open_if_due(now)
        deadline = self._probe_deadline
        if deadline is None or now >= deadline:
            self._probe_deadline = now + self.reset_timeout_ms
            self._probes += 1
            return True
        self._rejected += 1
        return False

    def on_success(self) -> None:
        """The call allowed last succeeded (the peer answered, whatever the reply)."""
        self._successes += 1
        state = self._state
        if state is CLOSED:
            self._consecutive_failures = 0
        elif state is HALF_OPEN and self._probe_deadline is not None:
            self._change(CLOSED, self._clock(), "probe_succeeded")

    def on_failure(self, *, timeout: bool = False) -> None:
        """The call failed: no connection, a broken one, or no reply in time (``timeout``)."""
        self._failures += 1
        if timeout:
            self._timeouts += 1
        state = self._state
        if state is CLOSED:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.failure_threshold:
                self._open(self._clock(), "failures")
        elif state is HALF_OPEN and self._probe_deadline is not None:
            self._open(self._clock(), "probe_failed")

    # --- for membership and metrics -----------------------------------------------------------

    def trip(self) -> None:
        """Open now, whatever the state (membership declared the peer down)."""
        self._open(self._clock(), "tripped")

    def reset(self) -> None:
        """Close now, whatever the state (membership heard from the peer again)."""
        if self._state is not CLOSED:
            self._change(CLOSED, self._clock(), "reset")
        self._consecutive_failures = 0

    def retry_in_ms(self) -> float:
        """Milliseconds until an open breaker lets its probe through; 0 when not open."""
        if self.state is not OPEN:
            return 0.0
        return max(0.0, self._retry_at - self._clock())

    def stats(self) -> BreakerStats:
        state = self.state
        now = self._clock()
        since = now - self._last_change_ms
        return BreakerStats(
            peer=self.peer, state=state, consecutive_failures=self._consecutive_failures,
            entered=dict(self._entered), last_change_ms=self._last_change_ms,
            last_change_unix_ms=self._wall_clock() - since, since_change_ms=since,
            successes=self._successes, failures=self._failures, timeouts=self._timeouts,
            rejected=self._rejected, probes=self._probes, retry_in_ms=self.retry_in_ms())

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.peer!r}, state={self.state!r})"

    # --- internals ----------------------------------------------------------------------------

    def _open(self, now: float, reason: str) -> None:
        self._retry_at = now + self.reset_timeout_ms
        if self._state is not OPEN:  # tripping an open breaker only restarts its wait
            self._change(OPEN, now, reason)

    def _open_to_half_open_if_due(self, now: float) -> None:
        if now >= self._retry_at:
            self._change(HALF_OPEN, self._retry_at, "timeout")

    def _change(self, new: str, at_ms: float, reason: str) -> None:
        old = self._state
        self._state = new
        self._entered[new] += 1
        self._last_change_ms = at_ms
        self._consecutive_failures = 0
        self._probe_deadline = None
        listener = self.listener
        if listener is not None:
            at_unix_ms = self._wall_clock() - (self._clock() - at_ms)
            listener(Transition(peer=self.peer, old=old, new=new, at_ms=at_ms,
                                at_unix_ms=at_unix_ms, reason=reason))
