"""Eviction policies of the ``lru_ttl`` engine (Redis's ``maxmemory-policy`` names).

``allkeys-lru`` (the default) is exact: victims leave in the ``OrderedDict``'s recency order.
The others choose among keys the order alone cannot rank, so they sample, as Redis does for
every policy (``maxmemory-samples``):

* ``volatile-lru``: the least recently used key that has an expiry, found by walking the
  recency order from its old end; the walk is bounded (``VOLATILE_LRU_WALK``) so that a front
  full of keys without expiry cannot make one write cost O(keys). Past the bound, the victim is
  a key with an expiry taken round-robin from the expires dict.
* ``volatile-ttl``: of ``EVICTION_SAMPLES`` keys with an expiry (round-robin), the one that
  expires first.
* ``allkeys-random``: keys in a shuffled snapshot order (each key once per pass).
* ``noeviction``: nothing is evicted; a write that would pass a limit is refused with ``OOM``.

The volatile policies with no key left that has an expiry refuse the write, as Redis does.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Final

from distcache_core.errors import CommandError
from distcache_core.mutations import Cause, Op

from .accounting import EXPIRY_OVERHEAD_BYTES, PER_KEY_OVERHEAD_BYTES, cost_of
from .cursors import RoundRobinSampler
from .state import KeyspaceState

ALLKEYS_LRU: Final = "allkeys-lru"
VOLATILE_LRU: Final = "volatile-lru"
VOLATILE_TTL: Final = "volatile-ttl"
ALLKEYS_RANDOM: Final = "allkeys-random"
NOEVICTION: Final = "noeviction"
#: Every policy this engine implements, in Redis's spelling.
POLICIES: Final = (ALLKEYS_LRU, VOLATILE_LRU, VOLATILE_TTL, ALLKEYS_RANDOM, NOEVICTION)

#: Redis's reply to a write refused for memory (``shared.oomerr``).
OOM_MESSAGE: Final = "OOM command not allowed when used memory > 'maxmemory'."

#: Keys looked at per victim by the sampling policies (Redis ``maxmemory-samples`` is 5, with
#: a pool of 16 kept between evictions; one larger sample is the simpler equivalent).
EVICTION_SAMPLES: Final = 16
#: Keys of the recency order ``volatile-lru`` examines before it falls back to sampling.
VOLATILE_LRU_WALK: Final = 256


def check_policy(name: str) -> str:
    """``name`` if it is a policy of :data:`POLICIES`, else ``ValueError`` naming them."""
    if name not in POLICIES:
        raise ValueError(f"maxmemory_policy must be one of {', '.join(POLICIES)}; "
                         f"got {name!r}")
    return name


class ShuffledSampler:
    """Hands out the keys of a collection in a random order, one pass at a time: a shuffled
    snapshot, refreshed when used up (O(1) per key amortised, 8 bytes per key while a pass
    lasts). Keys removed since the snapshot are the caller's to skip."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[bytes] = []

    def next_key(self, keys: Iterable[bytes]) -> bytes | None:
        if not self._keys:
            self._keys = list(keys)
            random.shuffle(self._keys)
            if not self._keys:
                return None
        return self._keys.pop()

    def clear(self) -> None:
        self._keys = []


def volatile_lru_victim(data: Iterable[bytes], expires: dict[bytes, int], protect: bytes | None,
                        sampler: RoundRobinSampler) -> bytes | None:
    """The victim of ``volatile-lru`` (see the module docstring); None when there is none."""
    walked = 0
    for key in data:
        if key in expires and key != protect:
            return key
        walked += 1
        if walked >= VOLATILE_LRU_WALK:
            break
    else:
        return None  # the whole order walked: no key with an expiry but the protected one
    return volatile_ttl_victim(expires, protect, sampler, first_found=True)


