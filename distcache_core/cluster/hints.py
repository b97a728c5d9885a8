"""Hinted handoff: writes meant for a peer that is down, kept until it returns.

The node that coordinated a write keeps, for each replica it could not reach, the replication
request itself (``DC.APPLY`` with the write's version). When the peer answers again the hints
are sent to it in order, oldest first; a hint older than what the peer has by then is ignored
there (versions decide). Hints are bounded, as Cassandra bounds them: one older than
``hint_window_ms`` is dropped, and so is a new one that would take the store past
``max_hints_bytes``. A peer that lost hints either way is marked *overflowed*: when it returns
the rebalancer repairs it by comparison (every key it should hold is offered to it with its
version) instead. Hints live in memory only: they do not survive a restart of the node that
holds them (the README says so; a restarted holder repairs every peer on first contact).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class HintStore:
    """Hints per peer, oldest first, within a time window and a byte budget."""

    __slots__ = ("window_ms", "max_bytes", "bytes_held", "_hints", "overflowed", "_clock",
                 "stored", "delivered", "dropped")

    def __init__(self, window_ms: int, max_bytes: int,
                 clock_ms: Callable[[], float] = monotonic_ms) -> None:
        self.window_ms = window_ms
        self.max_bytes = max_bytes
        self.bytes_held = 0
        self._hints: dict[str, deque[tuple[float, bytes]]] = {}
        #: Peers that lost hints (window or budget): they need a repair when they return.
        self.overflowed: set[str] = set()
        self._clock = clock_ms
        self.stored = self.delivered = self.dropped = 0

    def add(self, peer: str, payload: bytes) -> bool:
        """Keep a write for ``peer``; False (and the peer marked overflowed) when it does not
        fit the budget or hints are disabled (a zero window)."""
        size = len(payload)
        if not self.window_ms or self.bytes_held + size > self.max_bytes:
            self.overflowed.add(peer)
            self.dropped += 1
            return False
        queue = self._hints.get(peer)
        if queue is None:
            queue = self._hints[peer] = deque()
        queue.append((self._clock(), payload))
        self.bytes_held += size
        self.stored += 1
        return True

    def expire(self) -> int:
        """Drop hints older than the window; returns how many."""
        cutoff = self._clock() - self.window_ms
        removed = 0
        for peer, queue in list(self._hints.items()):
            while queue and queue[0][0] < cutoff:
                _, payload = queue.popleft()
                self.bytes_held -= len(payload)
                removed += 1
                self.overflowed.add(peer)
            if not queue:
                del self._hints[peer]
        self.dropped += removed
        return removed

    def take(self, peer: str, limit: int = 512) -> list[bytes]:
        """Up to ``limit`` of ``peer``'s hints, oldest first, removed from the store (the
        caller puts back what it could not deliver with :meth:`put_back`)."""
        self.expire()
        queue = self._hints.get(peer)
        if not queue:
            return []
        out: list[bytes] = []
        while queue and len(out) < limit:
            _, payload = queue.popleft()
            self.bytes_held -= len(payload)
            out.append(payload)
        if not queue:
            del self._hints[peer]
        return out

    def put_back(self, peer: str, payloads: list[bytes]) -> None:
        """Hints taken but not delivered go back in front, in order."""
        if not payloads:
            return
        queue = self._hints.setdefault(peer, deque())
        now = self._clock()
        for payload in reversed(payloads):
            queue.appendleft((now, payload))
            self.bytes_held += len(payload)

    def pending(self, peer: str) -> int:
        queue = self._hints.get(peer)
        return len(queue) if queue else 0

    def peers(self) -> list[str]:
        return sorted(self._hints)

    def forget(self, peer: str) -> None:
        queue = self._hints.pop(peer, None)
        if queue:
            self.bytes_held -= sum(len(p) for _, p in queue)
        self.overflowed.discard(peer)

    def __len__(self) -> int:
        return sum(len(q) for q in self._hints.values())
