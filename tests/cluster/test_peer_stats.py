"""A peer link's call counters and latency samples, driven by hand: requests queued, replies
fed to ``data_received`` and the clock set by the test (``_monotonic_ms`` replaced), with the
real circuit breaker as the guard. The real-cluster side is in ``test_peer_metrics.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from distcache_core.cluster import peer as peer_module
from distcache_core.cluster.peer import MODE_PEER, PeerCallStats, PeerLink, PeerPool
from distcache_plugins.circuit_breaker import CircuitBreakerPolicy

REQUEST = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
REPLY = b"$1\r\nv\r\n"


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        pass


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(peer_module, "_monotonic_ms", lambda: now[0])
    return now


@pytest.fixture
def pool() -> Iterator[PeerPool]:
    pool = PeerPool(node_id="node-1", secret="s", requirepass="", request_timeout_ms=500,
                    guard_for=CircuitBreakerPolicy(failure_threshold=100).for_peer)
    yield pool


def connected_link(pool: PeerPool) -> PeerLink:
    """A link to node-2 whose handshake is done (nothing is sent for real)."""
    client = pool.add("node-2", "127.0.0.1", 1)
    link = PeerLink(client, MODE_PEER, 2)
    link.transport = Transport()  # type: ignore[assignment]
    link._flush_scheduled = True  # flushed by hand, no event loop
    client._links[(MODE_PEER, 2)] = link
    return link


def send(pool: PeerPool, count: int = 1) -> None:
    for _ in range(count):
        assert pool.clients["node-2"].send(MODE_PEER, REQUEST, lambda arg, result: None, None)


def samples(pool: PeerPool) -> list[float]:
    return list(pool.stats_of("node-2").pending_ms)


def test_a_lone_call_is_timed_and_samples_are_a_millisecond_apart(pool, clock) -> None:
    link = connected_link(pool)
    send(pool)
    clock[0] += 5
    link.data_received(REPLY)
    assert samples(pool) == [5.0]
    clock[0] += 0.5  # within SAMPLE_INTERVAL_MS of the last sample: not timed
    send(pool)
    clock[0] += 2
    link.data_received(REPLY)
    assert samples(pool) == [5.0]
    send(pool)  # due again
    clock[0] += 3
    link.data_received(REPLY)
    assert samples(pool) == [5.0, 3.0]
    assert pool.stats_of("node-2").calls == 3


def test_a_busy_link_times_the_request_queued_once_a_sample_is_due(pool, clock) -> None:
    link = connected_link(pool)
    send(pool)  # A, timed
    clock[0] += 2
    link.data_received(REPLY)
    assert samples(pool) == [2.0]
    clock[0] += 0.5
    send(pool, 3)  # B, C, D: not due
    clock[0] += 1.5
    link.data_received(REPLY)  # B; from now on a sample is due
    clock[0] += 0.5
    send(pool)  # E, behind C and D: timed
    clock[0] += 1
    link.data_received(REPLY * 2)  # C and D
    assert samples(pool) == [2.0]
    clock[0] += 1.5
    link.data_received(REPLY)  # E, 2.5 ms after it was queued
    assert samples(pool) == [2.0, 2.5]


def test_the_handshake_replies_come_before_the_timed_one(pool, clock) -> None:
    client = pool.add("node-2", "127.0.0.1", 1)
    link = PeerLink(client, MODE_PEER, 2)
    client._links[(MODE_PEER, 2)] = link
    send(pool)  # queued before the connection is made: timed from here
    clock[0] += 4
    link.connection_made(Transport())  # type: ignore[arg-type]  # DC.AUTH goes first
    link._flush_scheduled = True
    clock[0] += 1
    link.data_received(b"+OK\r\n")  # the handshake's reply
    assert samples(pool) == []
    clock[0] += 2
    link.data_received(REPLY)
    assert samples(pool) == [7.0]


def test_failures_are_counted_as_errors_or_timeouts(pool, clock) -> None:
    link = connected_link(pool)
    send(pool, 3)
    link._fail("no reply within request_timeout_ms", sent=True, timeout=True)
    link = connected_link(pool)
    send(pool, 2)
    link.connection_lost(ConnectionResetError("reset"))
    stats = pool.stats_of("node-2")
    assert (stats.calls, stats.timeouts, stats.errors) == (5, 3, 2)
    assert samples(pool) == []  # a failed call is no latency sample


def test_fold_totals_departed_peers_and_reset(pool, clock) -> None:
    link = connected_link(pool)
    send(pool)
    clock[0] += 3
    link.data_received(REPLY)
    stats = pool.stats_of("node-2")
    stats.fold()
    assert (stats.samples, stats.pending_ms) == (1, [])
    assert stats.usec_per_call == pytest.approx(3000.0)
    assert stats.histogram.percentiles_usec([50.0])[50.0] == pytest.approx(3000, rel=0.02)
    pool.stats_of("node-3").calls = 4
    pool.remove("node-2")  # left the cluster: still in the node's totals
    totals = pool.totals()
    assert (totals.calls, totals.samples) == (5, 1)
    pool.reset_stats()
    assert pool.totals().calls == 0 and isinstance(pool.stats_of("node-3"), PeerCallStats)