def volatile_ttl_victim(expires: dict[bytes, int], protect: bytes | None,
                        sampler: RoundRobinSampler, *, first_found: bool = False
                        ) -> bytes | None:
    """The victim of ``volatile-ttl``: of a sample of keys with an expiry, the one that expires
    first (with ``first_found``, simply the first live one). None when there is none."""
    best: bytes | None = None
    best_at = 0
    # Two passes' worth of samples at most: a snapshot may hold keys gone since.
    for _ in range(2 * (len(expires) // EVICTION_SAMPLES + 1)):
        for key in sampler.next_sample(expires, EVICTION_SAMPLES):
            at = expires.get(key)
            if at is None or key == protect:
                continue
            if first_found:
                return key
            if best is None or at < best_at:
                best, best_at = key, at
        if best is not None:
            return best
    return None


class Eviction(KeyspaceState):
    """The root engine's eviction: what happens when a write passes a limit."""

    __slots__ = ()

    def _make_room(self, key: bytes | None, old: bytes | None, old_expire_at_ms: int | None,
                   *, refuse: bool = True) -> None:
        """Evict by the policy until both limits hold, never ``key`` (just written, or None).

        With ``refuse``, a write that cannot fit (its key alone is larger than the byte limit,
        or the policy finds no victim) is undone (``old`` and ``old_expire_at_ms`` are what the
        key held before; ``old`` None: it was new) and refused with ``OOM``, as Redis refuses
        a command when eviction cannot bring memory under ``maxmemory``.
        """
        data = self._data
        if key is not None and refuse and (
                self._policy == NOEVICTION
                or cost_of(key, data[key]) + (key in self._expires) * EXPIRY_OVERHEAD_BYTES
                > self._byte_limit):
            self._undo_write(key, old, old_expire_at_ms)
            raise CommandError(OOM_MESSAGE)
        if self._policy == ALLKEYS_LRU:
            self._evict_lru()
            return
        while len(data) > self._key_limit or self._bytes_used > self._byte_limit:
            victim = self._next_victim(key)
            if victim is None:
                if key is not None and refuse:
                    self._undo_write(key, old, old_expire_at_ms)
                    raise CommandError(OOM_MESSAGE)
                return
            self._evict_key(victim)

    def _next_victim(self, protect: bytes | None) -> bytes | None:
        policy = self._policy
        data, expires = self._data, self._expires
        if policy == VOLATILE_LRU:
            return volatile_lru_victim(data, expires, protect, self._eviction_sampler)
        if policy == ALLKEYS_RANDOM:
            next_key = self._random_sampler.next_key
            for _ in range(2 * len(data) + 2):  # a snapshot may hold keys gone since
                key = next_key(dict.keys(data))  # table order, not the linked list
                if key is not None and key in data and key != protect:
                    return key
            return None
        if policy == NOEVICTION:
            return None
        return volatile_ttl_victim(expires, protect, self._eviction_sampler)

    def _evict_key(self, key: bytes) -> None:
        """Remove a victim of the policy: an eviction, or an expiry if it was dead already."""
        expire_at_ms = self._expires.get(key)
        dead = expire_at_ms is not None and expire_at_ms <= self._clock_ms()
        self._remove(key)
        if dead:
            self._expired += 1
        else:
            self._evictions += 1
        if self._listener is not None:
            self._emit(Op.DEL, key, None, None, Cause.EXPIRED if dead else Cause.EVICTED)

    def _evict_lru(self) -> None:
        """``allkeys-lru``: remove least recently used keys until both limits hold. The key
        just written is the most recent, hence last in line: ``len(data) > 1`` keeps it."""
        data = self._data
        popitem = data.popitem
        expires = self._expires
        key_limit, byte_limit = self._key_limit, self._byte_limit
        listener = self._listener
        siblings = self._siblings
        now = None
        while len(data) > 1 and (len(data) > key_limit or self._bytes_used > byte_limit):
            key, value = popitem(False)
            self._bytes_used -= len(key) + len(value) + PER_KEY_OVERHEAD_BYTES
            expire_at_ms = expires.pop(key, None) if expires else None
            if siblings:
                self._count_removed(key, expire_at_ms is not None)
            cause = Cause.EVICTED
            if expire_at_ms is not None:
                self._bytes_used -= EXPIRY_OVERHEAD_BYTES
                if now is None:
                    now = self._clock_ms()
                if expire_at_ms <= now:
                    # Already dead: count it as expired, as a sampler would have.
                    cause = Cause.EXPIRED
            if cause is Cause.EVICTED:
                self._evictions += 1
            else:
                self._expired += 1
            if listener is not None:
                self._emit(Op.DEL, key, None, None, cause)

    def _undo_write(self, key: bytes, old: bytes | None, old_expire_at_ms: int | None) -> None:
        """Put ``key`` back as it was before a write that is being refused."""
        data = self._data
        value = data[key]
        if old is None:
            self._remove(key)
            return
        data[key] = old
        self._bytes_used += len(old) - len(value)
        had_expiry = self._expires.pop(key, None) is not None
        if old_expire_at_ms is not None:
            self._expires[key] = old_expire_at_ms
        self._bytes_used += EXPIRY_OVERHEAD_BYTES * ((old_expire_at_ms is not None) - had_expiry)
        if self._siblings:
            self._count_expiry(key, (old_expire_at_ms is not None) - had_expiry)
